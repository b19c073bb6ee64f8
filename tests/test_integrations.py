"""Optuna and Ray Tune integrations: evonas strategies inside an Optuna study and a Tune
experiment give the histories of ``evonas search``; Optuna's samplers run as evonas
strategies; a missing framework is a one-line error naming the extra to install."""

from __future__ import annotations

import importlib
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import optuna
import pytest
import yaml

from evonas.cli import main
from evonas.config import from_dict
from evonas.errors import ArchError, CapabilityError, ConfigError, RunDirError, UnknownChoiceError
from evonas.executors import SerialExecutor
from evonas.fitness import Objective, PlainFitness
from evonas.integrations import MissingExtraError
from evonas.integrations.optuna import EvonasSampler
from evonas.runs import RunDir
from evonas.search import Budget, Search, SearchConfig, build_parts, load_history, resume_search, start_search
from evonas.spaces import get_space
from evonas.strategies import STRATEGIES, RandomSearch, RegularizedEvolution

from _toys import SumEvaluator

ROOT = Path(__file__).resolve().parents[1]
SPACE = get_space("nb201")
METRIC = "cifar10-valid_valid_acc"
REA = {"population_size": 8, "tournament_size": 3}


def search_config(seed: int, evaluations: int, strategy: str = "rea", params: dict | None = None) -> dict:
    """An ``evonas search`` config: REA on one training seed's 200-epoch validation accuracy
    (a noisy query, so every evaluation's seed matters), the plain fitness."""
    return {
        "seed": seed,
        "evaluator": {"name": "tabular", "params": {"metric": METRIC, "noisy": True,
                                                    "report": ["cifar10-valid_valid_acc_12ep"]}},
        "fitness": {"objectives": [{"metric": METRIC}]},
        "strategy": {"name": strategy, "params": REA if params is None else params},
        "budget": {"evaluations": evaluations},
        "progress": False,
    }


def evonas_search(tmp_path: Path, raw: dict, name: str = "run") -> list[tuple[tuple[int, ...], float]]:
    """Run ``evonas search`` on ``raw``; the (architecture, value) of every candidate, in order."""
    config = tmp_path / f"{name}.yaml"
    config.write_text(yaml.safe_dump(raw))
    start_search(config, run_dir=tmp_path / name)
    history = load_history(RunDir.open(tmp_path / name))
    assert all(not r.failed for r in history)
    return [(r.arch, r.values[0]) for r in history]


class Recorder(RandomSearch):
    """Random search that records what it is told (for checking what the integrations tell)."""

    max_objectives = 2

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.told: list[tuple[tuple[int, ...], tuple[float, ...] | None]] = []

    def tell(self, arch, fitness):
        self.told.append((arch, fitness))


# ----------------------------------------------------------------------------------- Optuna
optuna.logging.set_verbosity(optuna.logging.WARNING)


def trial_arch(trial) -> tuple[int, ...]:
    return tuple(int(trial.params[f"edge_{i}"]) for i in range(6))


def test_optuna_sampler_with_rea_replays_evonas_search(tmp_path, nb201_env):
    raw = search_config(seed=7, evaluations=60)
    expected = evonas_search(tmp_path, raw)
    evaluator = build_parts(from_dict(SearchConfig, raw)).evaluator
    sampler = EvonasSampler("rea", "nb201", seed=7, params=REA)

    def objective(trial):
        arch = sampler.suggest_arch(trial)
        return evaluator.evaluate(arch, sampler.evaluation_seed(trial)).metrics[METRIC]

    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(objective, n_trials=60)
    got = [(trial_arch(t), t.value) for t in study.trials]
    assert got == expected
    # regularized evolution, not sampling: after the population, children are one-edit mutants
    assert all(min(SPACE.distance(a, p) for p, _ in got[:i]) <= 1 for i, (a, _) in enumerate(got) if i >= 8)
    assert len(sampler.strategy.population) == 8


