"""The NAS-Bench-201 cell search space (Dong & Yang, "NAS-Bench-201: Extending the
Scope of Reproducible Neural Architecture Search", ICLR 2020).

A cell is a DAG of 4 nodes; each of the 6 edges ``i -> j`` (``i < j``) carries one of 5
operations. The genotype is the tuple of the 6 op indices in the order the official
string lists them: edges ``(0,1), (0,2), (1,2), (0,3), (1,3), (2,3)``. The official string
of a cell is ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``.

This module is pure data and functions: no torch. Building an ``nn.Module`` from a genotype
lives in :mod:`evonas.models`.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from evonas.errors import ArchError
from evonas.spaces._base import Arch, ArchGraph, SpaceBase

OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
"""Operation names, in NAS-Bench-201's order; a genotype holds indices into this tuple."""

EDGES: tuple[tuple[int, int], ...] = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
"""The ``(source, target)`` node pair of every genotype position."""

NUM_NODES = 4
NUM_EDGES = len(EDGES)
NUM_OPS = len(OPS)

_OP_INDEX = {name: i for i, name in enumerate(OPS)}
_EDGE_TOKEN = re.compile(r"^([a-z0-9_]+)~(\d+)$")
_ZERO = "0"  # canonical key of a node that always outputs zeros
_NONE, _SKIP = 0, 1


