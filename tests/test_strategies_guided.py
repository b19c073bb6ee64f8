"""Predictor-guided strategies (BANANAS, NPENAS): acquisitions, failures, seeding, resume,
bad inputs, shipped configs, and a quality check on the NAS-Bench-201 table."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import _toys
import numpy as np
import pytest
import yaml
from scipy.stats import norm

from evonas.cli import main
from evonas.config import ComponentConfig, from_dict, load_config
from evonas.errors import CapabilityError, ConfigError
from evonas.executors import SerialExecutor
from evonas.search import Search, SearchConfig, build_parts, resume_search, start_search
from evonas.spaces import get_space
from evonas.strategies import BANANAS, NPENAS, BANANASConfig, NPENASConfig
from evonas.strategies._bananas import acquire, expected_improvement, thompson_sample, upper_confidence_bound
from predictors import PREDICTORS, ArchPredictor

from _toys import CoreOnlySpace

ROOT = Path(__file__).resolve().parents[1]
SPACE = get_space("nb201")
GUIDED = {"bananas": (BANANAS, BANANASConfig), "npenas": (NPENAS, NPENASConfig)}
FAST = {"name": "rf", "params": {"n_estimators": 10}}
FAST_RF = ComponentConfig(FAST["name"], FAST["params"])


def small(name: str, **params):
    """A fast config of strategy ``name``: few trees, small batches."""
    base = {"num_init": 5, "batch_size": 4, "num_parents": 3, "surrogate": FAST}
    return from_dict(GUIDED[name][1], {**base, **params})


def score(arch) -> float:
    """A toy fitness with a unique optimum (4, 4, 4, 4, 4, 4)."""
    return float(sum(arch))


def drive(strategy, n, value=score, fail=frozenset()):
    return _toys.drive(strategy, n, value, fail)


def told(value):
    return None if value is None else (value,)


# ------------------------------------------------------------------------ acquisitions
MEAN = np.array([0.0, 1.0, 2.0, 0.5, 3.0])
STD = np.array([1.0, 0.5, 0.0, 2.0, 0.1])


def test_expected_improvement_is_the_closed_form():
    best = 1.5
    z = (MEAN - best) / np.where(STD > 0, STD, 1.0)
    want = np.where(STD > 0, (MEAN - best) * norm.cdf(z) + STD * norm.pdf(z), np.maximum(MEAN - best, 0.0))
    np.testing.assert_allclose(expected_improvement(MEAN, STD, best), want, rtol=1e-12, atol=1e-15)
    # at the incumbent with unit std the improvement is phi(0); certain values give their gain
    assert expected_improvement(np.array([1.5]), np.array([1.0]), 1.5)[0] == pytest.approx(1 / math.sqrt(2 * math.pi))
    np.testing.assert_array_equal(expected_improvement(np.array([1.0, 2.0]), np.zeros(2), 1.5), [0.0, 0.5])
    # a Monte-Carlo estimate of E[max(Y - best, 0)] agrees
    draws = np.random.default_rng(0).normal(MEAN[3], STD[3], size=400_000)
    assert expected_improvement(MEAN[3:4], STD[3:4], best)[0] == pytest.approx(np.maximum(draws - best, 0).mean(), rel=1e-2)


def test_ucb_mean_and_thompson_sampling():
    np.testing.assert_array_equal(upper_confidence_bound(MEAN, STD, 2.0), MEAN + 2.0 * STD)
    np.testing.assert_array_equal(acquire("ucb", MEAN, STD, 0.0, np.random.default_rng(0), beta=0.25), MEAN + 0.25 * STD)
    np.testing.assert_array_equal(acquire("mean", MEAN, STD, 0.0, np.random.default_rng(0)), MEAN)
    # its: one independent draw from N(mean_i, std_i) per candidate, from the given generator only
    got = acquire("its", MEAN, STD, 0.0, np.random.default_rng(7))
    np.testing.assert_array_equal(got, np.random.default_rng(7).normal(MEAN, STD))
    assert got[2] == MEAN[2]  # no uncertainty: the mean itself
    draws = np.stack([thompson_sample(MEAN, STD, np.random.default_rng(s)) for s in range(4000)])
    np.testing.assert_allclose(draws.mean(axis=0), MEAN, atol=0.1)
    np.testing.assert_allclose(draws.std(axis=0), STD, atol=0.06)
    with pytest.raises(ConfigError, match="invalid value 'pi' for 'acquisition'; valid values: 'its', 'ucb', 'ei', 'mean'"):
        acquire("pi", MEAN, STD, 0.0, np.random.default_rng(0))


# ------------------------------------------------------- a surrogate the tests can read
CALLS: list[tuple[str, list, list]] = []


class _ToySurrogate(ArchPredictor):
    """Predicts from the architecture alone: mean = ordinal / size (distinct for every
    architecture), std = first op / 10; records what it is trained on."""

    has_uncertainty = True

    def __init__(self, random_state: int = 0, space="nb201") -> None:
        self.random_state = random_state
        self.space = space

    def _check_params(self, space) -> None:
        return None

    def fit(self, archs, y):
        checked, targets = self._validate_fit(archs, y)
        CALLS.append(("fit", checked, list(targets)))
        return self

    def _predict(self, archs, return_std):
        mean = np.array([self.space_.ordinal(a) / self.space_.size for a in archs])
        std = np.array([a[0] / 10 for a in archs])
        return mean, (std if return_std else None)


class _IncrementalToySurrogate(_ToySurrogate):
    def partial_fit(self, archs, y):
        CALLS.append(("partial_fit", list(archs), list(y)))
        return self


@pytest.fixture
def toy_surrogates():
    CALLS.clear()
    PREDICTORS.register("toy_guided_for_test")(_ToySurrogate)
    PREDICTORS.register("toy_incremental_for_test")(_IncrementalToySurrogate)
    yield
    PREDICTORS.unregister("toy_guided_for_test")
    PREDICTORS.unregister("toy_incremental_for_test")


def toy_value(arch) -> float:
    """A fitness on the toy surrogate's scale (its mean is exact)."""
    return SPACE.ordinal(arch) / SPACE.size


