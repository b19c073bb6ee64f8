"""One registry per extension point (spaces, strategies, evaluators, datasets, ...).

A registry maps a short name to a factory. Registering a name twice raises; asking for
an unknown name raises :class:`~evonas.errors.UnknownChoiceError` listing the choices.
Heavy back-ends are imported lazily by the factories themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from evonas.errors import UnknownChoiceError

T = TypeVar("T")


class Registry(Generic[T]):
    """A named collection of factories for one extension point.

    Args:
        kind: What the registry holds, used in error messages (e.g. ``"strategy"``).
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator registering ``obj`` under ``name``; a duplicate name raises."""

        def decorator(obj: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._entries[name] = obj
            return obj

        return decorator

    def get(self, name: str) -> T:
        """Return the entry called ``name``.

        Raises:
            UnknownChoiceError: ``name`` is not registered; the message lists the choices.
        """
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownChoiceError(self.kind, name, self.names()) from None

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)


class Component:
    """A configurable component: its config dataclass and how to build it from one.

    Both are given as import paths (``"module:attr"``) so that registering a component
    does not import its back-end (Ray, torch) until it is used.

    Args:
        config: Import path of the frozen config dataclass.
        factory: Import path of a callable taking the config instance (plus keyword
            context) and returning the component.
    """

    def __init__(self, config: str, factory: str) -> None:
        self._config = config
        self._factory = factory

    @staticmethod
    def _resolve(path: str) -> object:
        import importlib

        module, _, attr = path.partition(":")
        return getattr(importlib.import_module(module), attr)

    @property
    def config_cls(self) -> type:
        return self._resolve(self._config)  # type: ignore[return-value]

    def build(self, config: object, **context: object) -> object:
        return self._resolve(self._factory)(config, **context)  # type: ignore[operator]
