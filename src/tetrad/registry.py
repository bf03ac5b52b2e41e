"""One small registry type for everything that is looked up by name: detectors, dataset adapters, face
detectors, landmarkers, unit-to-video reducers and weight entries.

A registry is filled by the modules that define its members (a decorator or a call at import time), so adding a
member is one module plus one import line in its package's `__init__`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from tetrad.errors import UserError

T = TypeVar("T")


class UnknownName(UserError, KeyError, ValueError):
    """A name no member is registered under (a KeyError for lookups, a ValueError for config checks); the
    message lists the registered names."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class Registry(Generic[T]):
    """Name -> object. A name registered twice is a bug, never a silent override."""

    def __init__(self, what: str) -> None:
        self.what = what  # e.g. "detector", for the error messages
        self._items: dict[str, T] = {}

    def add(self, name: str, item: T) -> T:
        if name in self._items:
            raise ValueError(f"{self.what} {name!r} is already registered ({_origin(self._items[name])})")
        self._items[name] = item
        return item

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator form of `add`."""
        return lambda item: self.add(name, item)

    def get(self, name: str) -> T:
        if name not in self._items:
            raise UnknownName(f"unknown {self.what} {name!r}; registered: {', '.join(self.names()) or 'none'}")
        return self._items[name]

    def names(self) -> list[str]:
        return sorted(self._items)

    def items(self) -> list[tuple[str, T]]:
        return sorted(self._items.items())

    def remove(self, name: str) -> None:
        """For tests that register a throw-away member."""
        self._items.pop(name, None)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)


def _origin(item: object) -> str:
    """Where the first registration came from: a class's or function's module, or the object's own `build`."""
    target = item if inspect.isclass(item) or inspect.isfunction(item) else getattr(item, "build", None)
    module = getattr(target, "__module__", None)
    return f"by {module}" if module else "earlier"