@pytest.mark.parametrize("acquisition", ["ucb", "ei", "mean"])
def test_the_batch_is_the_best_candidates_under_the_acquisition(toy_surrogates, acquisition):
    # One parent and many mutation draws: the candidates are all of its unproposed neighbours.
    config = BANANASConfig(num_init=6, batch_size=5, num_parents=1, num_candidates=3000, acquisition=acquisition,
                           beta=0.5, surrogate=ComponentConfig("toy_guided_for_test"))
    s = BANANAS(SPACE, 1, np.random.default_rng(0), config)
    first = [s.ask() for _ in range(6)]
    assert s.ask() is None and len(set(first)) == 6
    for a in first:
        s.tell(a, (toy_value(a),))
    batch = [s.ask() for _ in range(5)]
    assert s.ask() is None and len(set(batch)) == 5
    parent = max(first, key=toy_value)
    pool = [a for a in SPACE.neighbors(parent) if a not in first]
    assert set(batch) <= set(pool)

    def acquisition_value(archs):
        mean = np.array([toy_value(a) for a in archs])
        std = np.array([a[0] / 10 for a in archs])
        if acquisition == "ucb":
            return mean + 0.5 * std
        if acquisition == "ei":
            return expected_improvement(mean, std, max(toy_value(a) for a in first))
        return mean

    top = np.sort(acquisition_value(pool))[::-1][:5]
    assert top[0] > top[-1]  # the check below can tell a good batch from a bad one
    np.testing.assert_array_equal(np.sort(acquisition_value(batch))[::-1], top)
    # the surrogate was fitted once, on exactly the pairs told
    assert [c[0] for c in CALLS] == ["fit"] and CALLS[0][1] == first
    assert CALLS[0][2] == [toy_value(a) for a in first]
    assert s.num_fits == 1 and s.fit_seconds > 0 and s.summary()["surrogate"] == "toy_guided_for_test"


