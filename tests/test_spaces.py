from __future__ import annotations

import pickle

import numpy as np
import pytest

from evonas.errors import ArchError, UnknownChoiceError
from evonas.spaces import SPACES, NB201Space, get_space, nb201_unique_str

SPACE = get_space("nb201")
BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"


def test_parse_format_exact():
    arch = SPACE.parse(BEST)
    assert arch == (3, 3, 3, 1, 3, 2)
    assert SPACE.format(arch) == BEST


def test_round_trip_over_whole_table(nb201_path):
    import csv
    import gzip

    with gzip.open(nb201_path, "rt") as fh:
        strings = [row["arch"] for row in csv.DictReader(fh)]
    assert len(strings) == 15625
    archs = {SPACE.parse(s) for s in strings}
    assert len(archs) == 15625
    for s in strings:
        assert SPACE.format(SPACE.parse(s)) == s


@pytest.mark.parametrize(
    "bad, fragment",
    [
        ("|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|", "unknown nb201 operation 'conv'"),
        ("|none~0|+|none~0|none~1|", "expected 3 nodes"),
        ("|none~1|+|none~0|none~1|+|none~0|none~1|none~2|", "must read from node 0"),
        ("|none~0|+|none~0|+|none~0|none~1|none~2|", "node 2 needs 2 inputs"),
        ("none~0|+|none~0|none~1|+|none~0|none~1|none~2|", "enclosed in '|'"),
        ("", "expected 3 nodes"),
    ],
)
def test_malformed_strings_raise(bad, fragment):
    with pytest.raises(ArchError, match=fragment.replace("|", r"\|").replace("(", r"\(")):
        SPACE.parse(bad)


def test_validate_rejects_other_spaces():
    for bad in [(0, 1, 2), (0, 1, 2, 3, 4, 5), (0, 1, 2, 3, 4, -1), (0.0, 1, 2, 3, 4, 0), "nope", None, (True, 0, 0, 0, 0, 0)]:
        with pytest.raises(ArchError):
            SPACE.validate(bad)


def test_neighbors_are_the_24_one_edit_archs():
    arch = (0, 1, 2, 3, 4, 0)
    nbrs = SPACE.neighbors(arch)
    assert len(nbrs) == 24 and len(set(nbrs)) == 24
    assert all(SPACE.distance(arch, n) == 1 for n in nbrs)
    assert arch not in nbrs
    # exhaustive: every distance-1 arch of the space is a neighbour
    everything = [a for a in SPACE.all_archs() if SPACE.distance(arch, a) == 1]
    assert sorted(everything) == sorted(nbrs)
    assert nbrs[0] == (1, 1, 2, 3, 4, 0) and nbrs[3] == (4, 1, 2, 3, 4, 0) and nbrs[4] == (0, 0, 2, 3, 4, 0)


def test_sample_mutate_crossover_use_only_the_given_rng():
    a = SPACE.sample(np.random.default_rng(3))
    assert a == SPACE.sample(np.random.default_rng(3))
    rng = np.random.default_rng(0)
    for _ in range(200):
        child = SPACE.mutate(a, rng)
        assert SPACE.distance(a, child) == 1
    b = (4, 4, 4, 4, 4, 4)
    c1, c2 = SPACE.crossover((0,) * 6, b, np.random.default_rng(1))
    assert all({x, y} == {0, 4} for x, y in zip(c1, c2))
    assert SPACE.crossover((0,) * 6, b, np.random.default_rng(1)) == (c1, c2)
    # mutation is uniform over the 24 neighbours
    counts = {}
    rng = np.random.default_rng(7)
    for _ in range(24000):
        m = SPACE.mutate(a, rng)
        counts[m] = counts.get(m, 0) + 1
    assert set(counts) == set(SPACE.neighbors(a))
    assert max(counts.values()) < 1.2 * 1000 and min(counts.values()) > 0.8 * 1000