class NB201Space(SpaceBase):
    """The NAS-Bench-201 space of 5^6 = 15,625 cells.

    Genotypes are tuples of 6 ints in ``range(5)``. All methods are pure: they return new
    tuples and draw randomness only from the ``rng`` they are given. The space has no
    parameters and every capability (enumerable, crossover, graph, fixed_length).
    """

    name = "nb201"
    capabilities = frozenset({"enumerable", "crossover", "graph", "fixed_length"})
    ops = OPS
    edges = EDGES
    num_choices = NUM_OPS
    length = NUM_EDGES
    size = NUM_OPS**NUM_EDGES

    # ----------------------------------------------------------------- validation / strings
    def validate(self, arch: Sequence[int] | str) -> Arch:
        """Return ``arch`` as a genotype tuple, or raise :class:`ArchError` naming the fault."""
        return validate_nb201(arch)

    def parse(self, text: str) -> Arch:
        """Parse the official NAS-Bench-201 string (see :func:`parse_nb201`)."""
        return parse_nb201(text)

    def format(self, arch: Arch) -> str:
        """The official NAS-Bench-201 string of ``arch`` (inverse of :meth:`parse`)."""
        return format_nb201(arch)

    # ---------------------------------------------------------------------- enumeration
    def all_archs(self) -> list[Arch]:
        """All 15,625 genotypes in lexicographic order of their op indices."""
        return list(itertools.product(range(NUM_OPS), repeat=NUM_EDGES))

    def ordinal(self, arch: Arch) -> int:
        """Position of ``arch`` in :meth:`all_archs` (mixed radix, first edge most significant).

        This is *not* the NAS-Bench-201 benchmark index, whose order was fixed by the
        benchmark's release; use :meth:`evonas.tabular.NB201Table.index_of` for that.
        """
        arch = self.validate(arch)
        value = 0
        for v in arch:
            value = value * NUM_OPS + v
        return value

    def from_ordinal(self, ordinal: int) -> Arch:
        """Inverse of :meth:`ordinal`."""
        if not isinstance(ordinal, (int, np.integer)) or not 0 <= ordinal < self.size:
            raise ArchError(f"nb201 ordinal must be an int in 0..{self.size - 1}; got {ordinal!r}")
        digits = []
        value = int(ordinal)
        for _ in range(NUM_EDGES):
            value, d = divmod(value, NUM_OPS)
            digits.append(d)
        return tuple(reversed(digits))

    # ------------------------------------------------------------------------ variation
    def sample(self, rng: np.random.Generator) -> Arch:
        """A uniformly random genotype."""
        return tuple(int(v) for v in rng.integers(0, NUM_OPS, size=NUM_EDGES))

    def mutate(self, arch: Arch, rng: np.random.Generator) -> Arch:
        """Change the op of one uniformly chosen edge to a different, uniformly chosen op.

        This is the mutation of regularized evolution on NAS-Bench-201 (Real et al., AAAI
        2019, as used by Dong & Yang): the child is always one edit away from the parent.
        """
        arch = self.validate(arch)
        edge = int(rng.integers(NUM_EDGES))
        shift = int(rng.integers(1, NUM_OPS))
        child = list(arch)
        child[edge] = (arch[edge] + shift) % NUM_OPS
        return tuple(child)

    def crossover(self, a: Arch, b: Arch, rng: np.random.Generator, indpb: float = 0.5) -> tuple[Arch, Arch]:
        """Uniform crossover: each edge's ops are swapped between the parents with ``indpb``."""
        a, b = self.validate(a), self.validate(b)
        swap = rng.random(NUM_EDGES) < indpb
        c1 = tuple(y if s else x for x, y, s in zip(a, b, swap))
        c2 = tuple(x if s else y for x, y, s in zip(a, b, swap))
        return c1, c2

    def neighbors(self, arch: Arch) -> list[Arch]:
        """The 24 genotypes one edit away (6 edges x 4 other ops), edge-major, op-ascending."""
        arch = self.validate(arch)
        out = []
        for e in range(NUM_EDGES):
            for op in range(NUM_OPS):
                if op != arch[e]:
                    child = list(arch)
                    child[e] = op
                    out.append(tuple(child))
        return out

    def distance(self, a: Arch, b: Arch) -> int:
        """Hamming distance: the number of edges whose ops differ."""
        return sum(x != y for x, y in zip(self.validate(a), self.validate(b)))

    # ---------------------------------------------------------------------------- graphs
    def graph(self, arch: Arch) -> ArchGraph:
        """The op-node graph: input, one node per edge op, output (8 nodes).

        The node of edge ``i -> j`` receives from the nodes of all edges into ``i`` (or from
        the input when ``i == 0``) and feeds the nodes of all edges out of ``j`` (or the
        output when ``j == 3``). Node types are ``input, <5 ops>, output``.
        """
        arch = self.validate(arch)
        type_names = ("input", *OPS, "output")
        node_types = (0, *(op + 1 for op in arch), len(type_names) - 1)
        out_node = NUM_EDGES + 1
        edges = []
        for k, (i, j) in enumerate(EDGES):
            node = k + 1
            if i == 0:
                edges.append((0, node))
            else:
                edges.extend((m + 1, node) for m, (_, t) in enumerate(EDGES) if t == i)
            if j == NUM_NODES - 1:
                edges.append((node, out_node))
        return ArchGraph(node_types=node_types, edges=tuple(sorted(edges)), type_names=type_names)

    # ------------------------------------------------------------------------- canonical
    def canonical_key(self, arch: Arch) -> str:
        """A string that is equal for two cells iff they compute the same function
        under this module's rules.

        Rules (conservative: cells that the rules merge always compute the same function,
        given the usual convention that any op applied to an all-zero input is zero):
        ``none`` edges contribute nothing; an op reading a node that is always zero
        contributes nothing; ``skip_connect`` passes its input's terms into the sum
        unchanged; a node is the sorted multiset of its terms, so the order of edges
        into a node does not matter. Edges that cannot reach the output therefore do not
        appear in the key. The all-zero cell has key ``"0"``.

        This merges the 15,625 cells into 4,930 classes; NAS-Bench-201's own de-isomorphism
        (``CellStructure.to_unique_str(consider_zero=True)``), which keeps zero terms in
        multi-input sums, gives 6,466 classes, each contained in one of ours
        (see :func:`nb201_unique_str`).
        """
        return _canonical_key(self.validate(arch))

    def canonical(self, arch: Arch) -> Arch:
        """The smallest genotype (lexicographically) with the same :meth:`canonical_key`."""
        return _canonical_representatives()[self.canonical_key(arch)]


def validate_nb201(arch: Sequence[int] | str) -> Arch:
    """``arch`` (6 op indices or the official string) as a genotype tuple.

    Raises:
        ArchError: It is neither; the message names the fault.
    """
    if isinstance(arch, str):
        return parse_nb201(arch)
    try:
        values = tuple(arch)
    except TypeError:
        raise ArchError(
            f"nb201 architecture must be a tuple of {NUM_EDGES} op indices in 0..{NUM_OPS - 1}; "
            f"got {arch!r}"
        ) from None
    if len(values) != NUM_EDGES or not all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) and 0 <= v < NUM_OPS
        for v in values
    ):
        raise ArchError(
            f"nb201 architecture must be a tuple of {NUM_EDGES} op indices in 0..{NUM_OPS - 1}; "
            f"got {arch!r}"
        )
    return tuple(int(v) for v in values)