def test_failed_evaluations_are_never_targets_parents_or_proposed_again(toy_surrogates):
    config = BANANASConfig(num_init=6, batch_size=4, num_parents=6, num_candidates=200,
                           surrogate=ComponentConfig("toy_guided_for_test"))
    s = BANANAS(SPACE, 1, np.random.default_rng(3), config)
    first = [s.ask() for _ in range(6)]
    outcome = {a: (None if i in (0, 3) else math.nan if i == 4 else toy_value(a)) for i, a in enumerate(first)}
    for a in first:
        s.tell(a, told(outcome[a]))
    ok = [a for a in first if outcome[a] is not None and not math.isnan(outcome[a])]
    assert s.archs == ok and len(ok) == 3
    batch = [s.ask() for _ in range(4)]
    # trained on the successes only; every candidate is a neighbour of a success
    assert CALLS == [("fit", ok, [toy_value(a) for a in ok])]
    assert all(min(SPACE.distance(b, p) for p in ok) == 1 for b in batch)
    assert not set(batch) & set(first)


def test_when_everything_failed_the_next_batch_is_random_and_nothing_is_fitted(toy_surrogates):
    config = BANANASConfig(num_init=3, batch_size=4, surrogate=ComponentConfig("toy_guided_for_test"))
    s = BANANAS(SPACE, 1, np.random.default_rng(0), config)
    first = [s.ask() for _ in range(3)]
    for a in first:
        s.tell(a, None)
    again = [s.ask() for _ in range(4)]
    assert s.ask() is None and None not in again and len(set(again + first)) == 7
    assert CALLS == [] and s.num_fits == 0 and s.archs == []


def test_a_surrogate_with_partial_fit_is_updated_with_the_new_successes_only(toy_surrogates):
    config = NPENASConfig(num_init=5, batch_size=3, num_parents=2, children_per_parent=20,
                          surrogate=ComponentConfig("toy_incremental_for_test"))
    s = NPENAS(SPACE, 1, np.random.default_rng(1), config)
    first = [s.ask() for _ in range(5)]
    for a in first:
        s.tell(a, (toy_value(a),))
    second = [s.ask() for _ in range(3)]
    s.tell(second[0], None)
    for a in second[1:]:
        s.tell(a, (toy_value(a),))
    third = [s.ask() for _ in range(3)]
    assert None not in third and s.ask() is None
    assert [(c[0], c[1]) for c in CALLS] == [("fit", first), ("partial_fit", second[1:])]
    assert CALLS[1][2] == [toy_value(a) for a in second[1:]] and s.num_fits == 2


def test_a_surrogate_without_partial_fit_is_refitted_on_everything_and_not_kept(toy_surrogates):
    config = BANANASConfig(num_init=4, batch_size=2, surrogate=ComponentConfig("toy_guided_for_test"))
    s = BANANAS(SPACE, 1, np.random.default_rng(1), config)
    asked = drive(s, 10, toy_value)
    assert [c[0] for c in CALLS] == ["fit"] * 3
    assert [c[1] for c in CALLS] == [asked[:4], asked[:6], asked[:8]]
    assert s._model is None  # the checkpointed state holds no fitted model


# --------------------------------------------------------------------------- seeding
@pytest.mark.parametrize("name", sorted(GUIDED))
def test_same_seed_same_proposals_and_never_a_repeat(name):
    cls, _ = GUIDED[name]

    def proposals(seed):
        return drive(cls(SPACE, 1, np.random.default_rng(seed), small(name)), 33)

    a = proposals(4)
    assert a == proposals(4) and a != proposals(5)
    assert len(set(a)) == len(a)