def test_ordinal_round_trip():
    for o in [0, 1, 777, 15624]:
        assert SPACE.ordinal(SPACE.from_ordinal(o)) == o
    assert SPACE.all_archs()[123] == SPACE.from_ordinal(123)
    with pytest.raises(ArchError):
        SPACE.from_ordinal(15625)


def test_graph_view():
    g = SPACE.graph((3, 3, 3, 1, 3, 2))
    assert g.num_nodes == 8
    assert g.type_names == ("input", "none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3", "output")
    assert g.node_types == (0, 4, 4, 4, 2, 4, 3, 6)
    # edge (0,1) is node 1, feeds edges out of node 1: (1,2)=node 3 and (1,3)=node 5
    expected = {(0, 1), (0, 2), (0, 4), (1, 3), (1, 5), (2, 6), (3, 6), (4, 7), (5, 7), (6, 7)}
    assert set(g.edges) == expected
    adj = g.adjacency()
    assert adj.shape == (8, 8) and adj.sum() == len(expected) and np.all(np.tril(adj) == 0)
    assert g.one_hot().sum(axis=1).tolist() == [1.0] * 8


def test_canonical_form_merges_dead_and_reordered_edges():
    # all edges into the output are 'none': the cell outputs zeros whatever else it holds
    assert SPACE.canonical_key((3, 3, 3, 0, 0, 0)) == "0"
    assert SPACE.canonical((3, 2, 4, 0, 0, 0)) == (0, 0, 0, 0, 0, 0)
    # node 1 unused (edges 1->2 and 1->3 are none): the op on edge 0->1 does not matter
    a = (2, 3, 0, 1, 0, 3)
    b = (4, 3, 0, 1, 0, 3)
    assert SPACE.canonical_key(a) == SPACE.canonical_key(b)
    # summation is commutative: conv on 0->2 plus skip 2->3 equals conv on 0->3 plus a dead path
    assert SPACE.canonical_key((0, 3, 0, 0, 0, 1)) == SPACE.canonical_key((0, 0, 0, 3, 0, 0))
    # a genuinely different cell stays different
    assert SPACE.canonical_key((3, 3, 3, 1, 3, 2)) != SPACE.canonical_key((3, 3, 3, 1, 3, 3))
    # skip chains: x -> skip -> node1 -> conv -> out equals conv(x) on edge 0->3
    assert SPACE.canonical_key((1, 0, 0, 0, 3, 0)) == SPACE.canonical_key((0, 0, 0, 3, 0, 0))


def test_canonical_classes_refine_nb201_own_deisomorphism():
    archs = SPACE.all_archs()
    ours = {}
    theirs = {}
    for a in archs:
        ours.setdefault(SPACE.canonical_key(a), set()).add(a)
        theirs.setdefault(nb201_unique_str(a), set()).add(a)
    assert len(theirs) == 6466  # NAS-Bench-201's published count
    assert len(ours) == 4930
    for members in theirs.values():  # each of NB201's classes lies within one of ours
        assert len({SPACE.canonical_key(a) for a in members}) == 1
    for a in archs[::97]:
        c = SPACE.canonical(a)
        assert SPACE.canonical_key(c) == SPACE.canonical_key(a) and c <= a


def test_canonical_classes_have_equal_table_accuracy_up_to_seed_noise(nb201_table):
    # Cells that compute the same function differ only by training noise in the table.
    acc = nb201_table.column("cifar10-valid_valid_acc")
    groups = {}
    for o, a in enumerate(SPACE.all_archs()):
        groups.setdefault(SPACE.canonical_key(a), []).append(acc[o])
    within = np.mean([np.std(v) for v in groups.values() if len(v) > 1])
    assert within < 0.1 * np.std(acc)


def test_registry():
    assert "nb201" in SPACES
    assert isinstance(get_space("nb201"), NB201Space)
    with pytest.raises(UnknownChoiceError, match="valid choices: chain, nb201"):  # chain: the test plugin
        get_space("darts")
    assert pickle.loads(pickle.dumps(SPACE)).format((0,) * 6) == SPACE.format((0,) * 6)
