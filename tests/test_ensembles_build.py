"""Building ensembles: the ``ensemble`` run kind, resuming, evaluating, reporting.

Builds use scikit-learn's ``digits`` with tiny NAS-Bench-201 networks (C=4, N=1) and the
serial executor; one build uses the ``chain`` space and decoder of the test plugin
(``tests/plugins/chain_nas``), one the real Fashion-MNIST files of Debian's
``dataset-fashion-mnist``, and one runs the members as Ray tasks.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml

import ensembles as E
from evonas.cli import main as evonas_main
from evonas.config import ComponentConfig, from_dict
from evonas.data import DatasetConfig, ImageTensorDataset, cached_splits
from evonas.errors import (
    ArchError,
    CapabilityError,
    ConfigError,
    DataError,
    EvonasError,
    RunDirError,
    RunFailedError,
    UnknownChoiceError,
)
from evonas.runs import RunDir, RunResult, report_run
from evonas.search import CandidateRecord, load_history, start_search
from evonas.search._loop import candidate_to_json
from evonas.spaces import build_space, get_space
from evonas.training import ComputeConfig, OptimConfig, TrainConfig

ROOT = Path(__file__).resolve().parents[1]
CHAIN_PLUGIN = ROOT / "tests" / "plugins" / "chain_nas"
SPACE = get_space("nb201")
ARCHS = [
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|",
    "|nor_conv_1x1~0|+|skip_connect~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~1|avg_pool_3x3~2|",
    "|avg_pool_3x3~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|skip_connect~0|nor_conv_3x3~1|avg_pool_3x3~2|",
    "|nor_conv_3x3~0|+|skip_connect~0|none~1|+|nor_conv_1x1~0|nor_conv_3x3~1|skip_connect~2|",
]
PRUNERS = [
    {"name": "prs", "params": {"size": 2}},
    {"name": "pap"},
    {"name": "pie", "params": {"size": 2, "lam": 0.5}},
    {"name": "top_k", "params": {"size": 2}},
    {"name": "caruana", "params": {"max_fraction": 0.5}},
]
BASELINES = ["best single (val)", "best single (test oracle)", "full ensemble", "full (fitted weights)"]
DIVERSITY = ["disagreement", "q_statistic", "vi"]


def tiny_config(**changes: Any) -> dict[str, Any]:
    """A build of four tiny members on a digits subset."""
    raw: dict[str, Any] = {
        "seed": 3,
        "candidates": {"archs": list(ARCHS)},
        "dataset": {"name": "digits", "val_fraction": 0.25, "max_train": 600, "seed": 1},
        "train": {"epochs": 3, "batch_size": 32, "optim": {"lr": 0.1}, "compute": {"device": "cpu"}},
        "network": {"name": "nb201", "params": {"channels": 4, "cells_per_stage": 1}},
        "pruners": PRUNERS,
        "diversity": DIVERSITY,
        "progress": False,
    }
    raw.update(changes)
    return raw


def write_config(path: Path, raw: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(raw))
    return path


def config_of(raw: dict[str, Any]) -> E.EnsembleConfig:
    return from_dict(E.EnsembleConfig, raw)


def build(tmp_path: Path, raw: dict[str, Any], name: str = "run", *overrides: str) -> RunResult:
    cfg = write_config(tmp_path / f"{name}.yaml", raw)
    return E.build_ensemble(cfg, overrides, run_dir=tmp_path / name, progress=False)


def tree_digest(path: Path, skip: tuple[str, ...] = (".lock",)) -> str:
    h = hashlib.sha256()
    for p in sorted(path.rglob("*")):
        if p.is_file() and p.name not in skip:
            h.update(str(p.relative_to(path)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def log_types(run_dir: Path) -> list[str]:
    return [r["type"] for r in RunDir(run_dir).read_log()]


_TRAIN_MEMBER = E.MemberTrainer.run


def patch_run(monkeypatch: pytest.MonkeyPatch, wrapper: Callable[..., Any]) -> list[tuple[int, ...]]:
    """Replace ``MemberTrainer.run`` by ``wrapper(original, self, arch, seed, calls)``; return the calls list."""
    calls: list[tuple[int, ...]] = []
    original = _TRAIN_MEMBER  # not E.MemberTrainer.run, which an earlier patch may have replaced

    def run(self: E.MemberTrainer, arch: tuple[int, ...], seed: int) -> E.MemberResult:
        return wrapper(original, self, arch, seed, calls)

    monkeypatch.setattr(E.MemberTrainer, "run", run)
    return calls


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    return build(tmp_path_factory.mktemp("ens"), tiny_config())


@pytest.fixture(scope="module")
def chain_plugin() -> str:
    """The ``chain`` space and decoder of the test plugin, registered in this process."""
    from evonas.plugins import load_plugin

    return load_plugin(str(CHAIN_PLUGIN))


# ====================================================================== end to end
def test_build_writes_a_complete_run_directory(built: RunResult) -> None:
    run, summary = built.run_dir, built.summary
    assert summary["complete"] and summary["trained"] == ["m00", "m01", "m02", "m03"] and summary["reused"] == []
    assert summary["members"] == ["m00", "m01", "m02", "m03"] and summary["failed"] == {}
    for name in ("config.yaml", "meta.yaml", "log.jsonl", "plan.yaml", "result.json", "report.md",
                 "ensembles.csv", "members.csv", "curves.csv", "diversity.npz"):
        assert (run / name).is_file(), name
    for png in ("accuracy_vs_size.png", "diversity.png"):
        assert (run / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
    meta = yaml.safe_load((run / "meta.yaml").read_text())
    assert meta["kind"] == "ensemble" and meta["seed"] == 3 and "torch" in meta["versions"]
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["executor"] == {"name": "serial", "params": {"timeout_s": None}}  # defaults resolved
    assert config["space"] == {"name": "nb201", "params": {}}
    assert config["train"]["optim"]["lr"] == 0.1 and config["train"]["compute"]["device"] == "cpu"
    plan = yaml.safe_load((run / "plan.yaml").read_text())
    assert [c["arch"] for c in plan["candidates"]] == ARCHS
    assert len({c["seed"] for c in plan["candidates"]}) == 4
    assert plan["data"] == {"num_train": 600, "num_val": 360, "num_test": 360, "num_classes": 10, "in_channels": 1}
    for name in summary["trained"]:
        assert sorted(p.name for p in (run / "pool" / "members" / name).iterdir()) == [
            "logits.npz", "member.yaml", "model.pt"
        ]
    assert log_types(run) == ["train"] + ["member"] * 4 + ["evaluated"]
    member_records = [r for r in RunDir(run).read_log() if r["type"] == "member"]
    assert set(member_records[0]["metrics"]) == set(E.METRIC_NAMES) and "params" not in member_records[0]["metrics"]
    # The main table: one row per pruner, then the baselines.
    lines = (run / "ensembles.csv").read_text().splitlines()
    assert lines[0].startswith("label,kind,pruner,num_members,num_params,val_acc,test_acc,test_nll,test_ece")
    assert [line.split(",")[0] for line in lines[1:]] == [p["name"] for p in PRUNERS] + BASELINES
    assert len((run / "curves.csv").read_text().splitlines()) == 1 + 5 * 4  # every pruner at sizes 1..4
    report = (run / "report.md").read_text()
    for fragment in ("## Ensembles", "## SAEP target", "![Accuracy against ensemble size](accuracy_vs_size.png)",
                     "![Pairwise diversity (test split)](diversity.png)", "\\|nor_conv_3x3~0\\|",
                     "decoder `nb201` {'channels': 4, 'cells_per_stage': 1}"):
        assert fragment in report
    # The summary is result.json, and what the terminal shows.
    assert json.loads((run / "result.json").read_text()) == json.loads(json.dumps(summary))
    assert built.text.startswith(f"run directory: {run}\nmembers: 4 (4 trained, 0 reused)")
    assert "full ensemble" in built.text and "SAEP target pie:" in built.text


def test_build_numbers_are_those_of_the_saved_members(built: RunResult) -> None:
    rows = {r["label"]: r for r in built.summary["rows"]}
    pool = E.CandidatePool.load(built.run_dir / "pool")  # members reload without retraining
    assert pool.names == ["m00", "m01", "m02", "m03"]
    full = E.combine_probs(pool.test_probs())
    assert pool.test_labels is not None
    assert rows["full ensemble"]["test_acc"] == pytest.approx(100 * E.accuracy(full, pool.test_labels), abs=1e-12)
    assert rows["full ensemble"]["test_nll"] == pytest.approx(E.nll(full, pool.test_labels), abs=1e-12)
    assert rows["full ensemble"]["num_params"] == sum(m.num_params or 0 for m in pool)
    # Re-evaluating the reloaded pool gives the same table.
    config = config_of(tiny_config())
    again = E.evaluate_pool(pool, config.pruners, seed=3, diversity=DIVERSITY)
    assert [r.to_dict() for r in again.rows] == built.summary["rows"]
    for label in ("prs", "pie", "top_k"):
        assert rows[label]["num_members"] == 2
    for r in built.summary["rows"]:
        assert 0 < r["test_acc"] <= 100 and r["num_members"] == len(r["members"])
    # The members learned something: far above the 10 % of guessing.
    assert min(100 * E.accuracy(p, pool.test_labels) for p in pool.test_probs()) > 80.0
    # Members record their space and decoder; parameters are counted in millions in the metrics.
    m1 = pool[1]
    assert m1.space == ComponentConfig("nb201", {}) and m1.in_channels == 1
    assert m1.network == ComponentConfig("nb201", {"channels": 4, "cells_per_stage": 1})
    assert m1.metadata["metrics"]["params_M"] == pytest.approx(m1.num_params / 1e6)
    assert len(m1.metadata["curves"]["train_loss"]) == 3
    # The checkpoint is the trained network: it reproduces the stored test logits.
    data = cached_splits(config.dataset)
    model = E.load_member_model(built.run_dir / "pool" / "members" / "m01")
    assert isinstance(data.test, ImageTensorDataset)
    with torch.inference_mode():
        x, y = data.test.batch(range(len(data.test)))
        logits = model(x).numpy()
    np.testing.assert_array_equal(y.numpy(), pool.test_labels)
    np.testing.assert_allclose(logits, m1.test_logits, rtol=1e-4, atol=1e-4)


def test_report_regenerates_the_files_from_the_saved_pool(built: RunResult, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    import shutil

    shutil.copytree(built.run_dir, copy, ignore=shutil.ignore_patterns(".lock"))
    generated = ("report.md", "ensembles.csv", "members.csv", "curves.csv", "diversity.npz",
                 "accuracy_vs_size.png", "diversity.png")
    csv_before = (copy / "ensembles.csv").read_bytes()
    for name in generated:
        (copy / name).unlink()
    text = report_run(copy)
    for name in generated:
        assert (copy / name).is_file(), name
    assert (copy / "ensembles.csv").read_bytes() == csv_before
    assert text == (copy / "report.md").read_text() and "## SAEP target" in text


def test_existing_run_directory_is_never_overwritten(built: RunResult) -> None:
    before = tree_digest(built.run_dir)
    cfg = write_config(built.run_dir.parent / "again.yaml", tiny_config())
    with pytest.raises(RunDirError, match="already exists and is not empty"):
        E.build_ensemble(cfg, run_dir=built.run_dir, progress=False)
    assert tree_digest(built.run_dir) == before


def test_resuming_a_finished_build_trains_and_writes_nothing(
    built: RunResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = tree_digest(built.run_dir)
    calls = patch_run(monkeypatch, lambda original, self, arch, seed, calls: calls.append(arch))
    again = E.resume_ensemble(built.run_dir, progress=False)
    assert calls == [] and again.summary == json.loads((built.run_dir / "result.json").read_text())
    assert tree_digest(built.run_dir) == before


def test_interrupted_build_resumes_without_retraining_saved_members(
    built: RunResult, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(original: Any, self: Any, arch: Any, seed: int, calls: list[Any]) -> Any:
        if len(calls) == 2:
            raise KeyboardInterrupt  # Ctrl-C while the third member trains
        calls.append(tuple(arch))
        return original(self, arch, seed)

    calls = patch_run(monkeypatch, interrupted)
    with pytest.raises(KeyboardInterrupt):
        build(tmp_path, tiny_config())
    run_dir = tmp_path / "run"
    members = run_dir / "pool" / "members"
    assert sorted(p.name for p in members.iterdir() if not p.name.startswith(".")) == ["m00", "m01"]
    assert not (run_dir / "result.json").exists() and not (run_dir / "pool" / "pool.yaml").exists()
    saved = {name: (members / name / "logits.npz").read_bytes() for name in ("m00", "m01")}

    def counting(original: Any, self: Any, arch: Any, seed: int, calls: list[Any]) -> Any:
        calls.append(tuple(arch))
        return original(self, arch, seed)

    calls = patch_run(monkeypatch, counting)
    result = E.resume_ensemble(run_dir, progress=False)
    assert calls == [SPACE.parse(ARCHS[2]), SPACE.parse(ARCHS[3])]  # only the missing members trained
    assert result.summary["reused"] == ["m00", "m01"] and result.summary["trained"] == ["m02", "m03"]
    assert result.summary["complete"]
    for name, raw in saved.items():
        assert (members / name / "logits.npz").read_bytes() == raw
    # Seeded training on the CPU: the resumed build equals the uninterrupted one.
    for a, b in zip(E.CandidatePool.load(run_dir / "pool"), E.CandidatePool.load(built.run_dir / "pool")):
        np.testing.assert_array_equal(a.test_logits, b.test_logits)
    assert result.summary["rows"] == built.summary["rows"]
    assert log_types(run_dir) == ["train", "member", "member", "resume", "train", "member", "member", "evaluated"]


def test_a_failed_member_is_reported_and_retried_with_an_executor_override(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = SPACE.parse(ARCHS[1])

    def failing(original: Any, self: Any, arch: Any, seed: int, calls: list[Any]) -> Any:
        calls.append(tuple(arch))
        if tuple(arch) == bad:
            raise RuntimeError("out of memory")
        return original(self, arch, seed)

    calls = patch_run(monkeypatch, failing)
    raw = tiny_config(candidates={"archs": ARCHS[:2]}, pruners=[{"name": "pie", "params": {"size": 2}}])
    result = build(tmp_path, raw)
    run_dir = tmp_path / "run"
    summary = result.summary
    assert summary["failed"] == {"m01": "RuntimeError: out of memory"}  # the executor's failed outcome
    assert summary["members"] == ["m00"] and not summary["complete"]
    assert [r["num_members"] for r in summary["rows"] if r["label"] == "pie"] == [1]  # size 2 clamped to 1
    report = (run_dir / "report.md").read_text()
    assert "the build is incomplete (1 of 2 members)" in report and "RuntimeError: out of memory" in report
    assert json.loads((run_dir / "result.json").read_text())["complete"] is False
    assert "the build is incomplete" in result.text
    failures = [r for r in RunDir(run_dir).read_log() if r["type"] == "member_failed"]
    assert [(r["name"], r["error"]) for r in failures] == [("m01", "RuntimeError: out of memory")]
    # A plain resume of an incomplete build retries the failed member only (it fails again
    # while the fault lasts); the saved member is reused.
    again = E.resume_ensemble(run_dir, progress=False).summary
    assert calls == [SPACE.parse(ARCHS[0]), bad, bad]
    assert again["failed"] == {"m01": "RuntimeError: out of memory"} and again["reused"] == ["m00"]
    # Only the extendable keys may change on resume.
    with pytest.raises(ConfigError, match="--resume takes overrides of executor.*; got 'train.epochs=1'"):
        E.resume_ensemble(run_dir, ["train.epochs=1"], progress=False)
    # Continuing on another executor configuration retries the failed member only.
    monkeypatch.undo()
    resumed = E.resume_ensemble(run_dir, ["executor.params.timeout_s=600"], progress=False)
    assert resumed.summary["trained"] == ["m01"] and resumed.summary["reused"] == ["m00"]
    assert resumed.summary["complete"] and resumed.summary["members"] == ["m00", "m01"]
    assert [r["num_members"] for r in resumed.summary["rows"] if r["label"] == "pie"] == [2]
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["executor"]["params"]["timeout_s"] == 600
    assert log_types(run_dir)[-5:] == ["extend", "resume", "train", "member", "evaluated"]
    assert "the build is incomplete" not in (run_dir / "report.md").read_text()


def test_resume_with_other_pruners_reprunes_the_saved_members(built: RunResult, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    run_dir = tmp_path / "copy"
    shutil.copytree(built.run_dir, run_dir, ignore=shutil.ignore_patterns(".lock"))
    calls = patch_run(monkeypatch, lambda original, self, arch, seed, calls: calls.append(arch))
    result = E.resume_ensemble(run_dir, ["pruners=[{name: top_k, params: {size: 3}, label: top3}]"], progress=False)
    assert calls == [] and result.summary["reused"] == ["m00", "m01", "m02", "m03"]
    assert [r["label"] for r in result.summary["rows"]] == ["top3"] + BASELINES
    # The baselines do not depend on the pruners: the same numbers as before.
    before = {r["label"]: r for r in built.summary["rows"]}
    for r in result.summary["rows"][1:]:
        assert r == before[r["label"]]
    assert result.summary["rows"][0]["num_members"] == 3
    assert (run_dir / "ensembles.csv").read_text().splitlines()[1].startswith("top3,pruner,top_k,3,")


def test_diverged_members_fail_and_a_build_without_members_fails_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def diverging(original: Any, self: Any, arch: Any, seed: int, calls: list[Any]) -> Any:
        calls.append(tuple(arch))
        result = original(self, arch, seed)
        return dataclasses.replace(result, diverged=True, train_loss=float("nan"))

    patch_run(monkeypatch, diverging)
    raw = tiny_config(candidates={"archs": ARCHS[:2]}, pruners=[{"name": "pap"}], train={"epochs": 1})
    cfg = write_config(tmp_path / "e.yaml", raw)
    with pytest.raises(RunFailedError, match="no member of the ensemble build trained \\(2 failed\\); first: m00: "
                                             "training diverged: the loss became nan in epoch 1"):
        E.build_ensemble(cfg, run_dir=tmp_path / "run", progress=False)
    summary = json.loads((tmp_path / "run" / "result.json").read_text())
    assert summary["members"] == [] and summary["rows"] == [] and len(summary["failed"]) == 2
    assert not (tmp_path / "run" / "pool" / "members").exists()
    # The command line: exit code 1 and the first error on one line.
    code = evonas_main(["ensemble", "build", "--config", str(cfg), "--run-dir", str(tmp_path / "cli"),
                        "--no-progress"])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "training diverged" in err
    with pytest.raises(RunDirError, match="has no trained member yet"):
        report_run(tmp_path / "run")


# ====================================================================== candidates
def _search_run(path: Path, records: list[tuple[tuple[int, ...], float | None]]) -> Path:
    run = RunDir.create(path, {"space": {"name": "nb201", "params": {}}}, 0, "search")
    for i, (arch, value) in enumerate(records):
        rec = CandidateRecord(i, arch, None if value is None else (value,), {"val_acc": value or 0.0},
                              value is None, 1, i + 1, float(i + 1))
        run.append(candidate_to_json(rec, SPACE))
    run.close()
    return path


def test_candidates_are_distinct_functions_and_come_from_the_pareto_front(tmp_path: Path) -> None:
    # Two cells that compute the same function: the none-edge into node 1 leaves that node
    # (and so its outgoing edge's op) without effect, whatever op that edge carries.
    same_a = SPACE.parse("|none~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|nor_conv_3x3~0|skip_connect~1|nor_conv_3x3~2|")
    same_b = SPACE.parse("|none~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|")
    assert same_a != same_b and SPACE.canonical_key(same_a) == SPACE.canonical_key(same_b)
    other = SPACE.parse(ARCHS[0])
    run = _search_run(tmp_path / "search", [(same_a, 91.0), (same_b, 92.0), (other, 90.0)])
    got = E.candidates_from_search(run, 10, SPACE)
    assert [cand.arch for cand in got] == [same_b, other]  # the better of the two equivalents
    # two objectives: only the non-dominated candidates
    mo = RunDir.create(tmp_path / "mo", {"space": {"name": "nb201", "params": {}}}, 0, "search")
    a, b, c, d = (SPACE.parse(x) for x in ARCHS)
    for i, (arch, values) in enumerate([(a, (90.0, -1.0)), (b, (80.0, -0.5)), (c, (85.0, -2.0)), (d, (95.0, -3.0))]):
        mo.append(candidate_to_json(CandidateRecord(i, arch, values, {"acc": values[0]}, False, 1, i + 1, 1.0), SPACE))
    mo.close()
    assert [cand.arch for cand in E.candidates_from_search(tmp_path / "mo", 10, SPACE)] == [d, a, b]  # c is dominated by a


def test_candidates_from_a_search_run_are_ranked_and_deduplicated(tmp_path: Path) -> None:
    a, b, c, d = (SPACE.parse(s) for s in ARCHS)
    run = _search_run(tmp_path / "search", [(a, 80.0), (b, 90.0), (a, 95.0), (c, None), (d, 90.0), (b, 70.0)])
    got = E.candidates_from_search(run, 10, SPACE)
    # a's best record (95) ranks first; b and d tie at 90 and keep the log order; c failed.
    assert [cand.arch for cand in got] == [a, b, d]
    assert [cand.source["cand_id"] for cand in got] == [2, 1, 4]
    assert [cand.arch for cand in E.candidates_from_search(run, 2, SPACE)] == [a, b]
    unscored = _search_run(tmp_path / "failed", [(c, None)])
    with pytest.raises(DataError, match="has no scored candidates"):
        E.candidates_from_search(unscored, 3, SPACE)
    with pytest.raises(RunDirError, match="does not exist"):
        E.candidates_from_search(tmp_path / "nowhere", 3, SPACE)
    RunDir.create(tmp_path / "ens", {}, 0, "ensemble").close()
    with pytest.raises(RunDirError, match="holds a 'ensemble' run, not a 'search' run"):
        E.candidates_from_search(tmp_path / "ens", 3, SPACE)


def _chain_search_run(path: Path, length: int) -> Path:
    space = build_space("chain", {"length": length})
    run = RunDir.create(path, {"space": {"name": "chain", "params": {"length": length}}}, 0, "search")
    for i, value in enumerate((1.0, 3.0)):
        rec = CandidateRecord(i, (i + 1,) * length, (value,), {}, False, 1, i + 1, float(i + 1))
        run.append(candidate_to_json(rec, space))
    run.close()
    return path


def test_candidates_of_a_search_run_over_another_space_are_refused(tmp_path: Path, chain_plugin: str) -> None:
    run = _search_run(tmp_path / "search", [(SPACE.parse(ARCHS[0]), 80.0)])
    space = build_space("chain", {"length": 3})
    with pytest.raises(ConfigError, match="searched space 'nb201'; the ensemble's space is 'chain'"):
        E.candidates_from_search(run, 3, space)
    with pytest.raises(ConfigError, match=r"searched space ChainSpace\(ChainConfig\(length=4\)\); the ensemble's "
                                          r"space is ChainSpace\(ChainConfig\(length=3\)\)"):
        E.candidates_from_search(_chain_search_run(tmp_path / "chain4", 4), 3, space)
    # A search over the same space gives its candidates, best first.
    got = E.candidates_from_search(_chain_search_run(tmp_path / "chain3", 3), 3, space)
    assert [space.format(c.arch) for c in got] == ["conv5-conv5-conv5", "conv3-conv3-conv3"]


def test_candidates_from_a_real_search_run(tmp_path: Path, nb201_env: Path) -> None:
    metric = "cifar10-valid_valid_acc_12ep"
    cfg = tmp_path / "search.yaml"
    cfg.write_text(yaml.safe_dump({
        "evaluator": {"name": "tabular", "params": {"metric": metric}},
        "fitness": {"objectives": [{"metric": metric}]},
        "strategy": {"name": "rea", "params": {"population_size": 5, "tournament_size": 2}},
        "budget": {"evaluations": 40},
        "progress": False,
    }))
    start_search(cfg, run_dir=tmp_path / "search")
    history = load_history(RunDir.open(tmp_path / "search"))
    got = E.candidates_from_search(tmp_path / "search", 5, SPACE)
    best: dict[tuple[int, ...], float] = {}
    for r in history:
        best[r.arch] = max(best.get(r.arch, -1.0), r.metrics[metric])
    expected = sorted(best.values(), reverse=True)[:5]
    assert [cand.source["metrics"][metric] for cand in got] == expected
    assert len({cand.arch for cand in got}) == 5
    # A build reads the same candidates; a relative search_run in a config file is
    # relative to that file.
    cfg = write_config(tmp_path / "ens.yaml", tiny_config(candidates={"search_run": "search", "top": 5}))
    config = E.load_ensemble_config(cfg)
    assert config.candidates.search_run == str(tmp_path / "search")
    resolved = E.resolve_candidates(config.candidates, SPACE)
    assert [cand.arch for cand in resolved] == [cand.arch for cand in got]


@pytest.mark.parametrize("path", sorted((ROOT / "configs").glob("ensemble-*.yaml")))
def test_shipped_configs_are_valid(path: Path) -> None:
    config = E.load_ensemble_config(path)
    space = config.space.build("space")
    candidates = E.resolve_candidates(config.candidates, space)
    assert len(candidates) >= 6
    E.check_pruners(config.pruners, len(candidates))
    assert {p.name for p in config.pruners} >= {"prs", "pap", "pie"}
    assert config.network.name == "nb201" and config.network.params["channels"] == 8


# ======================================================================= bad input
@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        ({"candidates": {"archs": []}}, ConfigError, "the candidate list is empty"),
        ({"candidates": {}}, ConfigError, "the candidate list is empty"),
        ({"candidates": {"archs": [ARCHS[0], "|nor_conv_3x3~0|+|bad|"]}}, ArchError,
         r"candidates.archs\[1\]: malformed nb201 architecture"),
        ({"candidates": {"archs": [ARCHS[0], "|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|"]}}, ArchError,
         "unknown nb201 operation 'conv'"),
        ({"candidates": {"archs": [ARCHS[0], ARCHS[1], ARCHS[0]]}}, ConfigError,
         r"candidates.archs\[2\] repeats candidates.archs\[0\]"),
        ({"candidates": {"archs": ARCHS, "search_run": "/x"}}, ConfigError, "either 'archs' or 'search_run'"),
        ({"candidates": {"archs": ARCHS, "top": 3}}, ConfigError, "candidates.top=3 needs candidates.search_run"),
        ({"candidates": {"search_run": "/x", "top": 0}}, ConfigError,
         r"invalid value 0 for 'candidates.top'; expected an integer in \[1, \d+\]"),
        ({"candidates": {"search_run": "/nonexistent/search-run"}}, RunDirError,
         "run directory '/nonexistent/search-run' does not exist"),
        ({"pruners": [{"name": "pep"}]}, EvonasError, "unknown pruner 'pep'; valid choices: caruana, pap, pie, prs, top_k"),
        ({"pruners": [{"name": "pie", "params": {"alpha": 1}}]}, ConfigError,
         "pruner 'pie' takes no parameter 'alpha'; valid parameters: size, max_fraction, lam"),
        ({"pruners": [{"name": "pie", "params": {"size": 5}}]}, ConfigError,
         (r"pruners: row 'pie' with 4 candidates: invalid value 5 for 'size' of pruner 'pie'; "
         r"expected an integer in \[1, 4\]")),
        ({"pruners": [{"name": "pie", "params": {"lam": 2.0}}]}, ConfigError,
         r"invalid value 2.0 for 'lam' of pruner 'pie'; expected a finite number in \[0, 1\]"),
        ({"pruners": [{"name": "pie"}, {"name": "pie"}]}, ConfigError, "pruner labels must be unique; repeated: pie"),
        ({"pruners": []}, ConfigError, "pruners is empty"),
        ({"diversity": ["entropy"]}, EvonasError, "unknown diversity measure 'entropy'"),
        ({"dataset": {"name": "digits", "val_fraction": 0.0}}, ConfigError,
         r"invalid value 0.0 for 'dataset.val_fraction'; expected a finite number > 0: pruners choose members"),
        ({"dataset": {"name": "mnist", "root": "/nonexistent/mnist"}}, DataError, "/nonexistent/mnist"),
        ({"executor": {"name": "dask"}}, UnknownChoiceError, "unknown executor 'dask'; valid choices: ray, serial"),
        ({"executor": {"name": "ray", "params": {"gpus": 1}}}, ConfigError, "unknown key 'executor.params.gpus'"),
        ({"network": {"name": "nb201", "params": {"channels": 0}}}, ConfigError,
         r"invalid value 0 for 'network.params.channels'; expected an integer in \[1, \d+\]"),
        ({"network": {"name": "resnet"}}, UnknownChoiceError, "unknown decoder 'resnet'"),
        ({"space": {"name": "darts"}}, UnknownChoiceError, "unknown search space 'darts'"),
        ({"train": {"lr": 0.1}}, ConfigError, "unknown key 'train.lr'"),
        ({"train": {"epochs": 0}}, ConfigError, r"invalid value 0 for 'train.epochs'; expected an integer in \[1, \d+\]"),
        ({"members": 3}, ConfigError, "unknown key 'members'; valid keys: candidates, dataset, diversity, ece_bins"),
    ],
)
def test_bad_input_is_rejected_before_anything_is_written(tmp_path: Path, change, error, message) -> None:
    with pytest.raises(error, match=message):
        build(tmp_path, tiny_config(**change))
    assert not (tmp_path / "run").exists()


def test_a_decoder_of_another_space_is_rejected_before_anything_is_written(tmp_path: Path, chain_plugin: str) -> None:
    raw = tiny_config(space={"name": "chain", "params": {"length": 3}}, candidates={"archs": ["conv3-skip-pool"]})
    with pytest.raises(CapabilityError, match="decoder 'nb201' serves space 'nb201', not the configured space 'chain'"):
        build(tmp_path, raw)
    assert not (tmp_path / "run").exists()
    # The candidates are parsed by the configured space.
    raw = tiny_config(space={"name": "chain", "params": {"length": 3}}, network={"name": "chain"},
                      candidates={"archs": [ARCHS[0]]})
    with pytest.raises(ArchError, match=r"candidates.archs\[0\]: malformed chain architecture"):
        build(tmp_path, raw)
    assert not (tmp_path / "run").exists()


def test_bad_input_through_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write_config(tmp_path / "ensemble.yaml", tiny_config())

    def run(*args: str) -> tuple[int, str]:
        code = evonas_main(["ensemble", "build", *args])
        return code, capsys.readouterr().err

    for overrides, fragment in [
        (["candidates.archs=[]"], "the candidate list is empty"),
        (["candidates.archs=['|nor_conv_3x3~0|']"], "candidates.archs[0]: malformed nb201 architecture"),
        (["pruners=[{name: pep}]"], "unknown pruner 'pep'"),
        (["candidates={search_run: /nonexistent/run}"], "run directory '/nonexistent/run' does not exist"),
        (["train.epochs=0"], "invalid value 0 for 'train.epochs'; expected an integer in [1, 1000000000]"),
    ]:
        code, err = run("--config", str(cfg), "--run-dir", str(tmp_path / "never"), "--no-progress", *overrides)
        assert code == 2 and err.count("\n") == 1 and err.startswith("evonas: error: "), err
        assert fragment in err, err
    assert not (tmp_path / "never").exists()
    code, err = run("--config", str(tmp_path / "missing.yaml"))
    assert code == 2 and "does not exist" in err
    code, err = run("--resume", str(tmp_path / "no-such-run"))
    assert code == 2 and f"run directory {str(tmp_path / 'no-such-run')!r} does not exist" in err


def test_command_line_build_resume_and_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write_config(tmp_path / "ensemble.yaml", tiny_config(candidates={"archs": ARCHS[:2]},
                                                               pruners=[{"name": "pie", "params": {"size": 1}}]))
    run_dir = tmp_path / "run"
    argv = ["ensemble", "build", "--config", str(cfg), "--run-dir", str(run_dir), "--no-progress", "train.epochs=1"]
    assert evonas_main(argv) == 0
    out = capsys.readouterr().out
    assert f"run directory: {run_dir}" in out and "members: 2 (2 trained, 0 reused)" in out
    assert "full ensemble" in out and "SAEP target pie:" in out
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["train"]["epochs"] == 1
    assert evonas_main(["ensemble", "build", "--resume", str(run_dir), "--no-progress"]) == 0
    assert capsys.readouterr().out == out  # the stored summary
    (run_dir / "report.md").unlink()
    assert evonas_main(["report", str(run_dir)]) == 0
    assert capsys.readouterr().out.startswith(f"# Ensemble build: {run_dir.name}")
    assert (run_dir / "report.md").is_file()


# ======================================================= a plugin space and decoder
def test_build_in_a_plugin_space_with_its_decoder(tmp_path: Path, chain_plugin: str,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    archs = ["conv3-conv3-pool", "conv5-skip-conv3", "pool-conv3-conv5"]
    raw = tiny_config(space={"name": "chain", "params": {"length": 3}}, network={"name": "chain", "params": {"width": 6}},
                      candidates={"archs": archs}, pruners=[{"name": "pie", "params": {"size": 2}}, {"name": "pap"}],
                      train={"epochs": 2, "batch_size": 32, "optim": {"lr": 0.1}, "compute": {"device": "cpu"}})
    cfg = write_config(tmp_path / "chain.yaml", raw)
    run_dir = tmp_path / "run"
    assert evonas_main(["ensemble", "build", "--plugin", str(CHAIN_PLUGIN), "--config", str(cfg),
                        "--run-dir", str(run_dir), "--no-progress"]) == 0
    assert "members: 3 (3 trained, 0 reused)" in capsys.readouterr().out
    assert str(CHAIN_PLUGIN) in yaml.safe_load((run_dir / "meta.yaml").read_text())["plugins"]
    plan = yaml.safe_load((run_dir / "plan.yaml").read_text())
    assert [c["arch"] for c in plan["candidates"]] == archs
    pool = E.CandidatePool.load(run_dir / "pool")
    assert [m.arch_str for m in pool] == archs
    assert pool[0].space == ComponentConfig("chain", {"length": 3})
    assert pool[0].network == ComponentConfig("chain", {"width": 6})
    # The recorded decoder rebuilds the trained chain network.
    model = E.load_member_model(run_dir / "pool" / "members" / "m02")
    assert isinstance(model, torch.nn.Sequential)
    data = cached_splits(config_of(raw).dataset)
    assert isinstance(data.test, ImageTensorDataset)
    with torch.inference_mode():
        x, _ = data.test.batch(range(len(data.test)))
        np.testing.assert_allclose(model(x).numpy(), pool[2].test_logits, rtol=1e-4, atol=1e-4)
    members_md = (run_dir / "members.csv").read_text()
    assert "conv5-skip-conv3" in members_md
    assert evonas_main(["report", str(run_dir)]) == 0


# ======================================================= evaluation on a made-up pool
def _made_up_pool() -> E.CandidatePool:
    """Four members on 6 validation and 4 test samples of 3 classes, logits chosen by hand.

    a is right everywhere; b is right except on one sample of each split; c duplicates b;
    d is wrong everywhere. On the test split a and b are both always right except b on
    sample 3, so Q(a, b) is 0/0 (a never errs): NaN.
    """
    y_val, y_test = np.array([0, 1, 2, 0, 1, 2]), np.array([0, 1, 2, 0])

    def logits(pred: np.ndarray) -> np.ndarray:
        return 4.0 * np.eye(3)[np.asarray(pred)]

    wrong_val, wrong_test = (y_val + 1) % 3, (y_test + 1) % 3
    b_val, b_test = y_val.copy(), y_test.copy()
    b_val[5], b_test[3] = 0, 2
    members = [
        E.Member("a", logits(y_val), logits(y_test), num_params=10),
        E.Member("b", logits(b_val), logits(b_test), num_params=20),
        E.Member("c", logits(b_val), logits(b_test), num_params=20),
        E.Member("d", logits(wrong_val), logits(wrong_test), num_params=40),
    ]
    return E.CandidatePool(tuple(members), y_val, y_test)


def test_evaluate_pool_on_a_made_up_pool(tmp_path: Path) -> None:
    pool = _made_up_pool()
    pruners = [E.PrunerSpec("pie", {"size": 2}), E.PrunerSpec("top_k", {"size": 1}, label="best1")]
    ev = E.evaluate_pool(pool, pruners, diversity=["disagreement", "q_statistic"])
    assert [r.label for r in ev.rows] == ["pie", "best1"] + BASELINES
    assert ev.row("best1").members == ("a",) and ev.row("best1").test_acc == 100.0
    assert ev.row("best single (val)").members == ("a",)
    # PIE starts from a (NMI with the labels 1) and adds b: VI(a, b) > 0 = VI(a, d)
    # (d's labels are a consistent relabelling of a's, which information measures ignore).
    assert ev.row("pie").members == ("a", "b")
    full = ev.row("full ensemble")
    # Mean of p(a), p(b), p(c), p(d) per sample: the label wins wherever a, b, c agree on it.
    # Test sample 3: a says 0, b and c say 2, d says 1 -> class 2 wins, wrong: 3/4 right.
    assert full.test_acc == pytest.approx(75.0) and full.num_params == 90 and full.num_members == 4
    # Disagreement over the 4 test samples: (a,b) 1/4, (a,c) 1/4, (b,c) 0, (a,d) 1, (b,d) 1, (c,d) 1 -> mean 3.5/6.
    assert full.diversity["disagreement"] == pytest.approx(3.5 / 6, abs=1e-12)
    assert np.isnan(ev.diversity["q_statistic"][0, 1])  # a never errs on the test split
    fitted = ev.row("full (fitted weights)")
    assert fitted.members == ("a",) and fitted.weights == (1.0,)  # a alone has validation NLL ~ 0
    # Size curves: PIE keeps exactly k members for every bound k.
    assert [p.num_members for p in ev.curves["pie"]] == [1, 2, 3, 4]
    assert ev.curves["pie"][3].test_acc == full.test_acc
    target = ev.saep_target()
    assert set(target) == {"pie"}
    pie = ev.row("pie")
    assert target["pie"]["half"] == (pie.num_members <= 2)
    assert target["pie"]["beats_single"] is False  # nothing beats the perfect member a
    text = E.write_ensemble_report(tmp_path, ev, title="made up")
    assert (tmp_path / "diversity.png").is_file() and "| q_statistic |" in text.replace("**", "")
    with pytest.raises(DataError, match="no ensemble row 'pap'"):
        ev.row("pap")
    # Rows survive the JSON of result.json (NaN as 'nan') and format as the terminal table.
    rows = [E.EnsembleRow.from_dict(json.loads(json.dumps(r.to_dict()))) for r in ev.rows]
    assert [r.to_dict() for r in rows] == [r.to_dict() for r in ev.rows]
    assert np.isnan(rows[2].diversity["q_statistic"])  # best single: one member
    assert E.format_rows(rows, 4) == E.format_table(ev)


def test_pie_in_a_build_leaves_the_duplicate_out() -> None:
    pool = _made_up_pool()
    ev = E.evaluate_pool(pool, [E.PrunerSpec("pie", {"size": 3})], diversity=["disagreement"], curves=False)
    # b and c are identical: PIE takes one of them, never both, even after the d that
    # only relabels the truth (TDAC(a, d) + TDAC(b, d) = 1.14 > TDAC(a, c) + TDAC(b, c) = 1.01).
    assert ev.row("pie").members == ("a", "b", "d")
    assert ev.curves == {}


# ========================================================================= trainer
def test_member_trainer_result_travels_between_processes() -> None:
    dataset = DatasetConfig(name="digits", val_fraction=0.25, max_train=100, seed=1)
    train = TrainConfig(epochs=1, batch_size=50, optim=OptimConfig(lr=0.1), compute=ComputeConfig(device="cpu"))
    network = ComponentConfig("nb201", {"channels": 4, "cells_per_stage": 1})
    trainer = E.MemberTrainer(SPACE, dataset, train, network)
    clone = pickle.loads(pickle.dumps(trainer))
    result = pickle.loads(pickle.dumps(clone.run(SPACE.parse(ARCHS[1]), seed=5)))  # what a Ray worker sends back
    assert isinstance(result, E.MemberResult)
    assert result.val_logits.shape == (360, 10) and result.val_logits.dtype == np.float32
    assert result.test_logits.shape == (360, 10) and result.test_labels.shape == (360,)
    assert isinstance(result.state_dict, bytes) and not result.diverged and result.epochs == 1
    assert set(result.metrics) == set(E.METRIC_NAMES)
    assert result.metrics["params_M"] == pytest.approx(result.num_params / 1e6, abs=1e-15)
    assert result.metrics["val_acc"] == pytest.approx(
        100 * np.mean(result.val_logits.argmax(1) == result.val_labels), abs=1e-9
    )
    # Same (arch, seed): the same member.
    again = trainer.run(SPACE.parse(ARCHS[1]), seed=5)
    np.testing.assert_array_equal(again.test_logits, result.test_logits)
    space_cc = ComponentConfig("nb201", {})
    member = E.member_from_result("m", SPACE.parse(ARCHS[1]), 5, result, result.val_labels, result.test_labels,
                                  space_cc, network, 1)
    assert member.num_params == result.num_params and member.metadata["metrics"]["params_M"] == result.metrics["params_M"]
    with pytest.raises(E.MemberFailure, match="the worker's val labels"):
        E.member_from_result("m", SPACE.parse(ARCHS[1]), 5, result, result.val_labels[::-1].copy(),
                             result.test_labels, space_cc, network, 1)
    with pytest.raises(E.MemberFailure, match="training diverged: the loss became inf in epoch 1"):
        E.member_from_result("m", SPACE.parse(ARCHS[1]), 5,
                             dataclasses.replace(result, diverged=True, train_loss=float("inf")),
                             result.val_labels, result.test_labels, space_cc, network, 1)


def test_member_trainer_checks_the_decoder_against_the_space(chain_plugin: str) -> None:
    with pytest.raises(CapabilityError, match="decoder 'nb201' serves space 'nb201'"):
        E.MemberTrainer(build_space("chain"), DatasetConfig(), TrainConfig())


# ============================================================== real data, Ray tasks
FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture
def fashion_mnist() -> Path:
    """Debian's ``dataset-fashion-mnist`` files: skip without them, fail when EVONAS_REQUIRE_DATA=1."""
    files = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
             "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
    missing = [f for f in files if not (FASHION_MNIST / f).is_file()]
    if missing:
        message = (f"Fashion-MNIST not found in {FASHION_MNIST} (missing {', '.join(missing)}); "
                   "install the Debian package dataset-fashion-mnist")
        if os.environ.get("EVONAS_REQUIRE_DATA") == "1":
            pytest.fail(message + "; EVONAS_REQUIRE_DATA=1 makes this a failure")
        pytest.skip(message)
    return FASHION_MNIST


