"""Run-directory files as data: diverged training is a failure on every executor,
``result.json`` and the log are strict JSON, files follow the umask, and no writer of the
ensemble build or the predictor harness goes through a link planted in a run directory."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
import numpy as np
import pytest

from evonas._files import atomic_write_bytes, file_mode, make_temp_dir, umask
from evonas.errors import UntrustedFileError
from evonas.runs import RunDir


def _strict_json(text: str):
    """``json.loads`` that refuses NaN and infinities (not JSON)."""

    def refuse(constant: str):
        raise ValueError(f"non-JSON constant {constant}")

    return json.loads(text, parse_constant=refuse)


# ------------------------------------------------------------------ diverged training
@pytest.mark.parametrize("executor", ["serial", pytest.param("ray", marks=pytest.mark.ray)])
def test_a_search_whose_trainings_all_diverge_fails_with_strict_json(tmp_path, capsys, executor):
    """``lr=1e6``: every training diverges; each is a failed evaluation, the summary counts
    them, no "best architecture" is named, the command exits 1 with the first error, and
    ``result.json`` and every log record are valid JSON."""
    from evonas.cli import main

    run = tmp_path / "run"
    code = main([
        "search", "--config", "configs/default.yaml", "--run-dir", str(run), "--no-progress",
        "evaluator.params.dataset.max_train=128", "evaluator.params.dataset.max_val=32",
        "evaluator.params.dataset.max_test=16", "evaluator.params.train.epochs=2",
        "evaluator.params.train.optim.lr=1e6", "evaluator.params.network.params.channels=4",
        "budget.evaluations=3", "strategy.params.population_size=2", "strategy.params.tournament_size=2",
        f"executor={{name: {executor}, params: {{num_cpus: 1}}}}" if executor == "ray" else "executor={name: serial}",
    ])
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 1
    assert last.startswith("evonas: error:") and "every one of the 3 candidates failed" in last
    assert "training diverged" in last
    summary = _strict_json((run / "result.json").read_text())
    assert summary["failed"] == summary["failed_evaluations"] == summary["used_evaluations"] == 3
    assert "training diverged" in summary["first_error"]
    assert summary.get("best") is None
    records = [_strict_json(line) for line in (run / "log.jsonl").read_text().splitlines()]
    evals = [r for r in records if r["type"] == "eval"]
    assert len(evals) == 3 and all(r["evaluation"]["failed"] for r in evals)


def test_non_finite_values_are_written_as_strings_never_as_bare_nan(tmp_path):
    run = RunDir.create(tmp_path / "r", {}, 0, "search")
    run.append({"type": "note", "x": float("nan"), "y": [float("inf"), np.float32(-np.inf)]})
    run.write_json("result.json", {"loss": float("nan"), "nested": {"best": float("inf")}})
    run.close()
    assert _strict_json((tmp_path / "r" / "result.json").read_text()) == {"loss": "nan", "nested": {"best": "inf"}}
    record = _strict_json((tmp_path / "r" / "log.jsonl").read_text().splitlines()[0])
    assert record["x"] == "nan" and record["y"] == ["inf", "-inf"]


# ----------------------------------------------------------------------- permissions
@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_run_files_and_folders_follow_the_umask(tmp_path, mask):
    old = os.umask(mask)
    try:
        assert umask() == mask and file_mode() == 0o666 & ~mask
        run = RunDir.create(tmp_path / "r", {"a": 1}, 0, "search")
        run.append({"type": "note"})
        run.write_json("result.json", {"ok": True})
        run.save_checkpoint({"state": 1})
        folder = run.subdir("pool/members")
        run.close()
        temp = make_temp_dir(tmp_path, prefix=".m.")
    finally:
        os.umask(old)
    for name in ("config.yaml", "meta.yaml", "log.jsonl", "result.json", "checkpoint.pkl"):
        assert stat.S_IMODE(os.stat(tmp_path / "r" / name).st_mode) == 0o666 & ~mask, name
    for d in (folder, temp):
        assert stat.S_IMODE(os.stat(d).st_mode) == 0o777 & ~mask, d


def test_atomic_writes_replace_a_link_and_never_touch_its_target(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    link = tmp_path / "link.txt"
    link.symlink_to(victim)
    atomic_write_bytes(link, b"new")
    assert victim.read_text() == "precious"
    assert not link.is_symlink() and link.read_bytes() == b"new"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left


# -------------------------------------------------------------- links in run folders
def test_subdir_refuses_links_and_files_on_its_way(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    run = RunDir.create(tmp_path / "r", {}, 0, "ensemble")
    (tmp_path / "r" / "pool").symlink_to(outside)
    with pytest.raises(UntrustedFileError, match="is a symbolic link"):
        run.subdir("pool/members")
    (tmp_path / "r" / "pool").unlink()
    (tmp_path / "r" / "pool").write_text("")
    with pytest.raises(UntrustedFileError, match="is not a folder"):
        run.subdir("pool/members")
    run.close()
    assert list(outside.iterdir()) == []


def test_ensemble_and_harness_outputs_replace_planted_links(tmp_path):
    """The report writers of the ensemble build and the predictor harness (CSV, NPZ, PNG,
    member YAML) replace a link at their target instead of writing through it."""
    from ensembles._members import CandidatePool, Member
    from predictors._report import _write_csv

    victim = tmp_path / "victim"
    victim.write_text("precious")
    out = tmp_path / "out"
    out.mkdir()
    for name in ("results.csv", "pool.yaml", "labels.npz"):
        (out / name).symlink_to(victim)
    _write_csv(out / "results.csv", [{"a": 1, "b": 2.5}])
    rng = np.random.default_rng(0)
    member = Member(name="m0", val_logits=rng.normal(size=(6, 3)), test_logits=rng.normal(size=(4, 3)))
    pool = CandidatePool([member], val_labels=np.array([0, 1, 2, 0, 1, 2]), test_labels=np.array([0, 1, 2, 0]))
    (out / "members").mkdir()
    (out / "members" / "m0").mkdir()
    for name in ("member.yaml", "logits.npz"):
        (out / "members" / "m0" / name).symlink_to(victim)
    pool.save(out, overwrite=True)
    assert victim.read_text() == "precious"
    assert (out / "results.csv").read_text().splitlines() == ["a,b", "1,2.5"]
    again = CandidatePool.load(out)
    assert again.names == ["m0"] and np.array_equal(again.members[0].val_logits, member.val_logits)
    links = [p for p in out.rglob("*") if p.is_symlink()]
    assert links == []


def test_a_pipeline_stage_folder_that_is_a_link_is_refused(tmp_path):
    from evonas.runs import run_stage

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "pipe").mkdir()
    (tmp_path / "pipe" / "search").symlink_to(elsewhere)
    with pytest.raises(UntrustedFileError, match="is a symbolic link"):
        run_stage(tmp_path / "pipe" / "search", "search", None)
    assert list(elsewhere.iterdir()) == []


def test_a_start_killed_during_creation_leaves_the_path_as_it_was(tmp_path, monkeypatch):
    """Creation fills a hidden folder and renames it into place: an interruption before the
    rename leaves nothing at the path, and the same path can then be used."""
    import evonas.runs._rundir as rundir

    original = rundir.atomic_write_bytes

    def killed(path, data, **kw):
        if Path(path).name == "meta.yaml":
            raise KeyboardInterrupt  # stands in for the kill
        original(path, data, **kw)

    monkeypatch.setattr(rundir, "atomic_write_bytes", killed)
    (tmp_path / "empty").mkdir()
    for name in ("fresh", "empty"):
        with pytest.raises(KeyboardInterrupt):
            RunDir.create(tmp_path / name, {"a": 1}, 0, "search")
    assert not (tmp_path / "fresh").exists() and list((tmp_path / "empty").iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty"]  # no temporary folder left
    monkeypatch.setattr(rundir, "atomic_write_bytes", original)
    for name in ("fresh", "empty"):
        RunDir.create(tmp_path / name, {"a": 1}, 0, "search").close()
        assert RunDir.open(tmp_path / name, kind="search").config == {"a": 1}
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    with pytest.raises(rundir.RunDirError, match="already exists and is not empty"):
        RunDir.create(busy, {}, 0, "search")
    assert [p.name for p in busy.iterdir()] == ["notes.txt"]
