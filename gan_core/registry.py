"""A tiny name -> object registry shared by activations, optimizers, losses, datasets, presets.

Interchangeable parts are picked by name from the config; an unknown name fails with the list
of valid ones (the timm habit), so a typo on the command line is a one-line fix.

Every registry is also found by its kind (:meth:`Registry.of`): the config names the registry
a field's value comes from (``Param.registry``) without importing the builders that fill it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import ClassVar, Generic, TypeVar

from .errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    _by_kind: ClassVar[dict[str, Registry]] = {}

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}
        Registry._by_kind[kind] = self

    @classmethod
    def of(cls, kind: str) -> Registry | None:
        """The registry of ``kind``; None until the module that defines it is imported."""
        return cls._by_kind.get(kind)

    def register(self, name: str) -> Callable[[T], T]:
        def decorator(obj: T) -> T:
            if name in self._items:
                raise KeyError(f"{self.kind} {name!r} is registered twice")
            self._items[name] = obj
            return obj

        return decorator

    def add(self, name: str, obj: T) -> T:
        return self.register(name)(obj)

    def get(self, name: str, field: str | None = None) -> T:
        try:
            return self._items[name]
        except KeyError:
            where = f"{field}: " if field else ""
            raise ConfigError(
                f"{where}unknown {self.kind} {name!r}; choose one of: {', '.join(self.names())}"
            ) from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)
