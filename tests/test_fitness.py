from __future__ import annotations

import numpy as np
import pytest

from evonas.errors import ConfigError
from evonas.executors import SerialExecutor
from evonas.fitness import NeighbourhoodAwareFitness, Objective, PlainFitness, aggregate, parse_aggregate
from evonas.search import Budget, Search
from evonas.spaces import get_space
from evonas.strategies import RandomSearch

from _toys import SumEvaluator

SPACE = get_space("nb201")


def evaluate_all(fitness, arch, evaluator=None):
    evaluator = evaluator or SumEvaluator()
    return fitness.combine(arch, {a: evaluator.evaluate(a, 0) for a in fitness.plan(arch)})


def test_neighbourhood_mean_is_exact():
    # score = sum of ops S; the 24 neighbours sum to 19 S + 60, so the mean over 25 is 0.8 S + 2.4
    na = NeighbourhoodAwareFitness(SPACE, (Objective("score"),))
    for arch in [(0,) * 6, (4,) * 6, (1, 2, 3, 4, 0, 1)]:
        s = sum(arch)
        assert evaluate_all(na, arch).values[0] == pytest.approx(0.8 * s + 2.4)
    assert len(na.plan((0,) * 6)) == 25


def test_neighbourhood_other_aggregates():
    arch = (0,) * 6  # self 0; neighbours have sums 1, 2, 3, 4 (six each)
    mins = NeighbourhoodAwareFitness(SPACE, (Objective("score"),), aggregate="min")
    assert evaluate_all(mins, arch).values == (0.0,)
    no_self = NeighbourhoodAwareFitness(SPACE, (Objective("score"),), aggregate="min", include_self=False)
    assert evaluate_all(no_self, arch).values == (1.0,)
    q = NeighbourhoodAwareFitness(SPACE, (Objective("score"),), aggregate="q0.5", include_self=False)
    assert evaluate_all(q, arch).values == (2.5,)
    # a minimised objective is aggregated pessimistically too: min of the negated values
    m = NeighbourhoodAwareFitness(SPACE, (Objective("score", "min"),), aggregate="min")
    score = evaluate_all(m, (4,) * 6)
    assert score.values == (-24.0,)
    assert score.metrics["fitness/score"] == 24.0


def test_failed_neighbours_are_left_out_and_failed_self_fails():
    arch = (0,) * 6
    na = NeighbourhoodAwareFitness(SPACE, (Objective("score"),))
    bad = SPACE.neighbors(arch)[0]
    from evonas.evaluation import Evaluation

    evals = {a: SumEvaluator().evaluate(a, 0) for a in na.plan(arch)}
    evals[bad] = Evaluation.failure("boom")
    score = na.combine(arch, evals)
    assert score.metrics["fitness/num_neighbours_used"] == 23
    assert score.values[0] == pytest.approx((sum(sum(a) for a in na.plan(arch)) - 1) / 24)
    evals[arch] = Evaluation.failure("boom")
    assert na.combine(arch, evals).failed


def test_aggregate_names():
    assert parse_aggregate("q0.25") == 0.25
    assert aggregate(np.array([1.0, 2.0, 3.0, 4.0]), 0.5) == 2.5
    for bad in ["avg", "q2", "q", "q-0.1"]:
        with pytest.raises(ConfigError, match=f"invalid fitness aggregate '{bad}'"):
            parse_aggregate(bad)


def test_plain_fitness_needs_known_metric():
    with pytest.raises(ConfigError, match="objective metric 'acc' is not reported"):
        evaluate_all(PlainFitness((Objective("acc"),)), (0,) * 6)


class CountingEvaluator(SumEvaluator):
    def __init__(self):
        super().__init__()
        self.calls = []

    def evaluate(self, arch, seed):
        self.calls.append(arch)
        return super().evaluate(arch, seed)


def test_na_random_search_counts_every_evaluation_and_caches():
    evaluator = CountingEvaluator()
    na = NeighbourhoodAwareFitness(SPACE, (Objective("score"),))
    search = Search(SPACE, RandomSearch(SPACE, 1, np.random.default_rng(0)), na, evaluator, SerialExecutor(),
                    Budget(evaluations=200), seed=0)
    history = search.run_search()
    assert len(evaluator.calls) == len(set(evaluator.calls))  # nothing evaluated twice
    assert search.state.used_evaluations == len(evaluator.calls)
    assert history[0].num_evaluations == 25 and history[0].used_evaluations == 25
    assert 200 <= search.state.used_evaluations < 225  # the last candidate may overshoot
    assert search.state.used_seconds == float(len(evaluator.calls))
