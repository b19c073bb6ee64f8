"""The protocol every search space follows: data plus pure functions, no torch.

A space is a value, built from the ``space`` section of a config and handed down to
everything that needs it. Its protocol is a small core (:class:`SearchSpace`) plus
optional capabilities that a space declares in ``capabilities``:

======================  ==================================================================
capability              what the space then also offers
======================  ==================================================================
``enumerable``          ``size``, ``ordinal(arch)``, ``from_ordinal(i)``, ``all_archs()``
``crossover``           ``crossover(a, b, rng) -> (child, child)``
``graph``               ``graph(arch) -> ArchGraph`` (the op-node graph, for GNN predictors)
``fixed_length``        ``length`` positions with ``num_choices`` options each (one-hot
                        encodings, samplers that count ops per position)
======================  ==================================================================

Strategies, fitness functions, predictors, samplers and run kinds state the capabilities
they need; :func:`require` turns a missing one into a one-line :class:`CapabilityError`
when a config is read, instead of an ``AttributeError`` deep inside a search.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from evonas.errors import CapabilityError, PluginError

Arch = tuple[int, ...]
"""A genotype: a frozen, hashable tuple of choices (for nb201: six op indices)."""

CORE: tuple[str, ...] = ("name", "capabilities", "validate", "parse", "format", "sample", "mutate", "neighbors",
                         "canonical_key")
"""What every space defines."""

CAPABILITIES: dict[str, tuple[str, ...]] = {
    "enumerable": ("size", "ordinal", "from_ordinal", "all_archs"),
    "crossover": ("crossover",),
    "graph": ("graph",),
    "fixed_length": ("length", "num_choices"),
}
"""Optional capabilities and the attributes a space declaring each must have."""


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
    """The core of a search space: genotypes are plain tuples; every operation returns new values.

    Attributes:
        name: The registered name.
        capabilities: The optional capabilities it offers (see the module docstring).
    """

    name: str
    capabilities: frozenset[str]

    def validate(self, arch: Any) -> Arch:
        """``arch`` (a genotype or its string) as a genotype; raises ArchError otherwise."""
        ...

    def parse(self, text: str) -> Arch:
        """The genotype of an architecture string."""
        ...

    def format(self, arch: Arch) -> str:
        """The architecture string of a genotype (inverse of :meth:`parse`)."""
        ...

    def sample(self, rng: np.random.Generator) -> Arch:
        """A random genotype (all randomness from ``rng``)."""
        ...

    def mutate(self, arch: Arch, rng: np.random.Generator) -> Arch:
        """A random one-edit change of ``arch``."""
        ...

    def neighbors(self, arch: Arch) -> list[Arch]:
        """Every genotype one edit away, in a fixed order."""
        ...

    def canonical_key(self, arch: Arch) -> Hashable:
        """Equal for two genotypes iff the space knows they compute the same function."""
        ...


class EnumerableSpace(SearchSpace, Protocol):
    """A space with the ``enumerable`` capability."""

    size: int

    def ordinal(self, arch: Arch) -> int: ...

    def from_ordinal(self, ordinal: int) -> Arch: ...

    def all_archs(self) -> list[Arch]: ...


class CrossoverSpace(SearchSpace, Protocol):
    """A space with the ``crossover`` capability."""

    def crossover(self, a: Arch, b: Arch, rng: np.random.Generator) -> tuple[Arch, Arch]: ...


class GraphSpace(SearchSpace, Protocol):
    """A space with the ``graph`` capability."""

    def graph(self, arch: Arch) -> ArchGraph: ...


class FixedLengthSpace(SearchSpace, Protocol):
    """A space with the ``fixed_length`` capability."""

    length: int
    num_choices: int


def require(space: SearchSpace, capabilities: Iterable[str], who: str) -> None:
    """Raise :class:`CapabilityError` unless ``space`` declares every one of ``capabilities``.

    Args:
        space: The configured space.
        capabilities: What ``who`` needs.
        who: Who needs it, e.g. ``"strategy 'nsga2'"``.
    """
    missing = sorted(set(capabilities) - set(getattr(space, "capabilities", ())))
    if missing:
        offered = ", ".join(sorted(space.capabilities)) or "none"
        raise CapabilityError(
            f"{who} needs a search space with {', '.join(missing)}; space {space.name!r} does not declare "
            f"{'it' if len(missing) == 1 else 'them'} (its capabilities: {offered})"
        )


def check_space_class(cls: Any) -> None:
    """Check at registration that a space class defines the core and what it declares.

    Raises:
        PluginError: A core attribute or a declared capability's attribute is missing, or
            an unknown capability is declared.
    """
    where = f"search space {getattr(cls, 'name', cls)!r} ({getattr(cls, '__module__', '?')})"
    missing = [a for a in CORE if not hasattr(cls, a)]
    if missing:
        raise PluginError(f"{where} lacks the core attribute(s) {', '.join(missing)}; every space defines "
                          f"{', '.join(CORE)}")
    declared = getattr(cls, "capabilities")
    if not isinstance(declared, (frozenset, set, tuple, list)):
        raise PluginError(f"{where}: 'capabilities' must be a set of names; got {declared!r}")
    unknown = sorted(set(declared) - set(CAPABILITIES))
    if unknown:
        raise PluginError(f"{where} declares unknown capabilities {unknown}; valid: {', '.join(CAPABILITIES)}")
    for capability in declared:
        lacking = [a for a in CAPABILITIES[capability] if not hasattr(cls, a)]
        if lacking:
            raise PluginError(f"{where} declares {capability!r} but lacks {', '.join(lacking)}")


@dataclass(frozen=True)
class NoParams:
    """A component without parameters."""


class SpaceBase:
    """Convenience base of spaces that are values: equal when of one class with equal configs.

    Subclasses set ``name``, ``capabilities`` and ``Config`` (a frozen dataclass; default
    :class:`NoParams`) and read their parameters from ``self.config``.

    Args:
        config: The space's parameters (default: ``Config()``).
    """

    name: ClassVar[str]
    capabilities: ClassVar[frozenset[str]] = frozenset()
    Config: ClassVar[type] = NoParams

    def __init__(self, config: Any = None) -> None:
        self.config = self.Config() if config is None else config

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and getattr(other, "config", None) == self.config

    def __hash__(self) -> int:
        return hash((type(self).__qualname__, self.config))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config!r})"

