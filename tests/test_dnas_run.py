"""The ``dnas`` run kind: run directory, records, report, kill -9 and resume, bad inputs,
the cell measures, and the derived cell used as any other genotype."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from evonas.cli import main
from evonas.dnas import cell_depth, cell_width, describe_cell, load_cell, parameter_free_share
from evonas.dnas._run import top_cells
from evonas.errors import RunDirError
from evonas.spaces import NB201Space

ROOT = Path(__file__).resolve().parents[1]
SPACE = NB201Space()
# digits (8x8, one channel): a search of a few steps takes about a second
TINY = ["dataset.name=digits", "network.channels=2", "batch_size=16", "steps=12", "record_every=4",
        "checkpoint_every=2", "log_every=2", "compute.device=cpu", "compute.num_threads=1",
        "compute.channels_last=false"]


def _records(run: Path, kind: str) -> list[dict]:
    return [r for r in map(json.loads, run.joinpath("log.jsonl").read_text().splitlines()) if r["type"] == kind]


def _config(folder: Path) -> str:
    path = folder / "tiny-dnas.yaml"
    path.write_text("seed: 0\n")
    return str(path)


def _train(run: Path, *extra: str) -> int:
    return main(["dnas", "train", "--config", _config(run.parent), "--run-dir", str(run), "--no-progress", *TINY, *extra])


# ---------------------------------------------------------------------------- measures
def test_cell_measures_by_hand() -> None:
    # edges (0,1) (0,2) (1,2) (0,3) (1,3) (2,3); ops none skip 1x1 3x3 pool
    chain = SPACE.validate("|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|none~0|none~1|nor_conv_3x3~2|")
    assert (cell_depth(chain), cell_width(chain)) == (3, 1)
    assert parameter_free_share(chain) == pytest.approx(0.5)
    wide = SPACE.validate("|skip_connect~0|+|avg_pool_3x3~0|none~1|+|nor_conv_1x1~0|none~1|none~2|")
    assert (cell_depth(wide), cell_width(wide)) == (1, 3)
    assert parameter_free_share(wide) == pytest.approx(5 / 6)
    cut = SPACE.validate("|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|")
    assert (cell_depth(cut), cell_width(cut)) == (0, 1)
    top = SPACE.validate("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|")
    assert (cell_depth(top), cell_width(top)) == (3, 3)
    assert describe_cell(top, None)["cell"] == SPACE.format(top)


def test_table_accuracy_of_the_derived_cell(nb201_table) -> None:
    arch = SPACE.validate("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|")
    described = describe_cell(arch, nb201_table)
    assert described["cifar10_test_acc"] == pytest.approx(94.3733, abs=1e-3)
    assert described["cifar10-valid_valid_acc"] == pytest.approx(91.6067, abs=1e-3)
    # the table's best cell by 200-epoch validation accuracy is that one (index 6111)
    assert top_cells(nb201_table, k=1) == {"k": 1, "depth": 3.0, "width": 3.0, "param_free": pytest.approx(1 / 6)}


# --------------------------------------------------------------------------------- runs
def test_run_directory_records_and_report(tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    assert _train(run) == 0
    out = capsys.readouterr().out
    summary = json.loads((run / "result.json").read_text())
    assert summary["steps"] == 12 and summary["method"] == "darts1" and summary["selection"] == "magnitude"
    assert SPACE.validate(summary["cell"]) == tuple(summary["arch"])
    assert summary["cell"] in out
    epochs = _records(run, "epoch")
    assert [r["step"] for r in epochs] == [0, 4, 8, 12]
    for r in epochs:  # softmax(alpha) rows sum to one; the recorded cell is their argmax
        assert all(abs(sum(row) - 1) < 1e-5 for row in r["alpha"])
        assert r["arch"] == [max(range(5), key=row.__getitem__) for row in r["alpha"]]
        assert "cifar10_test_acc" not in r  # digits: no NAS-Bench-201 ground truth
    assert epochs[-1]["arch"] == summary["arch"] == summary["magnitude_cell"]["arch"]
    assert len(_records(run, "step")) == 6
    assert main(["report", str(run)]) == 0
    report = (run / "report.md").read_text()
    assert "## The derived cell per epoch" in report and summary["cell"] in report
    for png in ("alpha.png", "ground_truth.png"):
        assert (run / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert load_cell(run) == tuple(summary["arch"])


def test_cifar10_run_looks_every_cell_up_in_the_table(tmp_path: Path, shared_data: Path, nb201_table) -> None:
    run = tmp_path / "cifar"
    cifar = shared_data / "images" / "cifar10-jpg-small.tar.gz"
    code = main(["dnas", "train", "--config", str(ROOT / "configs" / "dnas-darts-cifar10.yaml"), "--run-dir", str(run),
                 "--no-progress", f"dataset.root={cifar}", "dataset.max_train=256", "network.channels=2",
                 "batch_size=32", "steps=4", "record_every=2", "compute.num_threads=1", "selection.name=perturbation",
                 "selection.params.tune_steps=1", "selection.params.val_batches=1",
                 f"table={nb201_table.path}"])
    assert code == 0
    summary = json.loads((run / "result.json").read_text())
    for r in _records(run, "epoch"):
        assert r["cifar10_test_acc"] == pytest.approx(nb201_table.query(tuple(r["arch"]), "cifar10_test_acc"))
    assert summary["cifar10_test_acc"] == pytest.approx(nb201_table.query(tuple(summary["arch"]), "cifar10_test_acc"))
    assert summary["magnitude_cell"]["arch"] == _records(run, "epoch")[-1]["arch"]
    assert summary["table_top"]["k"] == 20 and 0 < summary["table_top"]["depth"] <= 3
    assert main(["report", str(run)]) == 0
    assert "against the table's top 20" in (run / "report.md").read_text()


def test_same_seed_same_run_and_another_seed_differs(tmp_path: Path) -> None:
    assert _train(tmp_path / "a") == 0 and _train(tmp_path / "b") == 0 and _train(tmp_path / "c", "seed=1") == 0
    alpha = {k: _records(tmp_path / k, "epoch")[-1]["alpha"] for k in "abc"}
    assert alpha["a"] == alpha["b"]
    assert alpha["a"] != alpha["c"]


def test_kill_9_then_resume_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    steps = ["steps=40", "record_every=8", "checkpoint_every=4"]
    whole = tmp_path / "whole"
    assert _train(whole, *steps) == 0
    killed = tmp_path / "killed"
    cmd = [sys.executable, "-m", "evonas", "dnas", "train", "--config", _config(tmp_path), "--run-dir", str(killed),
           "--no-progress", *TINY, *steps]
    proc = subprocess.Popen(cmd, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            log = killed / "log.jsonl"
            if log.is_file() and log.read_bytes().count(b'"type":"epoch"') >= 3:
                break
            time.sleep(0.01)
        assert proc.poll() is None, "the search ended before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert not (killed / "result.json").exists()
    assert main(["dnas", "train", "--resume", str(killed), "--no-progress"]) == 0
    assert len(_records(killed, "resume")) == 1
    from evonas.dnas._run import read_records
    from evonas.runs import RunDir

    def history(path: Path) -> list[tuple]:
        recs = read_records(RunDir.open(path))
        return [(r["step"], r["alpha"], r["arch"]) for r in recs if r["type"] == "epoch"]

    assert history(killed) == history(whole)
    a, b = (json.loads((p / "result.json").read_text()) for p in (whole, killed))
    assert a["arch"] == b["arch"]
    # a finished run resumes to the same summary without training again
    assert main(["dnas", "train", "--resume", str(killed), "--no-progress"]) == 0


@pytest.mark.parametrize(
    ("override", "quoted"),
    [
        ("method.name=gdas", "'gdas'"),
        ("selection.name=entropy", "'entropy'"),
        ("optim.lr=0", "0"),
        ("arch_optim.lr=-1", "-1"),
        ("train_fraction=1.5", "1.5"),
        ("train_fraction=0", "0"),
        ("record_every=0", "0"),
        ("method.params.radius=2", "2"),
    ],
)
def test_bad_inputs_exit_2_with_one_line_and_write_nothing(tmp_path: Path, capsys, override: str, quoted: str) -> None:
    run = tmp_path / "bad"
    extra = ["method.name=nadarts"] if override.startswith("method.params") else []
    assert _train(run, *extra, override) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("evonas: error:") and quoted in err
    assert not run.exists()


def test_load_cell_refuses_an_unfinished_or_foreign_run(tmp_path: Path) -> None:
    with pytest.raises(RunDirError):
        load_cell(tmp_path / "missing")
    run = tmp_path / "run"
    assert _train(run) == 0
    (run / "result.json").unlink()
    with pytest.raises(RunDirError, match="has not finished"):
        load_cell(run)


# ---------------------------------------------------- the derived cell as any genotype
@pytest.fixture(scope="module")
def derived(tmp_path_factory) -> tuple:
    run = tmp_path_factory.mktemp("dnas") / "run"
    assert _train(run) == 0
    return load_cell(run)


def test_derived_cell_seeds_an_evolution(tmp_path: Path, derived: tuple, nb201_path: Path) -> None:
    cell = SPACE.format(derived)
    common = ["--no-progress", "evaluator.name=tabular", f"evaluator.params.tables=[{{name: nb201, params: {{path: {nb201_path}}}}}]",
              "evaluator.params.metric=cifar10-valid_valid_acc_12ep", "budget.evaluations=20"]
    cfg = ROOT / "configs" / "nb201-rea.yaml"
    assert main(["search", "--config", str(cfg), "--run-dir", str(tmp_path / "seeded"), *common, f"initial=['{cell}']"]) == 0
    assert main(["search", "--config", str(cfg), "--run-dir", str(tmp_path / "plain"), *common]) == 0
    seeded = [r for r in map(json.loads, (tmp_path / "seeded" / "log.jsonl").read_text().splitlines()) if r["type"] == "candidate"]
    plain = [r for r in map(json.loads, (tmp_path / "plain" / "log.jsonl").read_text().splitlines()) if r["type"] == "candidate"]
    assert tuple(seeded[0]["arch"]) == derived
    # the strategy was still asked: the rest of the initial population is the plain run's
    assert [r["arch"] for r in seeded[1:10]] == [r["arch"] for r in plain[1:10]]
    assert main(["search", "--config", str(cfg), "--run-dir", str(tmp_path / "bad"), *common, "initial=['|bogus~0|']"]) == 2
    assert not (tmp_path / "bad").exists()


def test_derived_cell_trains_and_joins_an_ensemble(derived: tuple) -> None:
    from ensembles._candidates import parse_archs
    from evonas.config import from_dict
    from evonas.evaluation import EVALUATORS

    evaluator = EVALUATORS.get("training")
    config = from_dict(evaluator.Config, {"dataset": {"name": "digits"}, "network": {"params": {"channels": 4}},
                                          "train": {"epochs": 1, "batch_size": 64, "compute": {"device": "cpu"}}})
    result = evaluator(config, space=SPACE).evaluate(derived, seed=0)
    assert 0.0 <= result.metrics["val_acc"] <= 100.0 and result.cost > 0
    assert parse_archs([SPACE.format(derived)], SPACE)[0].arch == derived
