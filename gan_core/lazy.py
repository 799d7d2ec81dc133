"""One lazy-import helper: a heavy third-party module (torch, numpy, scipy, matplotlib, ...)
bound at the top of a module that the command line loads, imported on first attribute access.

Modules that ``xraygan --help`` loads (the configs, the registries that list names) must not
import torch, whose import takes seconds; with this helper they still name their imports at the
top, where a reader looks for them, instead of inside every function that needs one (optuna's
``_imports.py`` serves the same end). The project's own modules are never imported lazily:
their imports are the layering's arrows and stay plain.

    torch = lazy_module("torch")
    F = lazy_module("torch.nn.functional")
"""

from __future__ import annotations

import importlib
import types
from typing import Any


class _LazyModule(types.ModuleType):
    """Stands in for a module until an attribute is read, then forwards to the real one."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.__dict__["_module"] = None

    def _load(self) -> types.ModuleType:
        module = self.__dict__["_module"]
        if module is None:
            module = importlib.import_module(self.__name__)
            self.__dict__["_module"] = module
        return module

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._load(), attr)

    def __dir__(self) -> list[str]:
        return dir(self._load())

    def __repr__(self) -> str:
        loaded = "loaded" if self.__dict__["_module"] is not None else "not loaded yet"
        return f"<lazy module {self.__name__!r} ({loaded})>"


def lazy_module(name: str) -> Any:
    """``name``, imported when an attribute of it is first read (never at this call)."""
    return _LazyModule(name)