@pytest.mark.slow
def test_build_on_real_fashion_mnist(tmp_path: Path, fashion_mnist: Path) -> None:
    raw = tiny_config(
        candidates={"archs": ARCHS[1:3]},
        dataset={"name": "fashion-mnist", "root": str(fashion_mnist), "max_train": 600, "max_val": 300,
                 "max_test": 500, "seed": 0},
        pruners=[{"name": "pie", "params": {"size": 1}}, {"name": "pap"}],
    )
    result = build(tmp_path, raw)
    plan = yaml.safe_load((tmp_path / "run" / "plan.yaml").read_text())
    assert plan["data"] == {"num_train": 600, "num_val": 300, "num_test": 500, "num_classes": 10, "in_channels": 1}
    pool = E.CandidatePool.load(tmp_path / "run" / "pool")
    # Real clothing images: every label occurs, and the members beat guessing by far.
    assert pool.test_labels is not None and set(np.unique(pool.test_labels)) == set(range(10))
    assert min(100 * E.accuracy(p, pool.test_labels) for p in pool.test_probs()) > 40.0
    assert [r["num_members"] for r in result.summary["rows"] if r["label"] == "pie"] == [1]


@pytest.mark.slow
@pytest.mark.ray
def test_build_with_members_as_ray_tasks(built: RunResult, tmp_path: Path) -> None:
    raw = tiny_config(candidates={"archs": ARCHS[:2]}, pruners=[{"name": "pie", "params": {"size": 1}}],
                      executor={"name": "ray", "params": {"num_cpus": 2, "max_in_flight": 2, "max_retries": 0}})
    result = build(tmp_path, raw)
    assert result.summary["complete"] and sorted(result.summary["trained"]) == ["m00", "m01"]
    assert (tmp_path / "run" / "pool" / "members" / "m01" / "model.pt").is_file()  # written by the driver
    # Seeded CPU training in another process gives the members of the serial build.
    for a, b in zip(E.CandidatePool.load(tmp_path / "run" / "pool"), E.CandidatePool.load(built.run_dir / "pool")):
        np.testing.assert_allclose(a.test_logits, b.test_logits, rtol=1e-5, atol=1e-5)
