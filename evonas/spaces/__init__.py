"""Search spaces: genotypes as plain tuples and pure functions over them.

A space is built from a config's ``space: {name, params}`` section with
:func:`build_space` and passed down to every component that needs it. New spaces
register with ``evonas.register("space", name)``; see :mod:`evonas.spaces._base` for the
protocol and its capabilities.
"""

from __future__ import annotations

from typing import Any

from evonas._registry import Registry
from evonas.spaces._base import (
    CAPABILITIES,
    CORE,
    Arch,
    ArchGraph,
    CrossoverSpace,
    EnumerableSpace,
    FixedLengthSpace,
    GraphSpace,
    NoParams,
    SearchSpace,
    SpaceBase,
    check_space_class,
    require,
)
from evonas.spaces._nb201 import EDGES, OPS, NB201Space, format_nb201, nb201_unique_str, parse_nb201, validate_nb201


SPACES: Registry[Any] = Registry("search space", check=check_space_class)
"""Space name -> class with ``Config``; ``space = entry(config)``."""
SPACES.register("nb201")(NB201Space)


def build_space(name: str = "nb201", params: dict[str, Any] | None = None) -> SearchSpace:
    """The registered space ``name`` built with ``params`` (checked against its ``Config``).

    Raises:
        UnknownChoiceError: ``name`` is not registered.
        ConfigError: A parameter is unknown or invalid.
    """
    from evonas.config import from_dict

    entry = SPACES.get(name)
    config_cls = getattr(entry, "Config", NoParams)
    space: SearchSpace = entry(from_dict(config_cls, params or {}, "space.params"))
    return space


def get_space(name: str) -> SearchSpace:
    """The registered space ``name`` with its default parameters."""
    return build_space(name)


__all__ = [
    "CAPABILITIES",
    "CORE",
    "Arch",
    "ArchGraph",
    "CrossoverSpace",
    "EDGES",
    "EnumerableSpace",
    "FixedLengthSpace",
    "GraphSpace",
    "NB201Space",
    "NoParams",
    "OPS",
    "SPACES",
    "SearchSpace",
    "SpaceBase",
    "build_space",
    "check_space_class",
    "format_nb201",
    "get_space",
    "nb201_unique_str",
    "parse_nb201",
    "require",
    "validate_nb201",
]
