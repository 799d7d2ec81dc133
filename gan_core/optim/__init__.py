"""Optimizers: Adam, SGD and AdaS by name, with TTUR learning-rate resolution.

``OPTIMIZERS`` and the checks import without torch; ``Adas`` and ``adas_update`` load it on
first use (the command line parses and checks names before any torch import).
"""

from typing import Any

from .factory import (
    OPTIMIZERS,
    OptimizerSpec,
    build_optimizer,
    build_optimizers,
    check_config,
    resolved_lrs,
    state_bytes,
)

__all__ = [
    "OPTIMIZERS",
    "Adas",
    "OptimizerSpec",
    "adas_update",
    "build_optimizer",
    "build_optimizers",
    "check_config",
    "resolved_lrs",
    "state_bytes",
]


def __getattr__(name: str) -> Any:
    if name in ("Adas", "adas_update"):
        from . import adas

        return getattr(adas, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