def test_optuna_sampler_signs_values_by_direction_and_tells_failures():
    strategy = Recorder(SPACE, 2, np.random.default_rng(0))
    sampler = EvonasSampler(strategy)
    plan = iter(["ok", "raise", "prune", "nan", "ok"])

    def objective(trial):
        arch = sampler.suggest_arch(trial)
        trial.suggest_float("lr", 1e-4, 1e-1, log=True)  # not a decision: drawn independently
        what = next(plan)
        if what == "raise":
            raise RuntimeError("diverged")
        if what == "prune":
            raise optuna.TrialPruned()
        if what == "nan":
            return float("nan"), 1.0
        return float(sum(arch)), float(arch.count(3))

    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    study.optimize(objective, n_trials=5, catch=(RuntimeError,))
    trials = study.trials
    assert [t.state.name for t in trials] == ["COMPLETE", "FAIL", "PRUNED", "FAIL", "COMPLETE"]
    expected = [(trial_arch(t), (t.values[0], -t.values[1]) if t.state.name == "COMPLETE" else None) for t in trials]
    assert strategy.told == expected
    assert all(1e-4 <= t.params["lr"] <= 1e-1 for t in trials)


def test_optuna_sampler_leaves_enqueued_trials_untold_and_builds_per_directions():
    sampler = EvonasSampler("rea", seed=1, params={"population_size": 2})
    study = optuna.create_study(direction="minimize", sampler=sampler)
    fixed = (0, 1, 2, 3, 4, 0)
    study.enqueue_trial({f"edge_{i}": c for i, c in enumerate(fixed)})
    study.optimize(lambda t: float(sum(sampler.suggest_arch(t))), n_trials=3)
    assert trial_arch(study.trials[0]) == fixed
    strategy = sampler.strategy
    assert isinstance(strategy, RegularizedEvolution) and strategy.num_objectives == 1
    assert strategy.num_asked == 2 and strategy.num_told == 2  # the enqueued trial was not the strategy's
    assert sorted(v for _, v in strategy.population) == sorted(-t.value for t in study.trials[1:])


def test_optuna_sampler_pickled_with_its_storage_resumes_exactly(tmp_path):
    evaluator = SumEvaluator(noise=1.0)

    def objective_for(sampler):
        def objective(trial):
            arch = sampler.suggest_arch(trial)
            return evaluator.evaluate(arch, sampler.evaluation_seed(trial)).metrics["score"]
        return objective

    params = {"population_size": 4, "tournament_size": 2}
    whole = EvonasSampler("rea", seed=3, params=params)
    study = optuna.create_study(direction="maximize", sampler=whole)
    study.optimize(objective_for(whole), n_trials=16)

    url = f"sqlite:///{tmp_path / 'study.db'}"
    first = EvonasSampler("rea", seed=3, params=params)
    part = optuna.create_study(study_name="nas", storage=url, direction="maximize", sampler=first)
    part.optimize(objective_for(first), n_trials=9)  # mid-evolution: the population is founded
    (tmp_path / "sampler.pkl").write_bytes(pickle.dumps(first))
    second = pickle.loads((tmp_path / "sampler.pkl").read_bytes())
    resumed = optuna.load_study(study_name="nas", storage=url, sampler=second)
    resumed.optimize(objective_for(second), n_trials=7)
    assert [(trial_arch(t), t.value) for t in resumed.trials] == [(trial_arch(t), t.value) for t in study.trials]


def test_optuna_sampler_rejects_bad_arguments():
    with pytest.raises(ConfigError, match="'params' configure a strategy given by name"):
        EvonasSampler(RegularizedEvolution(SPACE, 1, np.random.default_rng(0)), params={"population_size": 3})
    with pytest.raises(ConfigError, match="invalid value 0 for .*population_size"):
        EvonasSampler("rea", params={"population_size": 0})
    with pytest.raises(UnknownChoiceError, match="unknown strategy 'reaa'; valid choices: .*rea"):
        EvonasSampler("reaa")
    with pytest.raises(ConfigError, match="seed"):
        EvonasSampler("rea", seed=-1)
    with pytest.raises(CapabilityError, match="needs a search space with fixed_length"):
        EvonasSampler(RegularizedEvolution(_NoFixedLength(), 1, np.random.default_rng(0)))
    sampler = EvonasSampler(RegularizedEvolution(SPACE, 1, np.random.default_rng(0)))
    study = optuna.create_study(directions=["maximize", "maximize"], sampler=sampler)
    with pytest.raises(ConfigError, match="built for 1 objective.*2 direction"):
        study.optimize(lambda t: (float(sum(sampler.suggest_arch(t))), 0.0), n_trials=1)