@pytest.mark.parametrize("name", sorted(GUIDED))
@pytest.mark.parametrize("acquisition, ensemble", [("its", 1), ("ucb", 1), ("ei", 1), ("its", 3)])
def test_every_acquisition_and_ensembles_run_reproducibly(name, acquisition, ensemble):
    cls, _ = GUIDED[name]
    surrogate = {"name": "gbdt", "params": {"n_estimators": 10}} if ensemble > 1 else FAST
    config = small(name, acquisition=acquisition, ensemble_size=ensemble, surrogate=surrogate)

    def proposals():
        s = cls(SPACE, 1, np.random.default_rng(8), config)
        return drive(s, 21), s

    (a, s), (b, _) = proposals(), proposals()
    assert a == b and s.num_fits == 4
    if ensemble > 1:  # boosted trees have no std of their own: the ensemble's spread is it
        model = s._new_model().fit(s.archs, s.values)
        assert type(model).__name__ == "EnsemblePredictor"
        assert model.predict(a[:5], return_std=True)[1].max() > 0


# ---------------------------------------------------------------------------- resume
def _search_dict(name: str, evaluations: int = 45) -> dict:
    return {
        "seed": 2,
        "evaluator": {"name": "tabular", "params": {"metric": "cifar10-valid_valid_acc", "noisy": True}},
        "fitness": {"objectives": [{"metric": "cifar10-valid_valid_acc"}]},
        "strategy": {"name": name, "params": {"num_init": 5, "batch_size": 4, "num_parents": 3, "surrogate": FAST}},
        "budget": {"evaluations": evaluations},
        "checkpoint_every": 3,
        "progress": False,
    }


def _log(run_dir: Path) -> list[dict]:
    out = []
    for line in (run_dir / "log.jsonl").read_text().splitlines():
        record = json.loads(line)
        record.pop("time", None)
        record.pop("chk", None)
        out.append(record)
    return out


