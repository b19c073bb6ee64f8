"""Architecture encodings: fixed-length vectors and PyG graphs built from the op-node graph.

Each encoding needs a capability of the search space (:data:`ENCODING_CAPABILITIES`):
``graph`` for the ones built from the op-node graph, ``fixed_length`` for ``one_hot``.

* ``adjacency_one_hot`` — the strictly upper-triangular adjacency matrix of the op-node
  graph, flattened, followed by the one-hot node types (the "adjacency one-hot" encoding of
  White et al., "A Study on Encodings for Neural Architecture Search", NeurIPS 2020). It
  depends on the order of the nodes, which is what HAAP exploits (see :mod:`._haap`).
* ``one_hot`` — the one-hot op of every genotype position (for spaces whose topology is
  fixed, e.g. NAS-Bench-201, the same information as ``adjacency_one_hot``).
* ``path`` — the path encoding of BANANAS (White et al., AAAI 2021): one bit per possible
  sequence of ops along an input-to-output path; paths through a ``none`` op do not exist.
  It does not depend on the order of the nodes.
* :func:`to_pyg` — a :class:`torch_geometric.data.Data` per architecture (node features =
  one-hot node types, directed edges of the op-node graph).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, cast

import numpy as np

from evonas._registry import Registry
from evonas.spaces import Arch, ArchGraph, FixedLengthSpace, GraphSpace, SearchSpace, require

_IO_TYPES = ("input", "output")
_ABSENT_OP = "none"

Encoder = Callable[[Sequence[Arch], SearchSpace], np.ndarray]

ENCODINGS: Registry[Encoder] = Registry("encoding")
"""Vector encodings by name: ``fn(archs, space) -> array (n_archs, n_features)``."""

ENCODING_CAPABILITIES: dict[str, frozenset[str]] = {
    "adjacency_one_hot": frozenset({"graph"}),
    "one_hot": frozenset({"fixed_length"}),
    "path": frozenset({"graph"}),
}
"""The search-space capabilities each built-in encoding needs."""


def encoding_capabilities(name: str) -> frozenset[str]:
    """The capabilities the encoding ``name`` needs of a space.

    A plugin encoding states them as a ``capabilities`` attribute of its function (none
    when it has no such attribute).
    """
    if name in ENCODING_CAPABILITIES:
        return ENCODING_CAPABILITIES[name]
    return frozenset(getattr(ENCODINGS.get(name), "capabilities", ()))


def _graph_space(space: SearchSpace, who: str) -> GraphSpace:
    require(space, {"graph"}, who)
    return cast(GraphSpace, space)


def graph_adjacency_one_hot(graph: ArchGraph) -> np.ndarray:
    """Adjacency-one-hot vector of one op-node graph.

    Shapes:
        Output ``(n*(n-1)/2 + n*t,)`` for ``n`` nodes and ``t`` node types.
    """
    adj = graph.adjacency()
    upper = adj[np.triu_indices(graph.num_nodes, k=1)]
    return np.concatenate([upper, graph.one_hot().ravel()]).astype(np.float32)


@ENCODINGS.register("adjacency_one_hot")
def adjacency_one_hot(archs: Sequence[Arch], space: SearchSpace) -> np.ndarray:
    """Adjacency-one-hot encodings of ``archs``. Shapes: ``(len(archs), n_features)``."""
    graphs = _graph_space(space, "the adjacency_one_hot encoding")
    return _stack([graph_adjacency_one_hot(graphs.graph(a)) for a in archs], _width(graphs, "adjacency_one_hot"))


@ENCODINGS.register("one_hot")
def one_hot(archs: Sequence[Arch], space: SearchSpace) -> np.ndarray:
    """One-hot op per genotype position. Shapes: ``(len(archs), length * num_choices)``."""
    require(space, {"fixed_length"}, "the one_hot encoding")
    fixed = cast(FixedLengthSpace, space)
    k = int(fixed.num_choices)
    length = int(fixed.length)
    out = np.zeros((len(archs), length * k), dtype=np.float32)
    for i, arch in enumerate(archs):
        out[i, np.arange(length) * k + np.asarray(arch)] = 1.0
    return out


@functools.lru_cache(maxsize=8)
def _path_layout(type_names: tuple[str, ...], max_ops: int) -> tuple[dict[str, int], list[int]]:
    present = [t for t in type_names if t not in _IO_TYPES and t != _ABSENT_OP]
    code = {t: i for i, t in enumerate(present)}
    offsets = [0]
    for length in range(1, max_ops + 1):
        offsets.append(offsets[-1] + len(present) ** length)
    return code, offsets


def _input_output_paths(graph: ArchGraph) -> list[tuple[int, ...]]:
    """All node sequences from the input (node 0) to the output (last node)."""
    succ: dict[int, list[int]] = {}
    for s, t in graph.edges:
        succ.setdefault(s, []).append(t)
    last = graph.num_nodes - 1
    paths: list[tuple[int, ...]] = []
    stack: list[tuple[int, ...]] = [(0,)]
    while stack:
        path = stack.pop()
        if path[-1] == last:
            paths.append(path)
            continue
        for nxt in succ.get(path[-1], ()):
            stack.append((*path, nxt))
    return paths


_SPACE_INFO: dict[SearchSpace, dict[str, int]] = {}


def _space_info(space: GraphSpace) -> dict[str, int]:
    """Sizes that depend on the space only, computed once per space value."""
    info = _SPACE_INFO.get(space)
    if info is None:
        # The graph encodings assume that every architecture of a space has the same op-node
        # topology (only node types vary, as in cell spaces), so any member tells.
        graph = space.graph(space.sample(np.random.default_rng(0)))
        max_ops = max(len(p) - 2 for p in _input_output_paths(graph))
        info = {
            "max_ops": max_ops,
            "path": graph_path_encoding(graph, max_ops).shape[0],
            "adjacency_one_hot": graph_adjacency_one_hot(graph).shape[0],
        }
        _SPACE_INFO[space] = info
    return info


def _max_path_ops(space: GraphSpace) -> int:
    return _space_info(space)["max_ops"]


def graph_path_encoding(graph: ArchGraph, max_ops: int) -> np.ndarray:
    """BANANAS path encoding of one op-node graph.

    Args:
        graph: The op-node graph (node 0 is the input, the last node the output).
        max_ops: The longest path (in op nodes) the encoding has room for.

    Shapes:
        Output ``(sum_{l=1..max_ops} k**l,)`` with ``k`` the number of op types other than
        ``none``.
    """
    code, offsets = _path_layout(graph.type_names, max_ops)
    out = np.zeros(offsets[-1], dtype=np.float32)
    for path in _input_output_paths(graph):
        ops = [graph.type_names[graph.node_types[n]] for n in path[1:-1]]
        if not ops or any(op == _ABSENT_OP for op in ops):
            continue
        index = 0
        for op in ops:
            index = index * len(code) + code[op]
        out[offsets[len(ops) - 1] + index] = 1.0
    return out


@ENCODINGS.register("path")
def path_encoding(archs: Sequence[Arch], space: SearchSpace) -> np.ndarray:
    """BANANAS path encodings of ``archs``. Shapes: ``(len(archs), n_paths)``."""
    graphs = _graph_space(space, "the path encoding")
    max_ops = _max_path_ops(graphs)
    return _stack([graph_path_encoding(graphs.graph(a), max_ops) for a in archs], _width(graphs, "path"))


def _width(space: GraphSpace, encoding: str) -> int:
    return _space_info(space)[encoding]


def _stack(rows: list[np.ndarray], width: int) -> np.ndarray:
    if not rows:
        return np.zeros((0, width), dtype=np.float32)
    return np.stack(rows).astype(np.float32)


def encode(archs: Sequence[Arch], space: SearchSpace, encoding: str) -> np.ndarray:
    """Encode ``archs`` with the registered encoding ``encoding`` (unknown names raise)."""
    return ENCODINGS.get(encoding)(archs, space)


def graph_to_pyg(graph: ArchGraph, drop_absent: bool = False) -> Any:
    """A :class:`torch_geometric.data.Data` of one op-node graph.

    Args:
        graph: The op-node graph.
        drop_absent: Remove the edges of ``none`` nodes (kept as isolated nodes), so that
            messages follow the data flow: a ``none`` op passes nothing on. Its adjacency
            then tells which ops are connected, which a graph auto-encoder can learn.

    Shapes:
        ``x``: ``(num_nodes, num_types)`` one-hot node types; ``edge_index``: ``(2, num_edges)``
        directed edges; ``node_type``: ``(num_nodes,)``.
    """
    import torch
    from torch_geometric.data import Data
    from torch_geometric.utils import subgraph

    x = torch.from_numpy(graph.one_hot())
    edge_index = torch.tensor(graph.edges, dtype=torch.long).t().contiguous()
    if drop_absent and _ABSENT_OP in graph.type_names:
        absent = graph.type_names.index(_ABSENT_OP)
        keep = torch.tensor([t != absent for t in graph.node_types])
        edge_index, _ = subgraph(keep, edge_index, relabel_nodes=False, num_nodes=graph.num_nodes)
    return Data(
        x=x,
        edge_index=edge_index,
        node_type=torch.tensor(graph.node_types, dtype=torch.long),
        num_nodes=graph.num_nodes,
    )


def to_pyg(archs: Sequence[Arch], space: SearchSpace, drop_absent: bool = False) -> list[Any]:
    """PyG graphs (op-node form, from ``space.graph``) of ``archs``; see :func:`graph_to_pyg`.

    Returns:
        One :class:`torch_geometric.data.Data` per architecture.
    """
    graphs = _graph_space(space, "PyG graphs of architectures")
    return [graph_to_pyg(graphs.graph(a), drop_absent) for a in archs]
