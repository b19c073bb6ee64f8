"""Local search and the zero-cost warm start of the predictor-guided strategies: the phase's
proposals, restarts away from local optima, failures, seeding, the warm start's budget
charge, and bad inputs."""

from __future__ import annotations

import _toys
import numpy as np
import pytest

from evonas.config import ComponentConfig, from_dict
from evonas.errors import ConfigError
from evonas.executors import SerialExecutor
from evonas.search import Search, SearchConfig, build_parts
from evonas.spaces import get_space
from evonas.strategies import BANANAS, NPENAS, BANANASConfig, NPENASConfig
from evonas.strategies._zc_warmstart import _MEASURED, WarmStartConfig

SPACE = get_space("nb201")
FAST = {"name": "rf", "params": {"n_estimators": 10}}
GUIDED = {"bananas": (BANANAS, BANANASConfig), "npenas": (NPENAS, NPENASConfig)}
PEAK = (3, 3, 3, 1, 2, 3)


def peaked(arch) -> float:
    """A toy fitness with a unique optimum ``PEAK``: minus the number of differing positions."""
    return -float(sum(a != b for a, b in zip(arch, PEAK)))


def two_peaks(arch) -> float:
    """A local optimum at ``(0,)*6`` (value 0) and the global one at ``(4,)*6`` (value 1)."""
    if arch == (4,) * 6:
        return 1.0
    return -float(sum(a != 0 for a in arch))


def make(name: str, seed: int = 0, **params):
    base = {"num_init": 5, "batch_size": 5, "num_parents": 3, "surrogate": FAST}
    cls, config = GUIDED[name]
    return cls(SPACE, 1, np.random.default_rng(seed), from_dict(config, {**base, **params}))


def drive(strategy, n, value=peaked, fail=frozenset()):
    return _toys.drive(strategy, n, value, fail)


def hamming(a, b) -> int:
    return sum(x != y for x, y in zip(a, b))


# ----------------------------------------------------------------------- local search
@pytest.mark.parametrize("name", sorted(GUIDED))
def test_local_search_proposes_one_neighbour_of_the_incumbent_at_a_time_and_climbs(name):
    s = make(name, local_search_after=10)
    asked = drive(s, 10)
    assert len(asked) == 10 and s.num_fits == 1  # init batch, one guided batch
    for _ in range(60):
        best = s.archs[int(np.argmax(s.values))]
        arch = s.ask()
        assert s.ask() is None  # one proposal at a time
        assert hamming(arch, best) == 1 and arch not in asked
        asked.append(arch)
        s.tell(arch, (peaked(arch),))
        if max(s.values) == 0.0:
            break
    assert max(s.values) == 0.0  # reached the optimum by one-edit moves
    assert len(asked) == len(set(asked))


def test_a_local_optimum_is_left_for_a_distant_restart():
    s = make("npenas", local_search_after=5, num_init=5, restart_distance=3)
    # Start at the local optimum (0,)*6: every neighbour is worse, so after its 24
    # neighbours the centre must move at least restart_distance away from it.
    s._started = True
    s._proposed.add((0,) * 6)
    s.tell((0,) * 6, (two_peaks((0,) * 6),))
    for a in SPACE.neighbors((0,) * 6)[:4]:
        s._proposed.add(a)
        s.tell(a, (two_peaks(a),))
    neighbours = set(SPACE.neighbors((0,) * 6))
    seen, centres = [], []
    for _ in range(30):
        far = [(v, -i) for i, (a, v) in enumerate(zip(s.archs, s.values)) if hamming(a, (0,) * 6) >= 3]
        centres.append(s.archs[-max(far)[1]] if far else None)
        arch = s.ask()
        seen.append(arch)
        s.tell(arch, (two_peaks(arch),))
    assert set(seen[:20]) == neighbours - set(SPACE.neighbors((0,) * 6)[:4])  # the rest of its neighbours
    assert s.local_optima == [(0,) * 6]
    # every architecture told is near that optimum: a random restart, then its neighbours
    assert hamming(seen[20], (0,) * 6) >= 3
    assert all(hamming(a, c) == 1 for a, c in zip(seen[21:], centres[21:]))  # climbing from the restart
    assert s.summary()["local_optima"] == 1


@pytest.mark.parametrize("name", sorted(GUIDED))
def test_local_search_runs_are_reproducible_by_seed(name):
    a = drive(make(name, seed=3, local_search_after=10), 40)
    b = drive(make(name, seed=3, local_search_after=10), 40)
    c = drive(make(name, seed=4, local_search_after=10), 40)
    assert a == b and a != c and len(set(a)) == 40


def test_failed_evaluations_are_never_centres_and_never_proposed_again():
    s = make("bananas", local_search_after=10)
    # every neighbour of the peak fails: the centre cannot move through them
    fail = frozenset(SPACE.neighbors(PEAK))
    asked = drive(s, 80, fail=fail)
    assert len(asked) == len(set(asked))
    told = set(s.archs)
    assert not told & fail
    assert all(s.values[i] == peaked(a) for i, a in enumerate(s.archs))


