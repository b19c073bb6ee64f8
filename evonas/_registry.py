"""One registry per extension point, and the public way to add to them.

A registry maps a short name to an entry. Registering a name twice raises a
:class:`~evonas.errors.PluginError` naming the module that took it first; asking for an
unknown name raises :class:`~evonas.errors.UnknownChoiceError` listing the choices.
Heavy back-ends (torch, Ray) are imported lazily by the entries themselves.

Configurable entries (spaces, strategies, evaluators, executors, decoders, supernets,
tables, samplers) carry their parameters as a frozen dataclass ``entry.Config``, which the
config loader checks a ``{name, params}`` section against; :class:`Component` gives that
shape to a config and a factory named by import paths, so registering costs no import.

:func:`register` is the public entry point for plugins::

    import evonas

    @evonas.register("space", "chain")
    class ChainSpace: ...

The calling convention of every kind is listed in :data:`KINDS`.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any, Generic, TypeVar

from evonas.errors import PluginError, UnknownChoiceError

T = TypeVar("T")


class Registry(Generic[T]):
    """A named collection of entries for one extension point.

    Args:
        kind: What the registry holds, used in error messages (e.g. ``"strategy"``).
        check: Called with every entry before it is registered; raises
            :class:`~evonas.errors.PluginError` for an entry that breaks the kind's protocol.
    """

    def __init__(self, kind: str, check: Callable[[Any], None] | None = None) -> None:
        self.kind = kind
        self._check = check
        self._entries: dict[str, T] = {}
        self._owners: dict[str, str] = {}

    def register(self, name: str, owner: str | None = None) -> Callable[[T], T]:
        """Decorator registering ``obj`` under ``name``.

        Args:
            name: The name configs use.
            owner: Who registers it (module name), for the message of a clash; default:
                the module that calls :meth:`register` (or :func:`evonas.register`).

        Raises:
            PluginError: ``name`` is not a non-empty string, or is already registered.
        """
        if not isinstance(name, str) or not name.strip():
            raise PluginError(f"a {self.kind} name must be a non-empty string; got {name!r}")
        by = owner or _caller_module()

        def decorator(obj: T) -> T:
            if self._check is not None:
                self._check(obj)
            if name in self._entries:
                raise PluginError(
                    f"{self.kind} {name!r} is already registered by {self._owners[name]!r}; "
                    f"{by!r} must choose another name"
                )
            self._entries[name] = obj
            self._owners[name] = by
            return obj

        return decorator

    def get(self, name: str) -> T:
        """Return the entry called ``name``.

        Raises:
            UnknownChoiceError: ``name`` is not registered; the message lists the choices.
        """
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise UnknownChoiceError(self.kind, name, self.names()) from None

    def owner(self, name: str) -> str:
        """The module that registered ``name``."""
        self.get(name)
        return self._owners[name]

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._entries)

    def unregister(self, name: str) -> None:
        """Remove ``name`` (for tests that register throw-away entries)."""
        self._entries.pop(name, None)
        self._owners.pop(name, None)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)


def _caller_module() -> str:
    """The module that called into this one (skipping this module's own frames)."""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None and frame.f_globals.get("__name__") == __name__:
        frame = frame.f_back
    return str(frame.f_globals.get("__name__", "?")) if frame is not None else "?"


def resolve_import(path: str) -> Any:
    """The object named by ``"package.module:attribute"``."""
    module, _, attr = path.partition(":")
    return getattr(importlib.import_module(module), attr)


class Component:
    """A configurable entry named by import paths: its ``Config`` and its factory.

    Registering a :class:`Component` imports nothing; :attr:`Config` and calling the
    component import the named module on first use.

    Args:
        config: The frozen config dataclass, or its import path (``"module:attr"``).
        factory: A callable ``factory(config, **context)``, or its import path.
        space: The search space the component serves (decoders, supernets, tables of one
            space); None: any space.
    """

    def __init__(self, config: type | str, factory: Callable[..., Any] | str, space: str | None = None) -> None:
        self._config = config
        self._factory = factory
        self.space = space
        self.__module__ = (factory if isinstance(factory, str) else factory.__module__).partition(":")[0]

    @property
    def Config(self) -> type:  # noqa: N802 -- the same attribute name as on configurable classes
        """The config dataclass of the component."""
        return self._config if isinstance(self._config, type) else resolve_import(self._config)

    def __call__(self, config: object, **context: Any) -> Any:
        factory = self._factory if callable(self._factory) else resolve_import(self._factory)
        return factory(config, **context)

    def __repr__(self) -> str:
        return f"Component({self._config!r}, {self._factory!r}, space={self.space!r})"


KINDS: dict[str, tuple[str, str]] = {
    "space": ("evonas.spaces:SPACES", "class with Config; space = entry(config)"),
    "strategy": ("evonas.strategies:STRATEGIES", "Strategy subclass with Config; entry(space, num_objectives, rng, config)"),
    "evaluator": ("evonas.evaluation:EVALUATORS", "entry.Config; evaluator = entry(config, space=space)"),
    "executor": ("evonas.executors:EXECUTORS", "entry.Config; executor = entry(config)"),
    "dataset": ("evonas.data:DATASETS", "source(root, **options) -> SourceImages"),
    "decoder": ("evonas.models:DECODERS", "entry.Config, entry.space; nn.Module = entry(config, space=, arch=, num_classes=, in_channels=)"),
    "supernet": ("evonas.supernet:SUPERNETS", "entry.Config, entry.space; supernet = entry(config, space=, num_classes=, in_channels=)"),
    "table": ("evonas.tabular:TABLES", "entry.Config; table = entry(config, space=space)"),
    "sampler": ("evonas.supernet:SAMPLERS", "Sampler subclass with Config; entry(space, config)"),
    "predictor": ("predictors:PREDICTORS", "scikit-learn estimator factory; entry(**hyper_parameters)"),
    "encoding": ("predictors:ENCODINGS", "fn(archs, space) -> array (n_archs, n_features)"),
    "pruner": ("ensembles:PRUNERS", "fn(probs, labels, rng, **params) -> Selection"),
    "diversity": ("ensembles:DIVERSITY", "fn(probs_a, probs_b, labels) -> float"),
    "dnas_method": ("evonas.dnas:DNAS_METHODS", "DNASMethod(Config, step); step(model, train_batch, val_batch, ctx, config) -> StepStats"),
    "dnas_selection": ("evonas.dnas:DNAS_SELECTIONS", "DNASSelection(Config, select); select(model, ctx, config) -> Arch"),
    "run": ("evonas.runs:RUN_KINDS", "RunKind subclass instance (a command with a run directory)"),
}
"""Every extension point: kind -> (its registry's import path, the calling convention)."""


def registry(kind: str) -> Registry[Any]:
    """The registry of ``kind`` (``"space"``, ``"strategy"``, ... see :data:`KINDS`).

    Raises:
        UnknownChoiceError: ``kind`` is not an extension point.
    """
    if kind not in KINDS:
        raise UnknownChoiceError("extension point", kind, sorted(KINDS))
    found: Registry[Any] = resolve_import(KINDS[kind][0])
    return found


def entry_for_space(kind: str, name: str, space: Any) -> Any:
    """The ``kind`` entry ``name``, checked to serve ``space`` (its ``space`` attribute).

    Raises:
        UnknownChoiceError: ``name`` is not registered.
        CapabilityError: The entry serves another space; the message lists those that
            serve this one.
    """
    from evonas.errors import CapabilityError

    reg = registry(kind)
    entry = reg.get(name)
    served = getattr(entry, "space", None)
    if served is not None and served != space.name:
        fitting = [n for n in reg.names() if getattr(reg.get(n), "space", None) in (None, space.name)]
        raise CapabilityError(
            f"{kind} {name!r} serves space {served!r}, not the configured space {space.name!r}; "
            f"{kind}s for {space.name!r}: {', '.join(fitting) or 'none registered'}"
        )
    return entry


def register(kind: str, name: str, obj: Any = None) -> Any:
    """Register ``obj`` as the ``kind`` called ``name``; use as a decorator or a call.

    Args:
        kind: The extension point (see :data:`KINDS`).
        name: The name configs use.
        obj: The entry; omit it to use :func:`register` as a decorator.

    Returns:
        ``obj`` (or the decorator).

    Raises:
        UnknownChoiceError: ``kind`` is not an extension point.
        PluginError: ``name`` is already registered.
    """
    target = registry(kind)
    if obj is None:
        return target.register(name)
    return target.register(name)(obj)
