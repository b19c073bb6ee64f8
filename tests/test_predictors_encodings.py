"""Encodings (adjacency one-hot, one-hot, BANANAS paths, PyG graphs) and HAAP, on hand-made cells."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from _predictor_fixtures import FlatSpace
from evonas.errors import CapabilityError, UnknownChoiceError
from evonas.spaces import ArchGraph, SearchSpace, get_space
from predictors import (
    ENCODING_CAPABILITIES,
    ENCODINGS,
    ParamError,
    RandomForestPredictor,
    adjacency_one_hot,
    encode,
    encoding_capabilities,
    graph_adjacency_one_hot,
    graph_path_encoding,
    haap_augment,
    homogeneous_graphs,
    one_hot,
    path_encoding,
    relabel,
    to_pyg,
    topological_relabellings,
)

SPACE = get_space("nb201")
# ops: 0 none, 1 skip_connect, 2 nor_conv_1x1, 3 nor_conv_3x3, 4 avg_pool_3x3
# edges: (0,1) (0,2) (1,2) (0,3) (1,3) (2,3)
ARCH = (2, 0, 1, 1, 4, 3)


def _path_index(ops: list[int]) -> int:
    """Index in the path encoding: paths over the 4 non-none ops, by length, then lexicographic."""
    offset = {1: 0, 2: 4, 3: 4 + 16}[len(ops)]
    index = 0
    for op in ops:
        index = index * 4 + (op - 1)
    return offset + index


def test_one_hot_exact() -> None:
    x = one_hot([ARCH], SPACE)
    assert x.shape == (1, 30)
    assert np.flatnonzero(x[0]).tolist() == [2, 5, 11, 16, 24, 28]


def test_adjacency_one_hot_exact() -> None:
    x = adjacency_one_hot([ARCH], SPACE)[0]
    assert x.shape == (28 + 8 * 7,)
    adj = np.zeros((8, 8))
    # op-node graph: node k+1 is edge k; node 3 = edge (1,2) reads node 1 = edge (0,1), ...
    for s, t in [(0, 1), (0, 2), (0, 4), (1, 3), (1, 5), (2, 6), (3, 6), (4, 7), (5, 7), (6, 7)]:
        adj[s, t] = 1
    np.testing.assert_array_equal(x[:28], adj[np.triu_indices(8, k=1)])
    types = x[28:].reshape(8, 7)
    # types: input, none, skip, conv1x1, conv3x3, avgpool, output
    assert types.argmax(axis=1).tolist() == [0, 3, 1, 2, 2, 5, 4, 6]
    assert types.sum() == 8


def test_path_encoding_exact() -> None:
    x = path_encoding([ARCH], SPACE)[0]
    assert x.shape == (4 + 16 + 64,)
    # input->output paths: (0,3) = [skip]; (0,1),(1,3) = [conv1x1, avgpool];
    # (0,2),(2,3) goes through `none` -> absent; (0,1),(1,2),(2,3) = [conv1x1, skip, conv3x3]
    expected = sorted([_path_index([1]), _path_index([2, 4]), _path_index([2, 1, 3])])
    assert np.flatnonzero(x).tolist() == expected


def test_path_encoding_of_all_none_and_all_conv() -> None:
    assert path_encoding([(0,) * 6], SPACE).sum() == 0
    # all conv3x3: four paths, two of them the same op sequence -> three bits
    x = path_encoding([(3,) * 6], SPACE)[0]
    assert np.flatnonzero(x).tolist() == [_path_index([3]), _path_index([3, 3]), _path_index([3, 3, 3])]


def test_encode_registry_and_empty_input() -> None:
    assert set(ENCODINGS.names()) == {"adjacency_one_hot", "one_hot", "path"}
    for name in ENCODINGS.names():
        assert encode([], SPACE, name).shape[0] == 0
        assert encode([], SPACE, name).shape[1] == encode([ARCH], SPACE, name).shape[1]
    with pytest.raises(UnknownChoiceError, match="unknown encoding 'bits'; valid choices: adjacency_one_hot, one_hot, path"):
        encode([ARCH], SPACE, "bits")


def test_pyg_graph_is_the_op_node_graph() -> None:
    (data,) = to_pyg([ARCH], SPACE)
    graph = SPACE.graph(ARCH)
    assert data.num_nodes == 8
    assert data.x.shape == (8, 7)
    assert data.node_type.tolist() == list(graph.node_types)
    assert sorted(map(tuple, data.edge_index.t().tolist())) == list(graph.edges)


# ----------------------------------------------------------------------------------- HAAP
def test_topological_relabellings_of_small_graphs() -> None:
    chain = ((0, 1), (1, 2), (2, 3))
    assert topological_relabellings(4, chain) == ((0, 1, 2, 3),)
    diamond = ((0, 1), (0, 2), (1, 3), (2, 3))
    assert topological_relabellings(4, diamond) == ((0, 1, 2, 3), (0, 2, 1, 3))


def test_nb201_has_66_homogeneous_representations() -> None:
    # Op nodes 1..6 must keep 1<3, 1<5, 2<6, 3<6; node 4 is free. The orders of
    # {1,2,3,5,6} under those constraints number 3 + 4 + 4 = 11, and node 4 can go in any
    # of 6 places: 66 (the identity included).
    graph = SPACE.graph((3,) * 6)
    assert len(topological_relabellings(graph.num_nodes, graph.edges)) == 66
    assert len(homogeneous_graphs(graph)) == 66
    # the op-node graph has no automorphism besides the identity, so none coincide
    assert len(homogeneous_graphs(SPACE.graph(ARCH))) == 66


def test_homogeneous_graphs_compute_the_same_thing() -> None:
    graph = SPACE.graph(ARCH)
    reps = homogeneous_graphs(graph)
    assert reps[0] == graph
    base_paths = graph_path_encoding(graph, 3)
    encodings = set()
    for g in reps:
        assert all(s < t for s, t in g.edges)  # still upper-triangular
        assert sorted(g.node_types) == sorted(graph.node_types)
        # a permutation-invariant encoding cannot tell them apart ...
        np.testing.assert_array_equal(graph_path_encoding(g, 3), base_paths)
        encodings.add(graph_adjacency_one_hot(g).tobytes())
    # ... an order-dependent one sees 66 different inputs
    assert len(encodings) == 66


def test_relabel_exact() -> None:
    g = ArchGraph(node_types=(0, 1, 2, 3), edges=((0, 1), (0, 2), (1, 3), (2, 3)), type_names=("in", "a", "b", "out"))
    r = relabel(g, (0, 2, 1, 3))
    assert r.node_types == (0, 2, 1, 3)
    assert r.edges == ((0, 1), (0, 2), (1, 3), (2, 3))


def test_haap_augment_rows_targets_and_sources() -> None:
    archs = [ARCH, (3,) * 6]
    y = np.array([1.5, -2.0])
    x, y_out, source = haap_augment(archs, y, SPACE, graph_adjacency_one_hot, 4, np.random.default_rng(0))
    assert x.shape == (2 + 2 * 4, 84)
    np.testing.assert_array_equal(x[:2], adjacency_one_hot(archs, SPACE))
    assert source.tolist() == [0, 1, 0, 0, 0, 0, 1, 1, 1, 1]
    np.testing.assert_array_equal(y_out, y[source])
    x_all, _, _ = haap_augment(archs, y, SPACE, graph_adjacency_one_hot, None, np.random.default_rng(0))
    assert x_all.shape[0] == 2 * 66


def test_haap_refused_for_permutation_invariant_encodings() -> None:
    archs = [ARCH, (3,) * 6, (1,) * 6]
    with pytest.raises(ParamError, match="HAAP needs an encoding that depends on the node order"):
        RandomForestPredictor(encoding="path", haap=True).fit(archs, [1.0, 2.0, 3.0])
    with pytest.raises(ParamError, match="invalid value 0 for 'haap_samples' of RandomForestPredictor; expected an integer in \\[1, \\d+\\]"):
        RandomForestPredictor(encoding="adjacency_one_hot", haap=True, haap_samples=0).fit(archs, [1.0, 2.0, 3.0])


# ----------------------------------------------------------------------- capabilities
def test_encodings_state_and_check_their_capabilities() -> None:
    assert set(ENCODING_CAPABILITIES) == set(ENCODINGS.names())
    assert encoding_capabilities("one_hot") == {"fixed_length"}
    assert encoding_capabilities("path") == encoding_capabilities("adjacency_one_hot") == {"graph"}
    flat = FlatSpace()  # fixed-length, no op-node graph
    x = one_hot([(0, 1, 2, 0), (2, 2, 2, 2)], flat)
    assert x.shape == (2, 12)
    assert np.flatnonzero(x[0]).tolist() == [0, 4, 8, 9]
    for name in ("path", "adjacency_one_hot"):
        with pytest.raises(CapabilityError, match=f"the {name} encoding needs a search space with graph; space 'toy_flat'"):
            encode([(0, 1, 2, 0)], flat, name)
    with pytest.raises(CapabilityError, match="PyG graphs of architectures needs a search space with graph"):
        to_pyg([(0, 1, 2, 0)], flat)
    with pytest.raises(CapabilityError, match="HAAP needs a search space with graph"):
        haap_augment([(0, 1, 2, 0)], np.zeros(1), flat, graph_adjacency_one_hot, 1, np.random.default_rng(0))


class _OpsCount:
    """A plugin encoding stating its capabilities as an attribute."""

    capabilities = frozenset({"enumerable"})

    def __call__(self, archs: Sequence[tuple[int, ...]], space: SearchSpace) -> np.ndarray:
        return np.array([[float(sum(a))] for a in archs])


def test_plugin_encoding_states_capabilities_as_an_attribute() -> None:
    ENCODINGS.register("ops_count_test")(_OpsCount())
    try:
        assert encoding_capabilities("ops_count_test") == {"enumerable"}
        est = RandomForestPredictor(encoding="ops_count_test", n_estimators=3)
        assert est.required_capabilities() == {"enumerable"}
    finally:
        ENCODINGS.unregister("ops_count_test")