@pytest.mark.parametrize("name", sorted(GUIDED))
@pytest.mark.parametrize("cut, keep_checkpoint", [(41, False), (63, True)])
def test_a_run_cut_short_and_resumed_gives_the_uninterrupted_history(tmp_path, nb201_env, name, cut, keep_checkpoint):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(_search_dict(name)))
    start_search(cfg, run_dir=tmp_path / "full")
    full = _log(tmp_path / "full")
    start_search(cfg, run_dir=tmp_path / "cut")
    run = tmp_path / "cut"
    lines = (run / "log.jsonl").read_text().splitlines(keepends=True)
    (run / "log.jsonl").write_text("".join(lines[:cut]) + lines[cut][: len(lines[cut]) // 2])
    (run / "result.json").unlink()
    if keep_checkpoint:
        # an older checkpoint, written in the middle of a batch: the strategy holds proposals not yet asked
        start_search(cfg, ["budget.evaluations=18"], run_dir=tmp_path / "early")
        (run / "checkpoint.pkl").write_bytes((tmp_path / "early" / "checkpoint.pkl").read_bytes())
    else:
        (run / "checkpoint.pkl").unlink()
    result = resume_search(run)
    assert _log(run) == full
    assert result.summary["candidates"] == 45
    # the surrogate's fits are those of the whole run, with their wall time beside the budget
    straight = json.loads((tmp_path / "full" / "result.json").read_text())["strategy"]
    assert result.summary["strategy"]["surrogate_fits"] == straight["surrogate_fits"] > 0
    assert result.summary["strategy"]["fit_seconds"] > 0


class _Killed(Exception):
    """Raised from a candidate callback: the process dies there, between checkpoints."""


@pytest.mark.parametrize("name", sorted(GUIDED))
def test_killed_between_checkpoints_and_resumed(tmp_path, nb201_env, name):
    from evonas.runs import RunDir

    config = from_dict(SearchConfig, _search_dict(name, evaluations=40))

    def search(run, kill_at=None):
        parts = build_parts(config)

        def on_candidate(record):
            if record.cand_id == kill_at:
                raise _Killed

        return Search(parts.space, parts.strategy, parts.fitness, parts.evaluator, parts.executor, config.budget,
                      seed=config.seed, run=run, checkpoint_every=config.checkpoint_every, on_candidate=on_candidate)

    with RunDir.create(tmp_path / "full", {}, config.seed, "search") as run:
        full = search(run).run_search()
    with RunDir.create(tmp_path / "cut", {}, config.seed, "search") as run, pytest.raises(_Killed):
        search(run, kill_at=26).run_search()
    with RunDir.open(tmp_path / "cut") as run:
        run.lock()
        checkpoint = run.load_checkpoint()
        assert 0 < checkpoint.told <= 26 and checkpoint.strategy.num_fits > 0
        history = search(run).run_search(resume=True)
    assert history == full and len(full) == 40


# ------------------------------------------------------------------------ bad inputs
@pytest.mark.parametrize("acquisition", ["its", "ucb", "ei"])
def test_an_acquisition_needing_uncertainty_refuses_a_surrogate_without_it(acquisition):
    want = (
        f"surrogate 'gbdt' has no uncertainty estimate, which acquisition '{acquisition}' needs; valid: a surrogate "
        "with one (bananas, ensemble, gp, mlp, mlp_haap, rf, rf_haap, rf_zc), ensemble_size >= 2, or acquisition 'mean'"
    )
    with pytest.raises(ConfigError) as err:
        BANANASConfig(acquisition=acquisition, surrogate=ComponentConfig("gbdt"))
    assert str(err.value) == want
    data = _search_dict("npenas")
    data["strategy"]["params"].update(acquisition=acquisition, surrogate={"name": "gbdt"})
    with pytest.raises(ConfigError) as err:
        from_dict(SearchConfig, data)
    assert str(err.value) == want
    # the predicted mean needs no uncertainty, and an ensemble gives one
    assert NPENASConfig(surrogate=ComponentConfig("gbdt")).acquisition == "mean"
    assert BANANASConfig(acquisition=acquisition, surrogate=ComponentConfig("gbdt"), ensemble_size=2).ensemble_size == 2


def test_the_command_line_says_it_in_one_line(tmp_path, capsys):
    code = main(["search", "--config", str(ROOT / "configs" / "nb201-bananas.yaml"), "--run-dir", str(tmp_path / "x"),
                 "strategy.params.surrogate={name: linear}"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("evonas: error: ") and "surrogate 'linear' has no uncertainty estimate" in err
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(
    "params, message",
    [
        ({"acquisition": "pi"}, "invalid value 'pi' for 'strategy.params.acquisition'; valid values: 'its', 'ucb', 'ei', 'mean'"),
        ({"surrogate": {"name": "oracle"}}, "invalid 'surrogate': unknown predictor 'oracle'; valid choices: bananas, ensemble"),
        ({"surrogate": {"name": "rf", "params": {"depth": 3}}}, "unknown hyper-parameter(s) 'depth' for predictor 'rf'"),
        ({"surrogate": {"name": "rf", "params": {"random_state": 3}}}, "must not set 'random_state': it is drawn from"),
        ({"surrogate": {"name": "rf", "params": {"space": "nb201"}}}, "must not set 'space': it is the search's space"),
        ({"ensemble_size": 3, "surrogate": {"name": "zc_params"}}, "ensemble_size 3 needs a seeded surrogate"),
        ({"batch_size": 0}, "invalid value 0 for 'strategy.params.batch_size'; expected an integer in"),
        ({"beta": -1}, "invalid value -1.0 for 'strategy.params.beta'; expected a finite number >= 0"),
    ],
)
def test_bad_strategy_params_are_one_line_errors(params, message):
    data = _search_dict("bananas")
    data["strategy"]["params"].update(params)
    with pytest.raises(ConfigError) as err:
        from_dict(SearchConfig, data)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_unknown_acquisition_built_in_python():
    with pytest.raises(ConfigError, match="^invalid value 'pi' for 'acquisition'; valid values: 'its', 'ucb', 'ei', 'mean'$"):
        NPENASConfig(acquisition="pi")


@pytest.mark.parametrize("name", sorted(GUIDED))
def test_several_objectives_are_refused(name, nb201_env):
    with pytest.raises(ConfigError, match="handles at most 1 objective"):
        GUIDED[name][0](SPACE, 2, np.random.default_rng(0))
    data = _search_dict(name)
    data["fitness"]["objectives"].append({"metric": "params_M", "direction": "min"})
    data["evaluator"]["params"]["report"] = ["params_M"]
    with pytest.raises(ConfigError, match=f"strategy '{name}' takes 1 objective\\(s\\); fitness.objectives has 2"):
        build_parts(from_dict(SearchConfig, data))


# --------------------------------------------------------------------------- configs
@pytest.mark.parametrize("name, surrogate, acquisition", [("bananas", "rf", "its"), ("npenas", "rf", "mean")])
def test_shipped_configs_load(name, surrogate, acquisition):
    config = load_config(SearchConfig, ROOT / "configs" / f"nb201-{name}.yaml")
    rea = load_config(SearchConfig, ROOT / "configs" / "nb201-rea.yaml")
    assert config.strategy.name == name
    typed = config.strategy.typed("strategy")
    assert isinstance(typed, GUIDED[name][1])
    assert typed.surrogate.name == surrogate and typed.acquisition == acquisition
    # the same protocol as the REA config
    assert (config.evaluator, config.fitness, config.budget, config.report) == (rea.evaluator, rea.fitness, rea.budget, rea.report)


# --------------------------------------------------------------------------- quality
def test_guided_search_beats_random_search_on_nas_bench_201(nb201_env):
    """100 table queries, 4 seeds: the predictor-guided strategies find better cells on average."""
    metric = "cifar10-valid_valid_acc_12ep"
    best: dict[str, list[float]] = {name: [] for name in ("random", "bananas", "npenas")}
    for name, found in best.items():  # each with its default parameters
        for seed in range(4):
            config = from_dict(SearchConfig, {
                "seed": seed,
                "evaluator": {"name": "tabular", "params": {"metric": metric, "report": []}},
                "fitness": {"objectives": [{"metric": metric}]},
                "strategy": {"name": name},
                "budget": {"evaluations": 100},
                "progress": False,
            })
            parts = build_parts(config)
            history = Search(parts.space, parts.strategy, parts.fitness, parts.evaluator, SerialExecutor(),
                             config.budget, seed=seed).run_search()
            assert len(history) == 100
            found.append(max(r.metrics[metric] for r in history))
    means = {name: float(np.mean(v)) for name, v in best.items()}
    assert means["bananas"] > means["random"] and means["npenas"] > means["random"], means


class _TinyFixedSpace(CoreOnlySpace):
    """Three binary positions, declared fixed-length (one-hot rows) but not a graph."""

    name = "tiny_fixed_test"
    capabilities = frozenset({"fixed_length"})
    length = 3
    num_choices = 2


def test_the_surrogate_needs_are_checked_against_the_space_and_a_small_space_is_exhausted():
    space = _TinyFixedSpace()
    config = BANANASConfig(num_init=3, batch_size=2, num_parents=2, surrogate=ComponentConfig("bananas"))
    with pytest.raises(CapabilityError, match="^the surrogate 'bananas' of strategy BANANAS needs a search space with graph"):
        BANANAS(space, 1, np.random.default_rng(0), config)
    s = BANANAS(space, 1, np.random.default_rng(0), BANANASConfig(num_init=3, batch_size=2, num_parents=2, surrogate=FAST_RF))
    asked = []
    while (arch := s.ask()) is not None:
        asked.append(arch)
        s.tell(arch, (float(sum(arch)),))
    assert sorted(asked) == sorted(itertools.product((0, 1), repeat=3))  # every one once, then nothing to propose
    assert s.num_fits >= 1
