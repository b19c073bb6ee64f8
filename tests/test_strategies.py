from __future__ import annotations

import pickle

import numpy as np
import pytest

from evonas.errors import ConfigError
from evonas.fitness import Objective, PlainFitness
from evonas.executors import SerialExecutor
from evonas.search import Budget, Search
from evonas.spaces import get_space
from evonas.strategies import NSGA2, STRATEGIES, NSGA2Config, RandomSearch, REAConfig, RegularizedEvolution

from _toys import SumEvaluator

SPACE = get_space("nb201")


def run(name, seed, objectives=("score",), n=120, noise=0.0):
    cls = STRATEGIES.get(name)
    strategy = cls(SPACE, len(objectives), np.random.default_rng(seed))
    search = Search(
        SPACE, strategy, PlainFitness(tuple(Objective(m) for m in objectives)), SumEvaluator(noise=noise),
        SerialExecutor(), Budget(evaluations=n), seed=seed,
    )
    return [(r.arch, r.values) for r in search.run_search()]


@pytest.mark.parametrize("name", STRATEGIES.names())
def test_every_strategy_is_reproducible_and_seed_dependent(name):
    objectives = ("score",) if STRATEGIES.get(name).max_objectives == 1 else ("score", "conv")
    a = run(name, 1, objectives, noise=0.5)
    assert a == run(name, 1, objectives, noise=0.5)
    assert a != run(name, 2, objectives, noise=0.5)
    assert len(a) == 120


@pytest.mark.parametrize("name", STRATEGIES.names())
def test_every_strategy_pickles_mid_run(name):
    cls = STRATEGIES.get(name)
    s = cls(SPACE, 1, np.random.default_rng(0))
    for _ in range(7):
        arch = s.ask()
        if arch is not None:
            s.tell(arch, (float(sum(arch)),))
    clone = pickle.loads(pickle.dumps(s))
    assert [clone.ask() for _ in range(3)] == [s.ask() for _ in range(3)]


def test_evolution_beats_random_on_an_easy_problem():
    rea = max(v[0] for _, v in run("rea", 0, n=150))
    rs = max(v[0] for _, v in run("random", 0, n=150))
    assert rea == 24.0  # the optimum (4,4,4,4,4,4)
    assert rs < 24.0


def test_rea_mechanics():
    s = RegularizedEvolution(SPACE, 1, np.random.default_rng(0), REAConfig(population_size=3, tournament_size=3))
    first = [s.ask() for _ in range(3)]
    assert s.ask() is None  # population not founded yet, results outstanding
    for a in first:
        s.tell(a, (float(sum(a)),))
    child = s.ask()
    assert child is not None and min(SPACE.distance(child, p) for p in first) == 1
    # aging: a fourth result pushes out the oldest member
    s.tell(child, (0.0,))
    assert [m[0] for m in s.population] == [first[1], first[2], child]
    # failures never join the population
    s.tell(SPACE.sample(np.random.default_rng(1)), None)
    assert len(s.population) == 3
    with pytest.raises(ConfigError, match="invalid value 0 for 'tournament_size'; expected an integer in \\[1, \\d+\\]"):
        REAConfig(tournament_size=0)


def test_rea_restarts_when_everything_failed():
    s = RegularizedEvolution(SPACE, 1, np.random.default_rng(0), REAConfig(population_size=2))
    for _ in range(2):
        s.tell(s.ask(), None)
    assert s.ask() is not None


def test_single_objective_strategies_reject_several_objectives():
    with pytest.raises(ConfigError, match="at most 1 objective"):
        RegularizedEvolution(SPACE, 2, np.random.default_rng(0))


def test_nsga2_finds_the_pareto_front_of_a_toy_problem():
    # maximise the number of 3x3 convs and the number of skip connections: they compete
    # for the same 6 edges, so the front is {k convs, 6-k skips : k = 0..6}.
    s = NSGA2(SPACE, 2, np.random.default_rng(0), NSGA2Config(population_size=30))
    for _ in range(30 * 25):
        a = s.ask()
        assert a is not None
        s.tell(a, (float(a.count(3)), float(a.count(1))))
    front = {f for _, f in s.pareto_front()}
    assert front == {(float(k), float(6 - k)) for k in range(7)}


def test_nsga2_is_generational():
    s = NSGA2(SPACE, 2, np.random.default_rng(0), NSGA2Config(population_size=4))
    asked = [s.ask() for _ in range(4)]
    assert s.ask() is None
    for a in asked:
        s.tell(a, (1.0, 1.0))
    assert s.generation == 1 and s.ask() is not None


def test_random_search_ignores_results():
    a = RandomSearch(SPACE, 1, np.random.default_rng(5))
    b = RandomSearch(SPACE, 1, np.random.default_rng(5))
    xs = []
    for _ in range(10):
        x = a.ask()
        a.tell(x, (123.0,))
        xs.append(x)
    assert xs == [b.ask() for _ in range(10)]
