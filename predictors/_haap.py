"""HAAP: Homogeneous Architecture Augmentation for Neural Predictors.

Liu et al., "Homogeneous Architecture Augmentation for Neural Predictor", ICCV 2021.
An architecture's op-node graph can be written down with its intermediate nodes in any
topological order: each order gives a different adjacency matrix and op list (a
*homogeneous* representation) of the same computation. Encodings that depend on the node
order (``adjacency_one_hot``) see these as different inputs; adding them to the training
set, all with the architecture's label, teaches the predictor that they are the same
network. Permutation-invariant encodings (paths, GNNs) gain nothing, so HAAP is refused for
them.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Sequence
from typing import cast

import numpy as np

from evonas.spaces import Arch, ArchGraph, GraphSpace, SearchSpace, require

HAAP_ENCODINGS = ("adjacency_one_hot",)
"""Encodings that depend on the node order, for which HAAP is meaningful."""


@functools.lru_cache(maxsize=64)
def topological_relabellings(num_nodes: int, edges: tuple[tuple[int, int], ...]) -> tuple[tuple[int, ...], ...]:
    """Every relabelling of the intermediate nodes that keeps the graph topologically ordered.

    The input (node 0) and the output (last node) keep their places; intermediate nodes
    are permuted so that every edge still goes from a lower to a higher index, i.e. the
    adjacency matrix stays upper-triangular. The identity comes first.

    Args:
        num_nodes: Nodes of the graph, input and output included.
        edges: ``(source, target)`` pairs.

    Returns:
        Permutations ``perm`` with ``perm[old] = new`` node index.
    """
    inner = list(range(1, num_nodes - 1))
    out = []
    for order in itertools.permutations(inner):
        perm = [0] * num_nodes
        perm[num_nodes - 1] = num_nodes - 1
        for new, old in enumerate(order, start=1):
            perm[old] = new
        if all(perm[s] < perm[t] for s, t in edges):
            out.append(tuple(perm))
    out.sort(key=lambda p: p != tuple(range(num_nodes)))
    return tuple(out)


def relabel(graph: ArchGraph, perm: Sequence[int]) -> ArchGraph:
    """``graph`` with node ``i`` renamed ``perm[i]`` (same computation, other representation)."""
    types = [0] * graph.num_nodes
    for old, new in enumerate(perm):
        types[new] = graph.node_types[old]
    edges = tuple(sorted((perm[s], perm[t]) for s, t in graph.edges))
    return ArchGraph(node_types=tuple(types), edges=edges, type_names=graph.type_names)


def homogeneous_graphs(graph: ArchGraph) -> list[ArchGraph]:
    """All homogeneous representations of ``graph``, the original first (duplicates removed)."""
    seen: set[tuple[tuple[int, ...], tuple[tuple[int, int], ...]]] = set()
    out = []
    for perm in topological_relabellings(graph.num_nodes, graph.edges):
        g = relabel(graph, perm)
        key = (g.node_types, g.edges)
        if key not in seen:
            seen.add(key)
            out.append(g)
    return out


def haap_augment(
    archs: Sequence[Arch],
    y: np.ndarray,
    space: SearchSpace,
    encode_graph: Callable[[ArchGraph], np.ndarray],
    max_per_arch: int | None,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Encoded training set with the homogeneous representations of every architecture added.

    Args:
        archs: Labelled architectures.
        y: Their targets. Shapes: ``(len(archs),)``.
        space: Their search space; needs the ``graph`` capability (``space.graph`` gives
            the op-node graph).
        encode_graph: Order-dependent encoding of one graph.
        max_per_arch: Extra representations per architecture, drawn without replacement
            (``None``: all of them).
        rng: Source of the draws.

    Returns:
        ``(X, y, source)``: the originals first, in order, then the added
        representations; ``source[k]`` is the position in ``archs`` that row ``k``
        represents. Shapes: ``(n_total, n_features)``, ``(n_total,)``, ``(n_total,)``.
    """
    require(space, {"graph"}, "HAAP")
    graphs = cast(GraphSpace, space)
    rows = [encode_graph(graphs.graph(a)) for a in archs]
    targets = list(np.asarray(y, dtype=np.float64))
    source = list(range(len(archs)))
    for pos, (arch, target) in enumerate(zip(archs, y)):
        others = homogeneous_graphs(graphs.graph(arch))[1:]
        if max_per_arch is not None and len(others) > max_per_arch:
            picks = rng.choice(len(others), size=max_per_arch, replace=False)
            others = [others[i] for i in sorted(picks)]
        rows.extend(encode_graph(g) for g in others)
        targets.extend([float(target)] * len(others))
        source.extend([pos] * len(others))
    return np.stack(rows).astype(np.float32), np.asarray(targets, dtype=np.float64), np.asarray(source)
