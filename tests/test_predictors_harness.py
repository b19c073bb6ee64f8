"""The predictor harness: config validation, a small real run, its files, Ray."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from _predictor_fixtures import one_torch_thread  # noqa: F401
from evonas.config import from_dict, load_config
from evonas.errors import ConfigError
from predictors import HarnessConfig, ZeroCostPredictor, kendall_tau, resolve_paths, run_harness
from predictors._harness import _TrialEvaluator

ROOT = Path(__file__).resolve().parents[1]


def _small(shared_data: Path, **changes) -> HarnessConfig:  # type: ignore[no-untyped-def]
    raw = {
        "table": str(shared_data / "nb201" / "nb201.csv.gz"),
        "predictors": ["linear", "rf", "zc_params"],
        "params": {"rf": {"n_estimators": 10}},
        "train_sizes": [5, 10],
        "test_size": 30,
        "trials": 2,
        "train_pool": 40,
        "seed": 3,
        "zero_cost": {"data_root": str(shared_data / "images" / "cifar10-jpg-small.tar.gz"), "batch_size": 8},
    }
    raw.update(changes)
    return from_dict(HarnessConfig, raw)


def test_shipped_config_loads() -> None:
    config = resolve_paths(load_config(HarnessConfig, ROOT / "configs" / "predictors-nb201.yaml"), ROOT)
    assert config.metric == "cifar10-valid_valid_acc"
    assert config.train_sizes == (10, 20, 50, 100, 200, 400)
    assert config.test_size == 200 and config.trials == 10
    assert config.table == str((ROOT.parent / "shared" / "data" / "nb201" / "nb201.csv.gz").resolve())
    assert Path(config.zero_cost.data_root).name == "cifar10-jpg-small.tar.gz"
    assert "gae" in config.predictor_names and "zc_naswot" in config.predictor_names
    overridden = load_config(HarnessConfig, ROOT / "configs" / "predictors-nb201.yaml", ["trials=3", "predictors=[rf]"])
    assert overridden.trials == 3 and overridden.predictor_names == ("rf",)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"trails": 3}, "unknown key 'trails'; valid keys: .*trials"),
        ({"predictors": ["xgb"]}, "unknown predictor 'xgb'; valid choices: .*gbdt"),
        ({"predictors": ["rf"], "params": {"gin": {"epochs": 3}}}, "params has an entry for 'gin', which is not evaluated"),
        ({"predictors": ["rf"], "params": {"rf": {"trees": 3}}}, r"params.rf: unknown hyper-parameter\(s\) 'trees'"),
        ({"train_sizes": [10, 2000]}, "'train_pool'; expected an integer >= 2000"),
        ({"test_size": 1}, "'test_size'; expected an integer >= 2"),
        ({"top_fraction": 1.5}, "top_fraction"),
        ({"executor": "dask"}, "invalid value 'dask' for 'executor'; valid values: 'serial', 'ray'"),
        ({"zero_cost": {"batch_size": 1}}, "zero_cost.batch_size"),
    ],
)
def test_bad_config_rejected(raw: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        from_dict(HarnessConfig, raw)


def test_training_sets_are_paired_and_disjoint_from_the_test_set() -> None:
    ev = _TrialEvaluator(
        names=("linear", "rf"), params={}, targets=np.arange(15625.0), test=np.arange(10), pool=np.arange(10, 60),
        sizes=(5, 20), seed=1, top_fraction=0.1, greater_is_better=True, threads=1,
    )
    a, b = ev.training_set(1, 0), ev.training_set(1, 0)
    np.testing.assert_array_equal(a, b)  # the same draw whichever predictor asks
    assert len(set(a.tolist())) == 20 and set(a.tolist()) <= set(range(10, 60))
    assert not np.array_equal(ev.training_set(1, 1), a)  # another trial, another draw


def test_small_run_writes_consistent_results(shared_data, tmp_path) -> None:  # type: ignore[no-untyped-def]
    config = _small(shared_data)
    result = run_harness(config, tmp_path, progress=False)
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

    table = NB201Table.load(config.table)
    y = np.array([table.query(a, config.metric) for a in result.test_archs])
    scorer = config.zero_cost.scorer(tmp_path)
    pred = ZeroCostPredictor("params", scorer=scorer).fit([], []).predict(result.test_archs)
    (zc_row,) = [r for r in result.rows if r["predictor"] == "zc_params"]
    assert zc_row["kendall_tau"] == pytest.approx(kendall_tau(y, pred), abs=1e-12)
    assert result.zero_cost[0]["proxy"] == "params" and result.zero_cost[0]["n_archs"] == 70

    # summary = mean over trials
    for entry in result.summary:
        taus = [r["kendall_tau"] for r in result.rows if (r["predictor"], r["train_size"]) == (entry["predictor"], entry["train_size"])]
        assert entry["kendall_tau_mean"] == pytest.approx(np.mean(taus))
        assert entry["trials"] == len(taus)

    with open(result.files["csv"]) as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 9 and set(rows[0]) >= {"predictor", "train_size", "trial", "kendall_tau", "spearman_rho",
                                               "pearson_r", "precision_at_top", "fit_time_s", "query_time_s"}
    md = result.files["markdown"].read_text()
    assert md == result.markdown
    assert "## Kendall τ" in md and "| linear |" in md and "| zc_params (no training) |" in md
    assert "## Zero-cost proxies over all 70 scored architectures" in md
    assert result.files["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "zc-cache").is_dir()

    # an executor passed in is used and left open; the results do not depend on it
    from evonas.executors._serial import SerialExecutor

    executor = SerialExecutor()
    again = run_harness(config, tmp_path / "again", executor=executor, progress=False)
    assert [r["kendall_tau"] for r in again.rows] == [r["kendall_tau"] for r in result.rows]


def test_failed_trials_are_reported(shared_data, tmp_path) -> None:  # type: ignore[no-untyped-def]
    config = _small(shared_data, predictors=["gp"], params={"gp": {"kernel": "cosine"}}, train_sizes=[5], trials=1)
    with pytest.warns(RuntimeWarning, match="1 of 1 predictor trials failed"):
        result = run_harness(config, tmp_path, progress=False)
    assert result.rows[0]["failed"] and "'kernel' parameter of GaussianProcessPredictor must be one of" in result.rows[0]["error"]
    assert "## Failed trials" in result.markdown


@pytest.mark.ray
@pytest.mark.slow
def test_ray_executor_gives_the_serial_results(shared_data, tmp_path) -> None:  # type: ignore[no-untyped-def]
    config = _small(shared_data, predictors=["linear"], params={}, train_sizes=[5], executor="ray", num_cpus=1)
    ray_rows = run_harness(config, tmp_path / "ray", progress=False).rows
    serial = run_harness(_small(shared_data, predictors=["linear"], params={}, train_sizes=[5]), tmp_path / "serial", progress=False)
    assert [r["kendall_tau"] for r in ray_rows] == [r["kendall_tau"] for r in serial.rows]
