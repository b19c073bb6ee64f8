"""The ``predictors`` run kind: config validation, small real runs, their files, resume,
report, the direction of the targets, a plugin space, Ray."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from _predictor_fixtures import one_torch_thread, tiny_network, toy_flat_registered  # noqa: F401
from evonas.config import from_dict, load_config, to_dict
from evonas.errors import CapabilityError, ConfigError, EvonasError, RunFailedError, UnknownChoiceError
from evonas.runs import report_run, resume_run, start_run
from evonas.spaces import get_space
from predictors import (
    PREDICTORS,
    HarnessConfig,
    LinearPredictor,
    TrialRunner,
    ZeroCostPredictor,
    kendall_tau,
    run_harness,
)
from predictors._harness import prepare_harness

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "predictors-nb201.yaml"
PLUGIN = ROOT / "tests" / "plugins" / "chain_nas"


def _raw(shared_data: Path, **changes: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "tables": [{"name": "nb201", "params": {"path": str(shared_data / "nb201" / "nb201.csv.gz")}}],
        "predictors": ["linear", "rf", "zc_params"],
        "params": {"rf": {"n_estimators": 10}},
        "train_sizes": [5, 10],
        "test_size": 30,
        "trials": 2,
        "train_pool": 40,
        "seed": 3,
        "zero_cost": {
            "data_root": str(shared_data / "images" / "cifar10-jpg-small.tar.gz"),
            "batch_size": 8,
            "network": to_dict(tiny_network()),
        },
        "progress": False,
    }
    raw.update(changes)
    return raw


def _small(shared_data: Path, **changes: Any) -> HarnessConfig:
    return from_dict(HarnessConfig, _raw(shared_data, **changes))


def test_shipped_config_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # paths in the file are relative to the file, not the cwd
    config = load_config(HarnessConfig, CONFIG)
    assert config.metric == "cifar10-valid_valid_acc" and config.direction == "max"
    assert config.space.name == "nb201"
    assert config.train_sizes == (10, 20, 50, 100, 200, 400)
    assert config.test_size == 200 and config.trials == 10
    assert config.tables[0].params["path"] == str((ROOT.parent / "shared" / "data" / "nb201" / "nb201.csv.gz").resolve())
    assert config.zero_cost.data_root is not None and Path(config.zero_cost.data_root).is_file()
    assert config.zero_cost.network.params == {"channels": 16, "cells_per_stage": 5}
    assert config.executor.name == "serial"
    assert "gae" in config.predictor_names and "zc_naswot" in config.predictor_names
    overridden = load_config(HarnessConfig, CONFIG, ["trials=3", "predictors=[rf]", "zero_cost.cache_dir=zc"])
    assert overridden.trials == 3 and overridden.predictor_names == ("rf",)
    assert overridden.zero_cost.cache_dir == str(tmp_path / "zc")  # an override is relative to the cwd


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"trails": 3}, "unknown key 'trails'; valid keys: .*trials"),
        ({"train_sizes": [10, 2000]}, "invalid value 1000 for 'train_pool'; expected an integer in \\[2000, \\d+\\]"),
        ({"train_sizes": [1]}, r"'train_sizes\[0\]'; expected an integer in \[2, \d+\]"),
        ({"train_sizes": [10, 10]}, "train_sizes lists a size twice"),
        ({"predictors": ["rf", "rf"]}, "predictors lists a name twice"),
        ({"test_size": 1}, "'test_size'; expected an integer in \\[2, \\d+\\]"),
        ({"top_fraction": 1.5}, r"'top_fraction'; expected a finite number in \(0, 1\]"),
        ({"direction": "up"}, "invalid value 'up' for 'direction'; valid values: 'max', 'min'"),
        ({"executor": {"name": "dask"}}, "unknown executor 'dask'; valid choices: ray, serial"),
        ({"zero_cost": {"batch_size": 1}}, "'zero_cost.batch_size'; expected an integer in \\[2, \\d+\\]"),
        ({"zero_cost": {"network": {"name": "nb201", "params": {"cells": 5}}}}, "unknown key 'zero_cost.network.params.cells'"),
        ({"space": {"name": "nb101"}}, "unknown search space 'nb101'"),
    ],
)
def test_bad_config_rejected_when_read(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(EvonasError, match=message):
        from_dict(HarnessConfig, raw)


@pytest.mark.parametrize(
    ("changes", "error", "message"),
    [
        ({"predictors": ["xgb"]}, UnknownChoiceError, "unknown predictor 'xgb'; valid choices: .*gbdt"),
        ({"predictors": ["rf"], "params": {"gin": {"epochs": 3}}}, ConfigError,
         "params has an entry for 'gin', which is not evaluated"),
        ({"predictors": ["rf"], "params": {"rf": {"trees": 3}}}, ConfigError, r"params.rf: unknown hyper-parameter\(s\) 'trees'"),
        ({"predictors": ["gp"], "params": {"gp": {"kernel": "cosine"}}}, ConfigError,
         "params.gp: invalid value 'cosine' for 'kernel' of GaussianProcessPredictor; valid values: 'rbf', 'matern'"),
        ({"predictors": ["rf"], "params": {"rf": {"random_state": 1}}}, ConfigError,
         r"params.rf.random_state is set by the run \(from 'seed'\)"),
        ({"predictors": ["zc_params"], "params": {"zc_params": {"direction": "min"}}}, ConfigError,
         r"params.zc_params.direction is set by the run \(from 'direction'\)"),
        ({"metric": "accuracy"}, UnknownChoiceError, "unknown table metric 'accuracy'; valid choices: .*cifar10_test_acc"),
        ({"train_pool": 15600}, ConfigError, "test_size \\+ train_pool = 30 \\+ 15600 .* the tables hold 15625 architectures"),
        ({"zero_cost": {"data_root": "/nonexistent/images.tar.gz"}}, EvonasError, "nonexistent"),
    ],
)
def test_bad_config_rejected_before_the_run_directory_exists(
    shared_data: Path, tmp_path: Path, changes: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        prepare_harness(_small(shared_data, **changes))
    # the lifecycle prepares first: a bad config leaves nothing behind
    config_file = tmp_path / "bad.yaml"
    config_file.write_text(json.dumps(_raw(shared_data, **changes)))
    with pytest.raises(error, match=message):
        start_run("predictors", config_file, run_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()


@pytest.mark.usefixtures("toy_flat_registered")
def test_capabilities_are_checked_before_anything_runs(shared_data: Path) -> None:
    # toy_flat is enumerable but has no op-node graph and no network decoder.
    flat: dict[str, Any] = {"space": {"name": "toy_flat"}, "params": {}}
    with pytest.raises(CapabilityError, match="predictor 'gin' needs a search space with graph; space 'toy_flat'"):
        prepare_harness(_small(shared_data, predictors=["gin"], **flat))
    with pytest.raises(CapabilityError, match="predictor 'bananas' needs a search space with graph"):
        prepare_harness(_small(shared_data, predictors=["linear", "bananas"], **flat))
    with pytest.raises(CapabilityError, match="zero-cost scores need a network decoder for space 'toy_flat'"):
        prepare_harness(_small(shared_data, predictors=["zc_params"], **flat))
    with pytest.raises(CapabilityError, match="table 'nb201' serves space 'nb201', not the configured space 'toy_flat'"):
        prepare_harness(_small(shared_data, predictors=["linear"], **flat))


def test_training_sets_are_paired_and_disjoint_from_the_test_set() -> None:
    space = get_space("nb201")
    archs = space.all_archs()
    runner = TrialRunner(
        params={}, test=tuple(archs[:10]), test_y=np.zeros(10), pool=tuple(archs[10:60]), pool_y=np.zeros(50),
        sizes=(5, 20), seed=1, top_fraction=0.1, direction="max", threads=1,
    )
    a, b = runner.training_set(1, 0), runner.training_set(1, 0)
    np.testing.assert_array_equal(a, b)  # the same draw whichever predictor asks
    assert len(set(a.tolist())) == 20 and set(a.tolist()) <= set(range(50))
    assert not np.array_equal(runner.training_set(1, 1), a)  # another trial, another draw


def _trial_records(run_dir: Path) -> list[dict[str, Any]]:
    lines = (run_dir / "log.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["type"] == "trial"]


def test_small_run_writes_consistent_results(shared_data: Path, tmp_path: Path) -> None:
    config = _small(shared_data)
    result = run_harness(config, tmp_path / "run", progress=False)
    run_dir = tmp_path / "run"
    # 2 trained predictors x 2 sizes x 2 trials + 1 zero-cost row
    assert len(result.rows) == 9
    assert {(r["predictor"], r["train_size"]) for r in result.rows} == {
        ("linear", 5), ("linear", 10), ("rf", 5), ("rf", 10), ("zc_params", 0)
    }
    assert not any(r["failed"] for r in result.rows)
    assert len(result.test_archs) == 30 and len(result.pool_archs) == 40
    assert not set(result.test_archs) & set(result.pool_archs)

    # the zero-cost row is exactly the proxy's tau on the test set
    from evonas.tabular import NB201Table

    table = NB201Table.load(config.tables[0].params["path"])
    y = np.array([table.query(a, config.metric) for a in result.test_archs])
    scorer = config.zero_cost.scorer(get_space("nb201"), cache_dir=str(run_dir / "zc-cache"))
    pred = ZeroCostPredictor("params", scorer=scorer).fit([], []).predict(result.test_archs)
    (zc_row,) = [r for r in result.rows if r["predictor"] == "zc_params"]
    assert zc_row["kendall_tau"] == pytest.approx(kendall_tau(y, pred), abs=1e-12)
    assert result.zero_cost[0]["proxy"] == "params" and result.zero_cost[0]["n_archs"] == 70

    # a trial is the predictor fitted on its training set (seeded by seed and trial)
    (first,) = [r for r in result.rows if (r["predictor"], r["train_size"], r["trial"]) == ("linear", 10, 1)]
    runner = TrialRunner(params={}, test=tuple(result.test_archs), test_y=y, pool=tuple(result.pool_archs),
                         pool_y=np.array([table.query(a, config.metric) for a in result.pool_archs]),
                         sizes=(5, 10), seed=3, top_fraction=0.1, direction="max", threads=1)
    positions = runner.training_set(1, 1)
    train = [result.pool_archs[int(i)] for i in positions]
    linear = LinearPredictor(random_state=3 * 1_000_003 + 1).fit(train, runner.pool_y[positions])
    assert first["kendall_tau"] == pytest.approx(kendall_tau(y, linear.predict(result.test_archs)), abs=1e-12)

    # summary = mean over trials
    for entry in result.summary:
        taus = [r["kendall_tau"] for r in result.rows if (r["predictor"], r["train_size"]) == (entry["predictor"], entry["train_size"])]
        assert entry["kendall_tau_mean"] == pytest.approx(np.mean(taus))
        assert entry["trials"] == len(taus)

    # the run directory: lifecycle files, one log record per trial, the tables
    assert {"config.yaml", "meta.yaml", "log.jsonl", "result.json", "results.csv", "summary.csv", "results.md",
            "report.md", "kendall_tau.png", "zc-cache"} <= {p.name for p in run_dir.iterdir()}
    assert len(_trial_records(run_dir)) == 9
    summary = json.loads((run_dir / "result.json").read_text())
    assert summary["trials"] == 9 and summary["failed"] == 0 and summary == result.run_summary
    assert [b["train_size"] for b in summary["best"]] == [5, 10]
    with open(result.files["csv"]) as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 9 and set(rows[0]) >= {"predictor", "train_size", "trial", "kendall_tau", "spearman_rho",
                                               "pearson_r", "precision_at_top", "fit_time_s", "query_time_s"}
    md = result.files["markdown"].read_text()
    assert md == result.markdown == (run_dir / "report.md").read_text()
    assert "# Performance predictors on `nb201`: `cifar10-valid_valid_acc` (higher is better)" in md
    assert "## Kendall τ" in md and "| linear |" in md and "| zc_params (no training) |" in md
    assert "## Zero-cost proxies over all 70 scored architectures" in md
    assert result.files["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # `evonas report` re-renders the tables and the plot from the run's files
    result.files["markdown"].unlink()
    result.files["plot"].unlink()
    assert report_run(run_dir) == md
    assert result.files["markdown"].read_text() == md and result.files["plot"].is_file()

    # an executor passed in is used and left open; the results do not depend on it
    from evonas.executors import SerialExecutor

    executor = SerialExecutor()
    again = run_harness(config, tmp_path / "again", executor=executor, progress=False)
    assert [r["kendall_tau"] for r in again.rows] == [r["kendall_tau"] for r in result.rows]


def test_resume_runs_only_the_unfinished_trials(
    shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_file = tmp_path / "small.yaml"
    config_file.write_text(json.dumps(_raw(shared_data, predictors=["linear", "zc_params"], params={})))
    first = start_run("predictors", config_file, run_dir=tmp_path / "run")
    run_dir = first.run_dir
    records = _trial_records(run_dir)
    assert len(records) == 5 and first.summary["trials"] == 5

    # a crash after three trials: the log keeps them, result.json was never written
    log = (run_dir / "log.jsonl").read_text().splitlines(keepends=True)
    kept = [line for line in log if json.loads(line)["type"] != "trial"] + [
        line for line in log if json.loads(line)["type"] == "trial"][:3]
    (run_dir / "log.jsonl").write_text("".join(kept))
    (run_dir / "result.json").unlink()
    ran: list[tuple[str, int | None, int]] = []
    original = TrialRunner.run

    def counting(self: TrialRunner, payload: Any, seed: int) -> Any:
        ran.append((payload.predictor, payload.size_index, payload.trial))
        return original(self, payload, seed)

    monkeypatch.setattr(TrialRunner, "run", counting)
    resumed = resume_run(run_dir, progress=False)
    assert len(ran) == 2
    after = _trial_records(run_dir)
    assert len(after) == 5
    key = ("predictor", "train_size", "trial")
    assert {tuple(r[k] for k in key): r["kendall_tau"] for r in after} == {
        tuple(r[k] for k in key): r["kendall_tau"] for r in records
    }
    assert resumed.summary["trials"] == 5

    # a finished run resumes to its summary; overriding 'trials' extends it
    ran.clear()
    assert resume_run(run_dir, progress=False).summary == resumed.summary and ran == []
    extended = resume_run(run_dir, ["trials=3"], progress=False)
    assert len(ran) == 2 and {r[2] for r in ran} == {2}
    assert extended.summary["trials"] == 7
    with pytest.raises(ConfigError, match="--resume takes overrides of trials.*, predictors.* only"):
        resume_run(run_dir, ["test_size=10"], progress=False)


def test_direction_min_gives_the_same_ranking_quality(shared_data: Path, nb201_table: Any, tmp_path: Path) -> None:
    # The same data as an error (100 - accuracy, lower is better): with direction 'min'
    # trained predictors and proxies score exactly as on the accuracy itself.
    space = get_space("nb201")
    acc = nb201_table.column("cifar10-valid_valid_acc")
    path = tmp_path / "error.csv"
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["arch", "error"])
        writer.writerows([space.format(a), repr(100.0 - float(v))] for a, v in zip(space.all_archs(), acc))
    base: dict[str, Any] = {"predictors": ["linear", "rf", "zc_params"], "params": {"rf": {"n_estimators": 5}}, "trials": 1}
    up = run_harness(_small(shared_data, **base), tmp_path / "up", progress=False)
    down = run_harness(_small(shared_data, **base, metric="error", direction="min",
                              tables=[{"name": "file", "params": {"path": str(path)}}]),
                       tmp_path / "down", progress=False)
    metrics = ("kendall_tau", "spearman_rho", "pearson_r", "precision_at_top")
    assert up.test_archs == down.test_archs
    for a, b in zip(up.rows, down.rows):
        assert (a["predictor"], a["train_size"], a["trial"]) == (b["predictor"], b["train_size"], b["trial"])
        for m in metrics:
            assert b[m] == pytest.approx(a[m], abs=1e-9), (a["predictor"], m)
    assert up.rows[-1]["kendall_tau"] > 0.3  # the parameter count ranks accuracies positively either way
    assert down.zero_cost[0]["kendall_tau"] == pytest.approx(up.zero_cost[0]["kendall_tau"], abs=1e-9)
    assert "(lower is better)" in down.markdown


@pytest.fixture
def failing_predictor() -> Iterator[str]:
    """A registered predictor whose fit fails for training sets of fewer than 8 architectures."""

    class Picky(LinearPredictor):
        def fit(self, archs: Any, y: Any) -> Picky:
            if len(archs) < 8:
                raise ValueError(f"too few architectures: {len(archs)}")
            super().fit(archs, y)
            return self

    PREDICTORS.register("picky_test")(Picky)
    try:
        yield "picky_test"
    finally:
        PREDICTORS.unregister("picky_test")


def test_failed_trials_are_reported(shared_data: Path, tmp_path: Path, failing_predictor: str) -> None:
    result = run_harness(_small(shared_data, predictors=[failing_predictor], params={}), tmp_path / "some", progress=False)
    failed = [r for r in result.rows if r["failed"]]
    assert [(r["train_size"], r["trial"]) for r in failed] == [(5, 0), (5, 1)]
    assert failed[0]["error"] == "ValueError: too few architectures: 5"
    assert all(np.isnan(r["kendall_tau"]) for r in failed)
    assert not any(r["failed"] for r in result.rows if r["train_size"] == 10)
    assert "## Failed trials" in result.markdown and result.run_summary["failed"] == 2
    assert result.run_summary["first_error"] == "picky_test at size 5: ValueError: too few architectures: 5"

    with pytest.raises(RunFailedError, match="every one of the 2 predictor trials failed; first: picky_test at size 5"):
        run_harness(_small(shared_data, predictors=[failing_predictor], params={}, train_sizes=[5]),
                    tmp_path / "all", progress=False)
    assert len(_trial_records(tmp_path / "all")) == 2  # the run directory keeps the failures


def test_plugin_space_config_runs_from_the_command_line(tmp_path: Path) -> None:
    # The test plugin's own harness config: the chain space, its file table (relative to
    # the config), its decoder for the zero-cost network, digits images.
    from evonas.cli import main

    run_dir = tmp_path / "chain"
    argv = ["predictors", "evaluate", "--config", str(PLUGIN / "chain-predictors.yaml"), "--run-dir", str(run_dir),
            "--no-progress",
            "--plugin", str(PLUGIN), "trials=1", "params.gin.epochs=5"]
    assert main(argv) == 0
    summary = json.loads((run_dir / "result.json").read_text())
    assert summary["space"] == "chain" and summary["trials"] == 7 and summary["failed"] == 0
    assert {r["predictor"] for r in _trial_records(run_dir)} == {"linear", "rf", "gin", "zc_params"}
    md = (run_dir / "results.md").read_text()
    assert "# Performance predictors on `chain`: `val_acc`" in md
    assert main(["predictors", "evaluate", "--resume", str(run_dir), "--no-progress"]) == 0
    assert main(["report", str(run_dir)]) == 0
    assert (run_dir / "results.md").read_text() == md


@pytest.mark.ray
@pytest.mark.slow
def test_ray_executor_gives_the_serial_results(shared_data: Path, tmp_path: Path) -> None:
    ray_config = _small(shared_data, predictors=["linear"], params={}, train_sizes=[5],
                        executor={"name": "ray", "params": {"num_cpus": 1}})
    ray_rows = run_harness(ray_config, tmp_path / "ray", progress=False).rows
    serial = run_harness(_small(shared_data, predictors=["linear"], params={}, train_sizes=[5]), tmp_path / "serial",
                         progress=False)
    assert [r["kendall_tau"] for r in ray_rows] == [r["kendall_tau"] for r in serial.rows]
