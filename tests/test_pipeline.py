"""The pipeline (``evonas run``) end to end on a tiny config: stages, resume, export, ground truth, bad input."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from evonas.cli import main
from evonas.data import cached_splits
from evonas.runs import RunDir

ROOT = Path(__file__).resolve().parents[1]

TINY = {
    "seed": 3,
    "dataset": {"name": "digits", "val_fraction": 0.25},
    "network": {"name": "nb201", "params": {"channels": 4, "cells_per_stage": 1}},
    "train": {"epochs": 1, "batch_size": 64},
    "supernet": {
        "supernet": {"name": "nb201", "params": {"channels": 4, "cells_per_stage": 1}},
        "sampler": {"name": "novelty", "params": {"k": 2, "num_candidates": 4, "warmup_steps": 10}},
        "train": {"steps": 60, "batch_size": 32},
        "evaluation": {"val_images": 100, "bn_batches": 1},
        "proxy": {"every": 30, "start": 30, "archs_per_round": 12, "min_memory": 10,
                  "predictor": "gae", "predictor_params": {"epochs": 20}},
        "checkpoint_every": 20,
        "log_every": 10,
    },
    "search": {
        "strategy": {"name": "rea", "params": {"population_size": 6, "tournament_size": 2}},
        "budget": {"evaluations": 300},
    },
    "final": {"members": 3},
    "ensemble": {"pruners": [{"name": "prs", "params": {"size": 2}}, {"name": "top_k", "params": {"size": 2}}],
                 "diversity": ["disagreement"]},
    "progress": False,
}


def _write(path: Path, config: dict) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def tiny_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write(tmp_path_factory.mktemp("cfg") / "tiny.yaml", TINY)


@pytest.fixture(scope="module")
def finished(tiny_config: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("pipeline") / "run"
    assert main(["run", "--config", str(tiny_config), "--run-dir", str(run_dir), "--no-progress"]) == 0
    return run_dir


def test_pipeline_stages_are_runs_of_their_kind(finished: Path) -> None:
    for stage, kind in (("supernet", "supernet"), ("search", "search"), ("ensemble", "ensemble")):
        run = RunDir.open(finished / stage, kind=kind)
        assert (run.path / "result.json").is_file()
    meta = yaml.safe_load((finished / "meta.yaml").read_text())
    assert meta["kind"] == "pipeline"
    summary = json.loads((finished / "result.json").read_text())
    # the search scored with the supernet stage's proxy predictor and used the shared seed and space
    search_cfg = yaml.safe_load((finished / "search" / "config.yaml").read_text())
    assert search_cfg["evaluator"]["name"] == "proxy"
    assert search_cfg["evaluator"]["params"]["run_dir"] == str(finished / "supernet")
    assert search_cfg["seed"] == 3 and search_cfg["fitness"]["name"] == "neighbourhood"
    # one dataset spec feeds the supernet and the final members
    sn_cfg = yaml.safe_load((finished / "supernet" / "config.yaml").read_text())
    ens_cfg = yaml.safe_load((finished / "ensemble" / "config.yaml").read_text())
    assert sn_cfg["dataset"] == ens_cfg["dataset"]
    assert sn_cfg["sampler"]["name"] == "novelty"
    members = summary["stages"]["final"]["members"]
    assert 1 <= len(members) <= 3
    # the final candidates are distinct functions, best first, taken from the search
    assert len({m["arch"] for m in members}) == len(members)
    assert summary["pick"]["arch"] == members[0]["arch"]
    best = json.loads((finished / "search" / "result.json").read_text())["best"]
    assert summary["pick"]["fitness"] == best["metrics"]["fitness/proxy_val_loss"]  # in the metric's own sign
    result = summary["result"]
    assert set(result["members"]) <= {m["name"] for m in members}
    assert 0 < result["test_acc"] <= 100
    assert (finished / "report.md").is_file() and (finished / "search_progress.png").is_file()


def test_load_ensemble_reproduces_the_reported_test_accuracy(finished: Path) -> None:
    import evonas
    from evonas.config import from_dict
    from evonas.pipeline import PipelineConfig

    summary = json.loads((finished / "result.json").read_text())
    model = evonas.load_ensemble(finished)
    assert not model.training
    config = from_dict(PipelineConfig, yaml.safe_load((finished / "config.yaml").read_text()))
    test = cached_splits(config.dataset).test
    xs = torch.stack([test[i][0] for i in range(len(test))])
    ys = np.array([int(test[i][1]) for i in range(len(test))])
    with torch.no_grad():
        probs = model(xs).numpy()
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    accuracy = 100.0 * float((probs.argmax(axis=1) == ys).mean())
    assert accuracy == pytest.approx(summary["result"]["test_acc"], abs=1e-6)


def test_report_and_predict_work_on_the_result(finished: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from PIL import Image
    from sklearn.datasets import load_digits

    assert main(["report", str(finished)]) == 0
    text = capsys.readouterr().out
    assert "## 2. Search" in text and "improvements after the initial population" in text
    images = load_digits().images[:5]
    for i, image in enumerate(images):
        Image.fromarray(np.round(image * 255 / 16).astype(np.uint8), mode="L").save(tmp_path / f"d{i}.png")
    out = tmp_path / "pred.csv"
    assert main(["predict", str(finished), str(tmp_path), "--output", str(out)]) == 0
    rows = out.read_text().strip().splitlines()
    assert len(rows) == 6 and rows[0].startswith("path,")


def test_resume_of_a_finished_pipeline_changes_nothing(finished: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = _snapshot(finished)
    assert main(["run", "--resume", str(finished), "--no-progress"]) == 0
    after = _snapshot(finished)
    assert {k for k in before if not k.endswith(".lock")} == {k for k in after if not k.endswith(".lock")}
    assert before["result.json"] == after["result.json"]


def test_interrupted_stages_resume_without_retraining_finished_members(
    finished: Path, tmp_path: Path
) -> None:
    """A copy of the finished run, cut back to the middle of the ensemble stage (one member
    unsaved, no result) and of the pipeline (no export): resuming retrains only that member
    and ends with the same result."""
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    summary = json.loads((finished / "result.json").read_text())
    for path in (run / "result.json", run / "ensemble" / "result.json"):
        path.unlink()
    shutil.rmtree(run / "export")
    members = sorted((run / "ensemble" / "pool" / "members").iterdir())
    shutil.rmtree(members[-1])
    assert main(["run", "--resume", str(run), "--no-progress"]) == 0
    resumed = json.loads((run / "result.json").read_text())
    ens = json.loads((run / "ensemble" / "result.json").read_text())
    assert ens["trained"] == [members[-1].name] and len(ens["reused"]) == len(members) - 1
    assert resumed["result"] == summary["result"]
    assert resumed["stages"]["final"] == summary["stages"]["final"]


def _kill_when(cmd: list[str], ready: Callable[[], bool]) -> None:
    """Start ``cmd`` and ``kill -9`` it as soon as ``ready()`` holds (it must still be running)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline and proc.poll() is None and not ready():
            time.sleep(0.02)
        assert proc.poll() is None, "the pipeline ended before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()