def parse_nb201(text: str) -> Arch:
    """Parse the official NAS-Bench-201 string.

    Args:
        text: e.g. ``"|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"``.

    Raises:
        ArchError: The string is not exactly of that form; the message says why.
    """
    if not isinstance(text, str):
        raise ArchError(f"nb201 architecture string must be a str; got {text!r}")
    expected = "|op~0|+|op~0|op~1|+|op~0|op~1|op~2|"
    nodes = text.split("+")
    if len(nodes) != NUM_NODES - 1:
        raise ArchError(
            f"malformed nb201 architecture {text!r}: expected 3 nodes separated by '+' as in {expected!r}"
        )
    arch: list[int] = []
    for j, node in enumerate(nodes, start=1):
        if len(node) < 2 or not (node.startswith("|") and node.endswith("|")):
            raise ArchError(
                f"malformed nb201 architecture {text!r}: node {j} must be enclosed in '|' as in {expected!r}"
            )
        tokens = node[1:-1].split("|")
        if len(tokens) != j:
            raise ArchError(
                f"malformed nb201 architecture {text!r}: node {j} needs {j} inputs, got {len(tokens)}"
            )
        for i, token in enumerate(tokens):
            m = _EDGE_TOKEN.match(token)
            if m is None:
                raise ArchError(f"malformed nb201 architecture {text!r}: bad edge {token!r}, expected 'op~{i}'")
            op, src = m.group(1), int(m.group(2))
            if op not in _OP_INDEX:
                raise ArchError(
                    f"unknown nb201 operation {op!r} in {text!r}; valid operations: {', '.join(OPS)}"
                )
            if src != i:
                raise ArchError(
                    f"malformed nb201 architecture {text!r}: edge {token!r} of node {j} must read from node {i}"
                )
            arch.append(_OP_INDEX[op])
    return tuple(arch)


def format_nb201(arch: Sequence[int]) -> str:
    """The official NAS-Bench-201 string of ``arch`` (inverse of :func:`parse_nb201`)."""
    genotype = validate_nb201(arch)
    parts = []
    k = 0
    for j in range(1, NUM_NODES):
        tokens = []
        for i in range(j):
            tokens.append(f"{OPS[genotype[k]]}~{i}")
            k += 1
        parts.append("|" + "|".join(tokens) + "|")
    return "+".join(parts)


def _canonical_key(arch: Arch) -> str:
    nodes: dict[int, tuple[str, ...]] = {0: ("x",)}
    for j in range(1, NUM_NODES):
        terms: list[str] = []
        for k, (i, t) in enumerate(EDGES):
            if t != j or arch[k] == _NONE or not nodes[i]:
                continue
            if arch[k] == _SKIP:
                terms.extend(nodes[i])
            else:
                terms.append(f"{OPS[arch[k]]}({'+'.join(nodes[i])})")
        nodes[j] = tuple(sorted(terms))
    return "+".join(nodes[NUM_NODES - 1]) or _ZERO


@lru_cache(maxsize=1)
def _canonical_representatives() -> dict[str, Arch]:
    reps: dict[str, Arch] = {}
    for arch in itertools.product(range(NUM_OPS), repeat=NUM_EDGES):
        reps.setdefault(_canonical_key(arch), arch)  # lexicographic order: first is smallest
    return reps


def nb201_unique_str(arch: Arch) -> str:
    """NAS-Bench-201's own isomorphism key (``to_unique_str(consider_zero=True)``).

    Kept for comparison with the benchmark's published count of 6,466 unique cells; it
    propagates zeros only through single-input nodes, so it merges fewer cells than
    :meth:`NB201Space.canonical_key`.
    """
    nodes = {0: "0"}
    for j in range(1, NUM_NODES):
        cur = []
        for k, (i, t) in enumerate(EDGES):
            if t != j:
                continue
            op = OPS[arch[k]]
            if op == "none" or nodes[i] == "#":
                cur.append("#")
            elif op == "skip_connect":
                cur.append(nodes[i])
            else:
                cur.append(f"({nodes[i]})@{op}")
        nodes[j] = "+".join(sorted(cur))
    return nodes[NUM_NODES - 1]