class _NoFixedLength(type(SPACE)):
    """NAS-Bench-201 pretending to lack ``fixed_length``."""

    capabilities = frozenset({"enumerable", "crossover", "graph"})


# ------------------------------------------------------------- Optuna's samplers as strategies
def toy_run(name: str, seed: int, n: int, objectives=("score",), params: dict | None = None):
    cls = STRATEGIES.get(name)
    config = from_dict(cls.Config, params or {})
    strategy = cls(SPACE, len(objectives), np.random.default_rng(seed), config)
    search = Search(SPACE, strategy, PlainFitness(tuple(Objective(m) for m in objectives)), SumEvaluator(),
                    SerialExecutor(), Budget(evaluations=n), seed=seed)
    return [(r.arch, r.values) for r in search.run_search()]


def test_optuna_tpe_strategy_learns_the_toy_problem():
    tpe = toy_run("optuna_tpe", 0, 120)
    random = toy_run("random", 0, 120)
    # the optimum (4,4,4,4,4,4) scores 24; uniform sampling averages 12
    assert max(v[0] for _, v in tpe) >= 23 > max(v[0] for _, v in random)
    assert np.mean([v[0] for _, v in tpe[-40:]]) > np.mean([v[0] for _, v in tpe[:10]]) + 4


def test_optuna_nsga2_strategy_spreads_over_the_front_of_a_toy_problem():
    # maximise 3x3 convs and skip connections: they compete for the six edges, so the
    # Pareto front is {k convs, 6 - k skips : k = 0..6}
    cls = STRATEGIES.get("optuna_nsga2")
    s = cls(SPACE, 2, np.random.default_rng(0), cls.Config(population_size=30))
    for _ in range(30 * 20):
        a = s.ask()
        s.tell(a, (float(a.count(3)), float(a.count(1))))
    told = {(float(t.values[0]), float(t.values[1])) for t in s.study.trials}
    front = {(float(k), float(6 - k)) for k in range(7)}
    assert len(told & front) >= 6


def test_optuna_strategy_tells_failures_and_refuses_unasked_archs():
    cls = STRATEGIES.get("optuna_tpe")
    s = cls(SPACE, 1, np.random.default_rng(0))
    a, b = s.ask(), s.ask()
    s.tell(b, None)
    s.tell(a, (1.5,))
    assert [(t.state.name, t.values) for t in s.study.trials] == [("COMPLETE", [1.5]), ("FAIL", None)]
    with pytest.raises(ArchError, match="never asked for"):
        s.tell(a, (2.0,))


def test_evonas_search_with_optuna_tpe_resumes_exactly(tmp_path, nb201_env):
    params = {"n_startup_trials": 5}
    whole = evonas_search(tmp_path, search_config(2, 40, "optuna_tpe", params), "whole")
    config = yaml.safe_load((tmp_path / "whole" / "config.yaml").read_text())
    assert config["strategy"]["params"] == {"n_startup_trials": 5, "n_ei_candidates": 24, "multivariate": None,
                                            "constant_liar": None}
    half = evonas_search(tmp_path, search_config(2, 20, "optuna_tpe", params), "half")
    assert half == whole[:20]
    resume_search(tmp_path / "half", ["budget.evaluations=40"])
    assert [(r.arch, r.values[0]) for r in load_history(RunDir.open(tmp_path / "half"))] == whole