def _lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.is_file() else 0


def test_kill_in_every_stage_then_resume_matches_an_uninterrupted_run(
    finished: Path, tiny_config: Path, tmp_path: Path
) -> None:
    """``kill -9`` in the supernet stage, again in the search, again while members train:
    each ``--resume`` continues, and the last ends with the uninterrupted run's results."""
    run = tmp_path / "killed"
    start = [sys.executable, "-m", "evonas", "run", "--config", str(tiny_config), "--run-dir", str(run), "--no-progress"]
    resume = [sys.executable, "-m", "evonas", "run", "--resume", str(run), "--no-progress"]
    _kill_when(start, lambda: _lines(run / "supernet" / "log.jsonl") > 3)
    assert not (run / "supernet" / "result.json").exists()
    _kill_when(resume, lambda: _lines(run / "search" / "log.jsonl") > 40)
    assert not (run / "search" / "result.json").exists()
    members = run / "ensemble" / "pool" / "members"
    _kill_when(resume, lambda: members.is_dir() and any(not p.name.startswith(".") for p in members.iterdir()))
    assert not (run / "ensemble" / "result.json").exists()
    saved = sorted(p.name for p in members.iterdir() if not p.name.startswith("."))
    assert main(["run", "--resume", str(run), "--no-progress"]) == 0
    for stage in ("supernet", "search", "ensemble"):
        a, b = (_untimed(json.loads((r / stage / "result.json").read_text())) for r in (finished, run))
        if stage == "ensemble":
            assert set(saved) <= set(b.pop("reused")) and not set(saved) & set(b.pop("trained"))
            a.pop("reused"), a.pop("trained")
        assert a == b, stage
    a = json.loads((finished / "result.json").read_text())
    b = json.loads((run / "result.json").read_text())
    assert a["result"] == b["result"] and a["pick"] == b["pick"] and a["stages"]["final"] == b["stages"]["final"]