# ------------------------------------------------------------------------ warm start
def _search(shared_data, nb201_path, warm_start, seed=0, seconds=3000.0):
    raw = {
        "seed": seed,
        "evaluator": {"name": "tabular", "params": {"tables": [{"name": "nb201", "params": {"path": str(nb201_path)}}],
                                                    "report": []}},
        "fitness": {"objectives": [{"metric": "cifar10-valid_valid_acc_12ep"}]},
        "strategy": {"name": "npenas", "params": {"num_init": 3, "batch_size": 3, "surrogate": FAST,
                                                  "warm_start": warm_start}},
        "budget": {"seconds": seconds},
        "progress": False,
    }
    config = from_dict(SearchConfig, raw)
    parts = build_parts(config)
    search = Search(parts.space, parts.strategy, parts.fitness, parts.evaluator, SerialExecutor(), config.budget, seed)
    return search, parts


def test_the_warm_start_evaluates_the_best_scored_first_and_charges_its_measured_time(shared_data, nb201_path):
    warm = {"proxy": "params", "num_scored": 6, "batch_size": 2, "pool_seed": 7,
            "data_root": str(shared_data / "images" / "cifar10-jpg-small.tar.gz"),
            "network": {"name": "nb201", "params": {"channels": 4, "cells_per_stage": 1}}}
    search, parts = _search(shared_data, nb201_path, warm)
    history = search.run_search()
    strategy = parts.strategy
    charged = strategy.zero_cost_seconds
    assert charged > 0 and strategy.summary()["zero_cost_seconds"] == charged
    # the budget spent is the evaluations' simulated cost plus the measured scoring time
    costs = sum(parts.evaluator.evaluate(r.arch, 0).cost for r in history)
    assert search.state.used_seconds == pytest.approx(costs + charged)
    # the first batch is the pool's best three by the proxy (parameter count)
    pool_rng = np.random.default_rng(7)
    pool = list(dict.fromkeys(SPACE.sample(pool_rng) for _ in range(6)))
    memo = next(v for (k, p), v in _MEASURED.items() if p == "params" and set(pool) <= set(v))
    ranked = sorted(pool, key=lambda a: -memo[a][0])[:3]
    assert [r.arch for r in history[:3]] == ranked
    assert charged >= sum(memo[a][1] for a in pool)
    # a second run of the same pool reuses the scores but is charged the same time again
    again, parts2 = _search(shared_data, nb201_path, warm)
    assert [r.arch for r in again.run_search()] == [r.arch for r in history]
    assert parts2.strategy.zero_cost_seconds == charged


def test_without_warm_start_nothing_is_charged(shared_data, nb201_path):
    search, parts = _search(shared_data, nb201_path, None, seconds=1000.0)
    history = search.run_search()
    costs = sum(parts.evaluator.evaluate(r.arch, 0).cost for r in history)
    assert search.state.used_seconds == pytest.approx(costs)
    assert "zero_cost_seconds" not in parts.strategy.summary() and parts.strategy.take_cost() == 0.0


# ------------------------------------------------------------------------ bad inputs
@pytest.mark.parametrize(
    "params, message",
    [
        ({"acquisition": "pi"}, "invalid value 'pi' for 'strategy.params.acquisition'; valid values: 'its', 'ucb', 'ei', 'mean'"),
        ({"acquisition": "its", "surrogate": {"name": "gbdt"}}, "surrogate 'gbdt' has no uncertainty estimate, which acquisition 'its' needs"),
        ({"local_search_after": 0}, "invalid value 0 for 'strategy.params.local_search_after'"),
        ({"restart_distance": 0}, "invalid value 0 for 'strategy.params.restart_distance'"),
        ({"warm_start": {"proxy": "oracle"}}, "invalid value 'oracle' for 'warm_start.proxy'; valid values: 'naswot'"),
        ({"warm_start": {"num_scored": 0}}, "invalid value 0 for 'strategy.params.warm_start.num_scored'"),
        ({"warm_start": {"pool_size": 3}}, "pool_size"),
    ],
)
def test_bad_inputs_are_one_line_config_errors(params, message):
    raw = {"evaluator": {"name": "tabular"}, "fitness": {"objectives": [{"metric": "cifar10-valid_valid_acc_12ep"}]},
           "strategy": {"name": "npenas", "params": params}, "budget": {"evaluations": 10}}
    with pytest.raises(ConfigError) as err:
        from_dict(SearchConfig, raw)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_configs_built_in_python_are_checked_too():
    with pytest.raises(ConfigError, match="^invalid value 'pi' for 'acquisition'"):
        BANANASConfig(acquisition="pi", local_search_after=5)
    with pytest.raises(ConfigError, match="surrogate 'linear' has no uncertainty estimate"):
        NPENASConfig(acquisition="ucb", surrogate=ComponentConfig("linear"), local_search_after=5)
    with pytest.raises(ConfigError, match="'warm_start.proxy'"):
        WarmStartConfig(proxy="accuracy")


def test_the_shipped_local_search_config_loads_with_the_standard_protocol():
    from pathlib import Path

    from evonas.config import load_config

    root = Path(__file__).resolve().parents[1]
    config = load_config(SearchConfig, root / "configs" / "nb201-npenas-ls.yaml")
    rea = load_config(SearchConfig, root / "configs" / "nb201-rea.yaml")
    typed = config.strategy.typed("strategy")
    assert isinstance(typed, NPENASConfig) and typed.local_search_after == 50 and typed.warm_start is None
    assert (config.evaluator, config.fitness, config.budget, config.report) == (rea.evaluator, rea.fitness, rea.budget, rea.report)
