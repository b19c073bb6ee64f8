"""Search spaces: genotypes as plain tuples and pure functions over them."""

from __future__ import annotations

from evonas._registry import Registry
from evonas.spaces._base import Arch, ArchGraph, SearchSpace
from evonas.spaces._nb201 import EDGES, OPS, NB201Space, nb201_unique_str

SPACES: Registry[type] = Registry("search space")
SPACES.register("nb201")(NB201Space)


def get_space(name: str) -> SearchSpace:
    """Instantiate the registered search space ``name``."""
    return SPACES.get(name)()


__all__ = ["Arch", "ArchGraph", "EDGES", "NB201Space", "OPS", "SPACES", "SearchSpace", "get_space", "nb201_unique_str"]