def _untimed(summary: dict) -> dict:
    """A stage summary without its wall-clock figures."""
    timed = ("seconds", "throughput", "overhead")
    return {k: v for k, v in summary.items() if not any(t in k for t in timed)}


def _fails(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("evonas: error:")
    return err


def test_bad_pipeline_input_is_one_line_and_writes_nothing(
    tiny_config: Path, finished: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _snapshot(finished)
    target = tmp_path / "new"
    base = ["run", "--config", str(tiny_config), "--run-dir", str(target), "--no-progress"]
    assert "supernet.foo" in _fails(base + ["supernet.foo=1"], capsys)
    err = _fails(base + ["supernet.dataset.name=digits", "supernet.dataset.val_fraction=0.5"], capsys)
    assert "contradicts the pipeline's dataset" in err
    assert "search.fitness objective 'val_acc'" in _fails(base + ["search.fitness.objectives=[{metric: val_acc}]"], capsys)
    assert "final.rescore" in _fails(base + ["final.rescore=2"], capsys)
    assert "ensemble.export" in _fails(base + ["ensemble.export=pie"], capsys)
    assert not target.exists()
    # a run directory of another kind, and a stage given as a pipeline
    assert "not a 'pipeline' run" in _fails(["run", "--resume", str(finished / "search")], capsys)
    assert _snapshot(finished) == before


def test_a_stage_started_by_another_config_is_refused(finished: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    (run / "result.json").unlink()
    config = yaml.safe_load((run / "search" / "config.yaml").read_text())
    config["budget"]["evaluations"] = 5
    (run / "search" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    err = _fails(["run", "--resume", str(run), "--no-progress"], capsys)
    assert "was started with another config" in err


def test_ground_truth_passes_through_every_stage(nb201_path: Path, tmp_path: Path) -> None:
    """With the NAS-Bench-201 table configured, the search's pick and every final member
    carry the table's accuracy of their cell (the fitness never sees it); the final
    members are the best of the re-scored candidates by inherited-weight loss."""
    from evonas.spaces import build_space
    from evonas.tabular import build_tables
    from evonas.config import ComponentConfig

    config = dict(TINY, tables=[{"name": "nb201", "params": {"path": str(nb201_path)}}], report=["cifar10_test_acc"])
    config["search"] = dict(TINY["search"], budget={"evaluations": 100})
    config["final"] = {"members": 2, "rescore": 3}
    run = tmp_path / "gt"
    assert main(["run", "--config", str(_write(tmp_path / "gt.yaml", config)), "--run-dir", str(run), "--no-progress"]) == 0
    summary = json.loads((run / "result.json").read_text())
    space = build_space("nb201")
    table = build_tables((ComponentConfig("nb201", {"path": str(nb201_path)}),), space)
    pick = summary["pick"]
    assert pick["truth"]["cifar10_test_acc"] == pytest.approx(table.query(space.parse(pick["arch"]), "cifar10_test_acc"))
    rescored = summary["stages"]["final"]["rescored"]
    assert len(rescored) == 3 and all(isinstance(r["val_loss"], float) for r in rescored)
    best_two = [r["arch"] for r in sorted(rescored, key=lambda r: r["val_loss"])[:2]]
    assert [m["arch"] for m in summary["stages"]["final"]["members"]] == best_two
    for member in summary["stages"]["final"]["members"]:
        expected = table.query(space.parse(member["arch"]), "cifar10_test_acc")
        assert member["truth"]["cifar10_test_acc"] == pytest.approx(expected)
    search_summary = json.loads((run / "search" / "result.json").read_text())
    assert "cifar10_test_acc" in search_summary["best"]["headline"]
    sn_cfg = yaml.safe_load((run / "supernet" / "config.yaml").read_text())
    assert sn_cfg["table"] == str(nb201_path)
    # the report draws the supernet's ranking quality per proxy round against the table
    assert (run / "proxy_quality.png").is_file()
    assert "Proxy rounds against the ground truth (cifar10_test_acc)" in (run / "report.md").read_text()