# ------------------------------------------------------------------------ missing extras
def test_missing_optuna_is_a_one_line_error_naming_the_extra(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "optuna", None)
    monkeypatch.delitem(sys.modules, "evonas.integrations.optuna", raising=False)
    with pytest.raises(ImportError, match=r"install it with: pip install 'evonas\[optuna\]'") as info:
        importlib.import_module("evonas.integrations.optuna")
    assert isinstance(info.value, MissingExtraError) and "\n" not in str(info.value)
    with pytest.raises(MissingExtraError, match="strategy 'optuna_nsga2' needs optuna"):
        STRATEGIES.get("optuna_nsga2")(SPACE, 1, np.random.default_rng(0))

    table = ROOT / "tests" / "plugins" / "chain_nas" / "chain-digits.csv"
    config = tmp_path / "tpe.yaml"
    config.write_text(yaml.safe_dump({
        "space": {"name": "chain"},
        "evaluator": {"name": "tabular", "params": {"tables": [{"name": "file", "params": {"path": str(table)}}],
                                                    "metric": "val_acc", "report": ["test_acc"]}},
        "fitness": {"objectives": [{"metric": "val_acc"}]},
        "strategy": {"name": "optuna_tpe"},
        "budget": {"evaluations": 5},
    }))
    assert main(["search", "--config", str(config), "--run-dir", str(tmp_path / "run"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "strategy 'optuna_tpe' needs optuna" in err
    assert "pip install 'evonas[optuna]'" in err
    assert not (tmp_path / "run").exists()


def test_missing_ray_tune_is_a_one_line_error_naming_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray.tune", None)
    monkeypatch.delitem(sys.modules, "evonas.integrations.ray_tune", raising=False)
    with pytest.raises(ImportError, match=r"install it with: pip install 'evonas\[tune\]'") as info:
        importlib.import_module("evonas.integrations.ray_tune")
    assert isinstance(info.value, MissingExtraError) and "\n" not in str(info.value)


def test_importing_evonas_imports_neither_optuna_nor_tune():
    code = ("import sys, evonas, evonas.strategies, evonas.search, evonas.integrations; "
            "print(sorted(m for m in ('optuna', 'ray.tune') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


# -------------------------------------------------------------------------------- Ray Tune
@pytest.fixture(scope="module")
def ray_tune():
    """Ray Tune on a local two-CPU Ray instance (127.0.0.1), shut down after the module."""
    import ray.tune  # noqa: F401 -- the dev extra installs it: a missing Tune fails, never skips
    import ray

    from evonas.executors import init_local_ray

    if ray.is_initialized():
        ray.shutdown()
    init_local_ray(num_cpus=2)
    from ray import tune

    yield tune
    ray.shutdown()


def _tune_modules():
    import ray.tune  # noqa: F401 -- the dev extra installs it: a missing Tune fails, never skips
    from ray.tune.search import Searcher

    from evonas.integrations.ray_tune import EvonasSearcher

    return EvonasSearcher, Searcher


def test_searcher_suggests_architectures_and_tells_signed_metrics():
    EvonasSearcher, Searcher = _tune_modules()
    strategy = Recorder(SPACE, 1, np.random.default_rng(0))
    searcher = EvonasSearcher(strategy, metric="loss", mode="min", seed=5)
    configs = [searcher.suggest(f"t{i}") for i in range(6)]
    for i, config in enumerate(configs):
        arch = tuple(config["edge_" + str(k)] for k in range(6))
        assert config["arch"] == arch and config["arch_str"] == SPACE.format(arch)
        assert config["evaluation_id"] == i
        assert config["evaluation_seed"] == int(np.random.SeedSequence([5, i]).generate_state(1, dtype=np.uint32)[0])
    searcher.on_trial_complete("t1", {"loss": 0.25})
    searcher.on_trial_complete("t0", {"loss": 0.5}, error=True)
    searcher.on_trial_complete("t2", {"loss": float("nan")})
    searcher.on_trial_complete("t3", {"other": 1.0})
    searcher.on_trial_complete("t4", None)
    searcher.on_trial_complete("t1", {"loss": 0.1})  # told already: ignored
    searcher.on_trial_complete("elsewhere", {"loss": 0.1})  # not this searcher's
    arch = {f"t{i}": c["arch"] for i, c in enumerate(configs)}
    assert strategy.told == [(arch["t1"], (-0.25,)), (arch["t0"], None), (arch["t2"], None), (arch["t3"], None),
                             (arch["t4"], None)]

    class Waiting(RandomSearch):
        def ask(self):
            return None

    waiting = EvonasSearcher(Waiting(SPACE, 1, np.random.default_rng(0)), metric="acc", mode="max")
    assert waiting.suggest("a") == Searcher.FINISHED


def test_searcher_save_and_restore_continue_the_same_suggestions(tmp_path):
    EvonasSearcher, _ = _tune_modules()
    a = EvonasSearcher("rea", metric="acc", mode="max", seed=1, params={"population_size": 3})
    for i in range(5):
        config = a.suggest(f"t{i}")
        if i < 4:
            a.on_trial_complete(f"t{i}", {"acc": float(sum(config["arch"]))})
    a.save(str(tmp_path / "state.pkl"))
    b = EvonasSearcher("random", metric="loss", mode="min")
    b.restore(str(tmp_path / "state.pkl"))
    assert b.metric == "acc" and b.mode == "max"
    for s in (a, b):
        s.on_trial_complete("t4", {"acc": 3.0})  # in flight when saved: told after the restore
    assert [a.suggest(f"u{i}") for i in range(4)] == [b.suggest(f"u{i}") for i in range(4)]
    (tmp_path / "other.pkl").write_bytes(pickle.dumps({"format": "something else"}))
    with pytest.raises(RunDirError, match="is not a state saved by EvonasSearcher.save"):
        b.restore(str(tmp_path / "other.pkl"))


def test_searcher_rejects_bad_arguments():
    EvonasSearcher, _ = _tune_modules()
    from ray import tune

    with pytest.raises(ConfigError, match="'mode' must be one of min, max; got 'maximize'"):
        EvonasSearcher("rea", metric="acc", mode="maximize")
    with pytest.raises(ConfigError, match="built for 2 objectives"):
        EvonasSearcher(Recorder(SPACE, 2, np.random.default_rng(0)))
    with pytest.raises(ConfigError, match="needs a metric and a mode"):
        EvonasSearcher("rea").suggest("t0")
    searcher = EvonasSearcher("rea")
    with pytest.raises(ConfigError, match="search-space definitions: lr"):
        searcher.set_search_properties("acc", "max", {"lr": tune.loguniform(1e-4, 1e-1), "epochs": 3})
    assert searcher.set_search_properties("acc", "max", {"epochs": 3})
    assert searcher.metric == "acc" and searcher.mode == "max"


def _nb201_trainable(tune, report: tuple[str, ...], interrupt_at: int | None = None, marker: str = "", driver: int = 0):
    """A trainable answering from the tabular evaluator: one ``tune.report`` per metric of
    ``report`` (a trial's later reports are later rungs for a scheduler). At suggestion
    ``interrupt_at`` it interrupts the driver once, as Ctrl+C would, while still running."""

    def trainable(config, evaluator):
        if interrupt_at is not None and config["evaluation_id"] == interrupt_at and not os.path.exists(marker):
            Path(marker).touch()
            os.kill(driver, signal.SIGUSR1)  # Tune's driver stops the experiment and saves its state
            time.sleep(2.0)
        evaluation = evaluator.evaluate(tuple(config["arch"]), config["evaluation_seed"])
        for metric in report:
            tune.report({"acc": evaluation.metrics[metric]})

    return trainable


def _tuner(tune, searcher, trainable, evaluator, path: Path, num_samples: int, **tune_config):
    return tune.Tuner(
        tune.with_parameters(trainable, evaluator=evaluator),
        tune_config=tune.TuneConfig(search_alg=tune.search.ConcurrencyLimiter(searcher, max_concurrent=1),
                                    num_samples=num_samples, reuse_actors=True, **tune_config),
        run_config=tune.RunConfig(storage_path=str(path), name="exp", verbose=0),
    )


def _tune_history(grid) -> list[tuple[tuple[int, ...], float]]:
    assert not grid.errors
    rows = sorted((r.config["evaluation_id"], tuple(r.config["arch"]), r.metrics["acc"]) for r in grid)
    assert [n for n, _, _ in rows] == list(range(len(rows)))
    return [(arch, value) for _, arch, value in rows]


N_TUNE = 30


@pytest.fixture(scope="module")
def nb201_search(tmp_path_factory, nb201_path):
    """``evonas search`` of :data:`N_TUNE` evaluations and its evaluator."""
    raw = search_config(seed=11, evaluations=N_TUNE)
    raw["evaluator"]["params"]["tables"] = [{"name": "nb201", "params": {"path": str(nb201_path)}}]
    history = evonas_search(tmp_path_factory.mktemp("search"), raw)
    return history, build_parts(from_dict(SearchConfig, raw)).evaluator


@pytest.mark.ray
def test_tuner_with_rea_searcher_replays_evonas_search(ray_tune, nb201_search, tmp_path):
    from evonas.integrations.ray_tune import EvonasSearcher

    expected, evaluator = nb201_search
    searcher = EvonasSearcher("rea", "nb201", metric="acc", mode="max", seed=11, params=REA)
    grid = _tuner(ray_tune, searcher, _nb201_trainable(ray_tune, (METRIC,)), evaluator, tmp_path, N_TUNE).fit()
    assert _tune_history(grid) == expected
    assert len(searcher.strategy.population) == REA["population_size"]


@pytest.mark.ray
def test_tuner_interrupted_and_restored_ends_like_an_uninterrupted_run(ray_tune, nb201_search, tmp_path):
    from evonas.integrations.ray_tune import EvonasSearcher

    if threading.current_thread() is not threading.main_thread():
        pytest.skip("Tune catches the interrupting signal only in the main thread")
    expected, evaluator = nb201_search
    marker = str(tmp_path / "interrupted")
    trainable = _nb201_trainable(ray_tune, (METRIC,), interrupt_at=12, marker=marker, driver=os.getpid())
    searcher = EvonasSearcher("rea", "nb201", metric="acc", mode="max", seed=11, params=REA)
    # Should Tune ever stop catching SIGUSR1, the signal is ignored and the test fails below
    # instead of ending the test process.
    previous = signal.signal(signal.SIGUSR1, lambda *_: None)
    try:
        first = _tuner(ray_tune, searcher, trainable, evaluator, tmp_path, N_TUNE).fit()
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert os.path.exists(marker)
    assert sum(1 for r in first if r.metrics.get("acc") is not None) < N_TUNE  # it was interrupted

    restored = ray_tune.Tuner.restore(str(tmp_path / "exp"), trainable=ray_tune.with_parameters(trainable, evaluator=evaluator))
    history = _tune_history(restored.fit())
    assert history == expected
    assert max(history, key=lambda h: h[1]) == max(expected, key=lambda h: h[1])


@pytest.mark.ray
def test_tuner_with_asha_tells_the_strategy_each_trials_last_report(ray_tune, nb201_search, tmp_path):
    from evonas.integrations.ray_tune import EvonasSearcher

    _, evaluator = nb201_search
    strategy = _RecordingREA(SPACE, 1, np.random.default_rng(4), from_dict(RegularizedEvolution.Config, REA))
    searcher = EvonasSearcher(strategy, metric="acc", mode="max", seed=4)
    asha = ray_tune.schedulers.ASHAScheduler(metric="acc", mode="max", max_t=2, grace_period=1, reduction_factor=2)
    trainable = _nb201_trainable(ray_tune, ("cifar10-valid_valid_acc_12ep", METRIC))  # rung 1: 12 epochs; rung 2: 200
    grid = _tuner(ray_tune, searcher, trainable, evaluator, tmp_path, 16, scheduler=asha).fit()
    rows = sorted((r.config["evaluation_id"], tuple(r.config["arch"]), r.metrics["acc"], r.metrics["training_iteration"])
                  for r in grid)
    iterations = [it for *_, it in rows]
    assert 1 in iterations and 2 in iterations  # ASHA stopped some trials after the first rung
    assert strategy.told == [(arch, (value,)) for _, arch, value, _ in rows]


class _RecordingREA(RegularizedEvolution):
    """Regularized evolution that records what it is told."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.told: list[tuple[tuple[int, ...], tuple[float, ...] | None]] = []

    def tell(self, arch, fitness):
        self.told.append((arch, fitness))
        super().tell(arch, fitness)

