"""Pareto masks, hypervolumes and a table's true front, against fronts computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from evonas.errors import ConfigError
from evonas.fitness import Objective, hypervolume, pareto_mask, signed_values, table_front
from evonas.spaces import get_space

SPACE = get_space("nb201")

# Both maximised. B dominates D; E repeats A; F is the reference point itself.
POINTS = np.array([[1.0, 5.0], [2.0, 4.0], [4.0, 1.0], [2.0, 2.0], [1.0, 5.0], [0.0, 0.0]])
#                    A           B           C           D           E           F


def test_pareto_mask_by_hand():
    assert pareto_mask(POINTS).tolist() == [True, True, True, False, True, False]
    assert pareto_mask(np.empty((0, 2))).tolist() == []
    # three objectives: (1, 1, 1) is dominated by (1, 2, 1) only; (3, 0, 0) trades off
    three = [[1, 1, 1], [1, 2, 1], [3, 0, 0], [0, 0, 3], [0, 0, 2]]
    assert pareto_mask(three).tolist() == [False, True, True, True, False]


def test_hypervolume_by_hand():
    # the union of [0,1]x[0,5], [0,2]x[0,4] and [0,4]x[0,1]: x in [0,1] height 5, [1,2] height 4,
    # [2,4] height 1, so 5 + 4 + 2 = 11; dominated and repeated points add nothing
    assert hypervolume(POINTS, (0.0, 0.0)) == pytest.approx(11.0)
    assert hypervolume(POINTS[[0, 1, 2]], (0.0, 0.0)) == pytest.approx(11.0)
    assert hypervolume(POINTS[[3, 2]], (0.0, 0.0)) == pytest.approx(2 * 2 + 2 * 1)
    # another reference point: [1,2]x[1,4] and [1,4]x[1,1] (flat) -> 1*3 = 3; A is not beyond x=1
    assert hypervolume(POINTS, (1.0, 1.0)) == pytest.approx(3.0)
    assert hypervolume(np.empty((0, 2)), (0.0, 0.0)) == 0.0
    with pytest.raises(ValueError, match="reference has 3 values; the points have 2 objectives"):
        hypervolume(POINTS, (0.0, 0.0, 0.0))
    with pytest.raises(ValueError, match="finite"):
        hypervolume([[np.nan, 1.0]], (0.0, 0.0))


class _TinyTable:
    """Five nb201 cells with an accuracy (maximised) and a parameter count (minimised)."""

    source = "tiny"
    metrics = ("acc", "params")
    seeded_metrics = ()

    def __init__(self, rows):
        self.rows = rows

    def has(self, arch):
        return arch in self.rows

    def query(self, arch, metric):
        return self.rows[arch][metric]

    def query_seed(self, arch, metric, rng):
        return self.query(arch, metric)

    def cost(self, arch):
        return 1.0


CELLS = [SPACE.from_ordinal(i) for i in (0, 7, 100, 2000, 15624)]
TINY = _TinyTable({
    CELLS[0]: {"acc": 90.0, "params": 1.0},
    CELLS[1]: {"acc": 85.0, "params": 0.5},
    CELLS[2]: {"acc": 80.0, "params": 0.2},
    CELLS[3]: {"acc": 84.0, "params": 0.6},  # dominated by CELLS[1]
    CELLS[4]: {"acc": 70.0, "params": 1.5},  # the worst of both: the default reference point
})
ACC_PARAMS = (Objective("acc"), Objective("params", "min"))


def test_table_front_by_hand():
    front = table_front(TINY, SPACE, ACC_PARAMS)
    assert front.num_archs == 5
    assert set(front.archs) == set(CELLS[:3])
    assert front.reference == (70.0, -1.5)
    # boxes above acc 70 and below params 1.5, sliced by params: [1.0, 1.5] reaches acc 90,
    # [0.5, 1.0] acc 85, [0.2, 0.5] acc 80 -> 20*0.5 + 15*0.5 + 10*0.3 = 20.5
    assert front.hypervolume == pytest.approx(20.5)
    natural = {tuple(row) for row in front.natural().round(9)}
    assert natural == {(90.0, 1.0), (85.0, 0.5), (80.0, 0.2)}
    # a search that found CELLS[1] and CELLS[3]: CELLS[1] alone, 15 * 1.0
    found = signed_values(ACC_PARAMS, [TINY.rows[CELLS[1]], TINY.rows[CELLS[3]]])
    assert found.tolist() == [[85.0, -0.5], [84.0, -0.6]]
    assert front.ratio(found) == pytest.approx(15.0 / 20.5)
    assert front.ratio(front.values) == pytest.approx(1.0)
    # a given reference point, in the objectives' own units: acc 0, params 2
    wide = table_front(TINY, SPACE, ACC_PARAMS, reference=(0.0, 2.0))
    # params [1.0, 2.0] acc 90, [0.5, 1.0] acc 85, [0.2, 0.5] acc 80 -> 90 + 42.5 + 24
    assert wide.reference == (0.0, -2.0) and wide.hypervolume == pytest.approx(156.5)


def test_table_front_rejects_bad_objectives():
    with pytest.raises(ConfigError, match="at least two objectives; got 1"):
        table_front(TINY, SPACE, ACC_PARAMS[:1])
    with pytest.raises(ConfigError, match="objective metric 'flops' is not in table 'tiny'; valid: acc, params"):
        table_front(TINY, SPACE, (Objective("acc"), Objective("flops", "min")))
    with pytest.raises(ConfigError, match="reference has 1 values for 2 objectives"):
        table_front(TINY, SPACE, ACC_PARAMS, reference=(0.0,))


def test_the_nb201_front_is_exact(nb201_table):
    """Every cell off the front is dominated by a front cell; no cell dominates a front cell."""
    objectives = (Objective("cifar10-valid_valid_acc_12ep"), Objective("params_M", "min"))
    front = table_front(nb201_table, nb201_table.space, objectives)
    assert front.num_archs == 15625
    everything = np.column_stack([nb201_table.column("cifar10-valid_valid_acc_12ep"), -nb201_table.column("params_M")])
    assert front.reference == tuple(everything.min(axis=0))
    f = front.values
    for p in f:  # nothing dominates a front point
        assert not np.any(np.all(everything >= p, axis=1) & np.any(everything > p, axis=1))
    on_front = {nb201_table.space.ordinal(a) for a in front.archs}
    off = np.array([i for i in range(len(everything)) if i not in on_front])
    dominated = np.zeros(len(off), dtype=bool)
    for p in f:
        dominated |= np.all(p >= everything[off], axis=1) & np.any(p > everything[off], axis=1)
    assert dominated.all()
    # the most accurate cell is on it; the whole table reaches exactly the front's hypervolume
    best = int(np.argmax(everything[:, 0]))
    assert best in on_front
    assert front.ratio(everything) == pytest.approx(1.0)
    assert 0 < front.ratio(everything[off]) < 1
