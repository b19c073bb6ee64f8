"""The protocol every search space follows: data plus pure functions, no torch."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

Arch = tuple[int, ...]
"""A genotype: a frozen, hashable tuple of choices (for nb201: six op indices)."""


@dataclass(frozen=True)
class ArchGraph:
    """A directed acyclic graph view of an architecture, for predictors.

    Attributes:
        node_types: Type index of every node (e.g. input, one per op, output).
        edges: ``(source, target)`` pairs, sources before targets in node order.
        type_names: Names of the node types, indexed by ``node_types``.
    """

    node_types: tuple[int, ...]
    edges: tuple[tuple[int, int], ...]
    type_names: tuple[str, ...]

    @property
    def num_nodes(self) -> int:
        return len(self.node_types)

    def adjacency(self) -> np.ndarray:
        """Upper-triangular adjacency matrix. Shapes: ``(num_nodes, num_nodes)``."""
        a = np.zeros((self.num_nodes, self.num_nodes), dtype=np.float32)
        for s, t in self.edges:
            a[s, t] = 1.0
        return a

    def one_hot(self) -> np.ndarray:
        """Node-type one-hot features. Shapes: ``(num_nodes, len(type_names))``."""
        x = np.zeros((self.num_nodes, len(self.type_names)), dtype=np.float32)
        x[np.arange(self.num_nodes), list(self.node_types)] = 1.0
        return x


@runtime_checkable
class SearchSpace(Protocol):
    """A search space: genotypes are plain tuples; every operation returns new values."""

    name: str

    def validate(self, arch: Sequence[int]) -> Arch: ...

    def parse(self, text: str) -> Arch: ...

    def format(self, arch: Arch) -> str: ...

    def sample(self, rng: np.random.Generator) -> Arch: ...

    def mutate(self, arch: Arch, rng: np.random.Generator) -> Arch: ...

    def crossover(
        self, a: Arch, b: Arch, rng: np.random.Generator
    ) -> tuple[Arch, Arch]: ...

    def neighbors(self, arch: Arch) -> list[Arch]: ...

    def graph(self, arch: Arch) -> ArchGraph: ...

    def canonical(self, arch: Arch) -> Arch: ...

    def canonical_key(self, arch: Arch) -> Hashable: ...

    def all_archs(self) -> list[Arch]: ...
