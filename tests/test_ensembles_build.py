"""Building ensembles: training candidates into a run directory, resuming, evaluating, reporting.

Builds use scikit-learn's ``digits`` with tiny NAS-Bench-201 networks (C=4, N=1) and the
serial executor, so each takes a few seconds; one test uses the real Fashion-MNIST files
of Debian's ``dataset-fashion-mnist`` and one runs the members as Ray tasks.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import yaml

import ensembles as E
from ensembles._cli import main as cli_main
from evonas.config import from_dict
from evonas.errors import ArchError, ConfigError, DataError, RunDirError
from evonas.evaluation import Evaluation
from evonas.runs import RunDir
from evonas.search import load_history, start_search
from evonas.search._loop import CandidateRecord, candidate_to_json
from evonas.spaces import NB201Space

SPACE = NB201Space()
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


def tiny_config(**changes) -> dict:
    """A build of tiny members on a digits subset: a few seconds on one core."""
    raw = {
        "seed": 3,
        "candidates": {"archs": list(ARCHS)},
        "dataset": {"name": "digits", "val_fraction": 0.25, "max_train": 600, "seed": 1},
        "train": {"epochs": 3, "batch_size": 32, "lr": 0.1, "device": "cpu"},
        "channels": 4,
        "cells_per_stage": 1,
        "pruners": PRUNERS,
        "diversity": ["disagreement", "q_statistic", "vi"],
    }
    raw.update(changes)
    return raw


def config_of(raw: dict) -> E.EnsembleConfig:
    return from_dict(E.EnsembleConfig, raw)


def tree_digest(path: Path, skip: tuple[str, ...] = (".lock",)) -> str:
    h = hashlib.sha256()
    for p in sorted(path.rglob("*")):
        if p.is_file() and p.name not in skip:
            h.update(str(p.relative_to(path)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> E.BuildResult:
    run_dir = tmp_path_factory.mktemp("ens") / "run"
    return E.build_ensemble(config_of(tiny_config()), run_dir, progress=False)


# ====================================================================== end to end
def test_build_writes_a_complete_run_directory(built: E.BuildResult) -> None:
    run = built.run_dir
    assert built.complete and built.trained == ("m00", "m01", "m02", "m03") and built.reused == ()
    for name in ("config.yaml", "meta.yaml", "log.jsonl", "plan.yaml", "result.json", "report.md",
                 "ensembles.csv", "members.csv", "curves.csv", "diversity.npz"):
        assert (run / name).is_file(), name
    for png in ("accuracy_vs_size.png", "diversity.png"):
        assert (run / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
    meta = yaml.safe_load((run / "meta.yaml").read_text())
    assert meta["kind"] == "ensemble" and meta["seed"] == 3 and "torch" in meta["versions"]
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["executor"] == {"name": "serial", "params": {"timeout_s": None}}  # defaults resolved
    plan = yaml.safe_load((run / "plan.yaml").read_text())
    assert [c["arch"] for c in plan["candidates"]] == ARCHS
    assert len({c["seed"] for c in plan["candidates"]}) == 4
    assert plan["data"] == {"num_train": 600, "num_val": 360, "num_test": 360, "num_classes": 10, "in_channels": 1}
    for name in built.trained:
        assert sorted(p.name for p in (run / "pool" / "members" / name).iterdir()) == [
            "logits.npz", "member.yaml", "model.pt"
        ]
    records = RunDir(run).read_log()
    assert [r["type"] for r in records] == ["train"] + ["member"] * 4 + ["evaluated"]
    # The main table: one row per pruner, then the baselines.
    lines = (run / "ensembles.csv").read_text().splitlines()
    assert lines[0].startswith("label,kind,pruner,num_members,num_params,val_acc,test_acc,test_nll,test_ece")
    assert [line.split(",")[0] for line in lines[1:]] == [p["name"] for p in PRUNERS] + BASELINES
    assert len((run / "curves.csv").read_text().splitlines()) == 1 + 5 * 4  # every pruner at sizes 1..4
    report = (run / "report.md").read_text()
    for fragment in ("## Ensembles", "## SAEP target", "![Accuracy against ensemble size](accuracy_vs_size.png)",
                     "![Pairwise diversity (test split)](diversity.png)", "\\|nor_conv_3x3~0\\|"):
        assert fragment in report


def test_build_numbers_are_those_of_the_saved_members(built: E.BuildResult) -> None:
    ev = built.evaluation
    pool = E.CandidatePool.load(built.run_dir / "pool")  # members reload without retraining
    assert pool.names == ["m00", "m01", "m02", "m03"]
    full = E.combine_probs(pool.test_probs())
    assert ev.row("full ensemble").test_acc == pytest.approx(100 * E.accuracy(full, pool.test_labels), abs=1e-12)
    assert ev.row("full ensemble").test_nll == pytest.approx(E.nll(full, pool.test_labels), abs=1e-12)
    assert ev.row("full ensemble").num_params == sum(m.num_params for m in pool)
    # Re-evaluating the reloaded pool gives the same table.
    again = E.evaluate_pool(pool, config_of(tiny_config()).pruners, seed=3, diversity=["disagreement", "q_statistic", "vi"])
    assert [r.to_dict() for r in again.rows] == [r.to_dict() for r in ev.rows]
    for r in ev.rows:
        assert 0 < r.test_acc <= 100 and r.num_members == len(r.members)
    for label in ("prs", "pie", "top_k"):
        assert ev.row(label).num_members == 2
    # The members learned something: far above the 10 % of guessing.
    assert min(m["test_acc"] for m in ev.members) > 80.0
    # The checkpoint is the trained network: it reproduces the stored test logits.
    import torch

    data = config_of(tiny_config()).dataset.load()
    model = E.load_member_model(built.run_dir / "pool" / "members" / "m01")
    with torch.inference_mode():
        x, y = data.test.batch(range(len(data.test)))
        logits = model(x).numpy()
    np.testing.assert_array_equal(y.numpy(), pool.test_labels)
    np.testing.assert_allclose(logits, pool[1].test_logits, rtol=1e-4, atol=1e-4)


def test_existing_run_directory_is_never_overwritten(built: E.BuildResult) -> None:
    before = tree_digest(built.run_dir)
    with pytest.raises(RunDirError, match="already exists and is not empty"):
        E.build_ensemble(config_of(tiny_config()), built.run_dir, progress=False)
    assert tree_digest(built.run_dir) == before


def test_resuming_a_finished_build_trains_and_writes_nothing(built: E.BuildResult) -> None:
    before = tree_digest(built.run_dir)
    again = E.resume_ensemble(built.run_dir, progress=False)
    assert again.trained == () and again.reused == ("m00", "m01", "m02", "m03")
    assert [r.to_dict() for r in again.evaluation.rows] == [r.to_dict() for r in built.evaluation.rows]
    assert tree_digest(built.run_dir) == before


def test_interrupted_build_resumes_without_retraining_saved_members(
    built: E.BuildResult, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[int, ...]] = []
    original = E.MemberTrainer.evaluate

    def interrupted(self, arch, seed):
        if len(calls) == 2:
            raise KeyboardInterrupt  # Ctrl-C while the third member trains
        calls.append(tuple(arch))
        return original(self, arch, seed)

    monkeypatch.setattr(E.MemberTrainer, "evaluate", interrupted)
    run_dir = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        E.build_ensemble(config_of(tiny_config()), run_dir, progress=False)
    members = run_dir / "pool" / "members"
    assert sorted(p.name for p in members.iterdir() if not p.name.startswith(".")) == ["m00", "m01"]
    assert not (run_dir / "result.json").exists() and not (run_dir / "pool" / "pool.yaml").exists()
    saved = {name: (members / name / "logits.npz").read_bytes() for name in ("m00", "m01")}

    def counting(self, arch, seed):
        calls.append(tuple(arch))
        return original(self, arch, seed)

    monkeypatch.setattr(E.MemberTrainer, "evaluate", counting)
    result = E.resume_ensemble(run_dir, progress=False)
    assert calls[2:] == [SPACE.parse(ARCHS[2]), SPACE.parse(ARCHS[3])]  # only the missing members trained
    assert result.reused == ("m00", "m01") and result.trained == ("m02", "m03") and result.complete
    for name, raw in saved.items():
        assert (members / name / "logits.npz").read_bytes() == raw
    # Seeded training on the CPU: the resumed build equals the uninterrupted one.
    for a, b in zip(result.pool, built.pool):
        np.testing.assert_array_equal(a.test_logits, b.test_logits)
    assert [r.to_dict() for r in result.evaluation.rows] == [r.to_dict() for r in built.evaluation.rows]
    assert [r["type"] for r in RunDir(run_dir).read_log()] == (
        ["train", "member", "member", "resume", "train", "member", "member", "evaluated"]
    )


def test_a_failed_member_is_reported_and_retried_on_resume(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    original = E.MemberTrainer.evaluate
    bad = SPACE.parse(ARCHS[1])

    def failing(self, arch, seed):
        if tuple(arch) == bad:
            return Evaluation.failure("RuntimeError: out of memory")
        return original(self, arch, seed)

    monkeypatch.setattr(E.MemberTrainer, "evaluate", failing)
    raw = tiny_config(candidates={"archs": ARCHS[:2]}, pruners=[{"name": "pie", "params": {"size": 2}}])
    result = E.build_ensemble(config_of(raw), tmp_path / "run", progress=False)
    assert result.failed == {"m01": "member 'm01' failed to train: RuntimeError: out of memory"}
    assert result.pool.names == ["m00"] and not result.complete
    assert result.evaluation.row("pie").num_members == 1  # size 2 clamped to the 1 member trained
    assert "the build is incomplete" in (tmp_path / "run" / "report.md").read_text()
    assert yaml.safe_load((tmp_path / "run" / "result.json").read_text())["complete"] is False
    monkeypatch.setattr(E.MemberTrainer, "evaluate", original)
    resumed = E.resume_ensemble(tmp_path / "run", progress=False)
    assert resumed.trained == ("m01",) and resumed.reused == ("m00",) and resumed.complete
    assert resumed.pool.names == ["m00", "m01"] and resumed.evaluation.row("pie").num_members == 2


# ====================================================================== candidates
def _search_run(path: Path, records: list[tuple[tuple[int, ...], float | None]]) -> Path:
    run = RunDir.create(path, {"note": "hand-made"}, 0, "search")
    for i, (arch, value) in enumerate(records):
        rec = CandidateRecord(i, arch, None if value is None else (value,), {"val_acc": value or 0.0},
                              value is None, 1, i + 1, float(i + 1))
        run.append(candidate_to_json(rec, SPACE))
    run.close()
    return path


def test_candidates_from_a_search_run_are_ranked_and_deduplicated(tmp_path: Path) -> None:
    a, b, c, d = (SPACE.parse(s) for s in ARCHS)
    run = _search_run(tmp_path / "search", [(a, 80.0), (b, 90.0), (a, 95.0), (c, None), (d, 90.0), (b, 70.0)])
    got = E.candidates_from_search(run, top=10)
    # a's best record (95) ranks first; b and d tie at 90 and keep the log order; c failed.
    assert [cand.arch for cand in got] == [a, b, d]
    assert [cand.source["cand_id"] for cand in got] == [2, 1, 4]
    assert [cand.arch for cand in E.candidates_from_search(run, top=2)] == [a, b]
    unscored = _search_run(tmp_path / "failed", [(c, None)])
    with pytest.raises(DataError, match="has no scored candidates"):
        E.candidates_from_search(unscored, top=3)
    with pytest.raises(RunDirError, match="does not exist"):
        E.candidates_from_search(tmp_path / "nowhere", top=3)
    with pytest.raises(RunDirError, match="holds a 'ensemble' run, not a 'search' run"):
        RunDir.create(tmp_path / "ens", {}, 0, "ensemble").close()
        E.candidates_from_search(tmp_path / "ens", top=3)


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
    got = E.candidates_from_search(tmp_path / "search", top=5)
    best = {}
    for r in history:
        best[r.arch] = max(best.get(r.arch, -1.0), r.metrics[metric])
    expected = sorted(best.values(), reverse=True)[:5]
    assert [cand.source["metrics"][metric] for cand in got] == expected
    assert len({cand.arch for cand in got}) == 5
    # A build reads the same candidates and records where they came from.
    raw = tiny_config(candidates={"search_run": str(tmp_path / "search"), "top": 5})
    resolved = E.resolve_candidates(config_of(raw).candidates)
    assert [cand.arch for cand in resolved] == [cand.arch for cand in got]


@pytest.mark.parametrize("path", sorted((Path(__file__).resolve().parents[1] / "configs").glob("ensemble-*.yaml")))
def test_shipped_configs_are_valid(path: Path) -> None:
    config = E.load_ensemble_config(path)
    resolved, _ = E.resolve_ensemble_config(config)
    candidates = E.resolve_candidates(resolved.candidates)
    assert len(candidates) >= 6
    E.check_pruners(resolved.pruners, len(candidates))
    assert {p.name for p in resolved.pruners} >= {"prs", "pap", "pie"}


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
        ({"candidates": {"archs": ARCHS, "search_run": "runs/x"}}, ConfigError, "either 'archs' or 'search_run'"),
        ({"candidates": {"archs": ARCHS, "top": 3}}, ConfigError, "candidates.top=3 needs candidates.search_run"),
        ({"candidates": {"search_run": "/nonexistent/search-run"}}, RunDirError,
         "run directory '/nonexistent/search-run' does not exist"),
        ({"pruners": [{"name": "pep"}]}, ConfigError, "unknown pruner 'pep'; valid choices: caruana, pap, pie, prs, top_k"),
        ({"pruners": [{"name": "pie", "params": {"alpha": 1}}]}, ConfigError,
         "pruner 'pie' takes no parameter 'alpha'; valid parameters: size, max_fraction, lam"),
        ({"pruners": [{"name": "pie", "params": {"size": 5}}]}, ConfigError,
         r"pruner 'pie' with 4 candidates: size must be an integer in 1..4; got 5"),
        ({"pruners": [{"name": "pie", "params": {"lam": 2.0}}]}, ConfigError, r"lam must lie in \[0.0, 1.0\]; got 2.0"),
        ({"pruners": [{"name": "pie"}, {"name": "pie"}]}, ConfigError, "pruner labels must be unique; repeated: pie"),
        ({"pruners": []}, ConfigError, "pruners is empty"),
        ({"diversity": ["entropy"]}, ConfigError, "unknown diversity measure 'entropy'"),
        ({"dataset": {"name": "digits", "val_fraction": 0.0}}, ConfigError, "dataset.val_fraction must be > 0"),
        ({"dataset": {"name": "mnist", "root": "/nonexistent/mnist"}}, DataError, "/nonexistent/mnist"),
        ({"executor": {"name": "dask"}}, ConfigError, "unknown executor 'dask'; valid choices: ray, serial"),
        ({"executor": {"name": "ray", "params": {"gpus": 1}}}, ConfigError, "unknown key 'executor.params.gpus'"),
        ({"members": 3}, ConfigError, "unknown key 'members'; valid keys: candidates, cells_per_stage"),
    ],
)
def test_bad_input_is_rejected_before_anything_is_written(tmp_path: Path, change, error, message) -> None:
    run_dir = tmp_path / "run"
    with pytest.raises(error, match=message):
        E.build_ensemble(config_of(tiny_config(**change)), run_dir, progress=False)
    assert not run_dir.exists()


def test_bad_input_through_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "ensemble.yaml"
    cfg.write_text(yaml.safe_dump(tiny_config()))

    def run(*overrides: str, config: str | None = str(cfg), run_dir: str | None = None, **extra) -> tuple[int, str]:
        args = argparse.Namespace(config=config, run_dir=run_dir, no_progress=True, overrides=list(overrides), **extra)
        code = cli_main(args)
        return code, capsys.readouterr().err

    for overrides, fragment in [
        (["candidates.archs=[]"], "the candidate list is empty"),
        (["candidates.archs=['|nor_conv_3x3~0|']"], "candidates.archs[0]: malformed nb201 architecture"),
        (["pruners=[{name: pep}]"], "unknown pruner 'pep'"),
        (["candidates={search_run: /nonexistent/run}"], "run directory '/nonexistent/run' does not exist"),
        (["train.epochs=0"], "train.epochs must be a positive integer; got 0"),
    ]:
        code, err = run(*overrides, run_dir=str(tmp_path / "never"))
        assert code == 2 and err.count("\n") == 1 and err.startswith("evonas: error: "), err
        assert fragment in err, err
    assert not (tmp_path / "never").exists()
    code, err = run(config=str(tmp_path / "missing.yaml"))
    assert code == 2 and "does not exist" in err
    code, err = run(config=None, resume=str(tmp_path / "no-such-run"))
    assert code == 2 and f"run directory {str(tmp_path / 'no-such-run')!r} does not exist" in err
    code, err = run(config=None)
    assert code == 2 and "needs --config" in err


def test_command_line_build_prints_the_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from evonas.cli import main as evonas_main

    cfg = tmp_path / "ensemble.yaml"
    cfg.write_text(yaml.safe_dump(tiny_config(candidates={"archs": ARCHS[:2]},
                                              pruners=[{"name": "pie", "params": {"size": 1}}])))
    argv = ["ensemble", "build", "--config", str(cfg), "--run-dir", str(tmp_path / "run"), "--no-progress",
            "train.epochs=1"]
    assert evonas_main(argv) == 0
    out = capsys.readouterr().out
    assert f"run directory: {tmp_path / 'run'}" in out and "members: 2 (2 trained now, 0 reused)" in out
    assert "full ensemble" in out and "SAEP target pie:" in out
    assert yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["train"]["epochs"] == 1


# ======================================================= evaluation on a made-up pool
def _made_up_pool() -> E.CandidatePool:
    """Four members on 6 validation and 4 test samples of 3 classes, logits chosen by hand.

    a is right everywhere; b is right except on one sample of each split; c duplicates b;
    d is wrong everywhere. On the test split a and b are both always right except b on
    sample 3, so Q(a, b) is 0/0 (a never errs): NaN.
    """
    y_val, y_test = np.array([0, 1, 2, 0, 1, 2]), np.array([0, 1, 2, 0])

    def logits(pred):
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
    return E.CandidatePool(members, y_val, y_test)


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


def test_pie_in_a_build_leaves_the_duplicate_out() -> None:
    pool = _made_up_pool()
    ev = E.evaluate_pool(pool, [E.PrunerSpec("pie", {"size": 3})], diversity=["disagreement"], curves=False)
    # b and c are identical: PIE takes one of them, never both, even after the d that
    # only relabels the truth (TDAC(a, d) + TDAC(b, d) = 1.14 > TDAC(a, c) + TDAC(b, c) = 1.01).
    assert ev.row("pie").members == ("a", "b", "d")
    assert ev.curves == {}


# ========================================================================= trainer
def test_member_trainer_result_travels_between_processes() -> None:
    cfg = config_of(tiny_config(dataset={"name": "digits", "val_fraction": 0.25, "max_train": 100, "seed": 1},
                                train={"epochs": 1, "batch_size": 50, "device": "cpu"}))
    trainer = E.MemberTrainer(cfg.dataset, cfg.train, 4, 1)
    clone = pickle.loads(pickle.dumps(trainer))
    evaluation = clone.evaluate(SPACE.parse(ARCHS[1]), seed=5)
    evaluation = pickle.loads(pickle.dumps(evaluation))  # what a Ray worker sends back
    info = evaluation.info
    assert info["val_logits"].shape == (360, 10) and info["val_logits"].dtype == np.float32
    assert info["test_logits"].shape == (360, 10) and info["test_labels"].shape == (360,)
    assert isinstance(info["state_dict"], bytes) and info["num_params"] == evaluation.metrics["params"]
    assert evaluation.metrics["val_acc"] == pytest.approx(
        100 * np.mean(info["val_logits"].argmax(1) == info["val_labels"]), abs=1e-9
    )
    # Same (arch, seed): the same member.
    again = trainer.evaluate(SPACE.parse(ARCHS[1]), seed=5)
    np.testing.assert_array_equal(again.info["test_logits"], info["test_logits"])
    with pytest.raises(DataError, match="the worker's val labels"):
        E.member_from_evaluation("m", SPACE.parse(ARCHS[1]), 5, evaluation, info["val_labels"][::-1].copy(),
                                 info["test_labels"], {"channels": 4, "cells_per_stage": 1, "num_classes": 10,
                                                       "in_channels": 1})


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
    result = E.build_ensemble(config_of(raw), tmp_path / "run", progress=False)
    plan = yaml.safe_load((tmp_path / "run" / "plan.yaml").read_text())
    assert plan["data"] == {"num_train": 600, "num_val": 300, "num_test": 500, "num_classes": 10, "in_channels": 1}
    # Real clothing images: every label occurs, and the members beat guessing by far.
    assert set(np.unique(result.pool.test_labels)) == set(range(10))
    assert min(m["test_acc"] for m in result.evaluation.members) > 40.0
    assert result.evaluation.row("pie").num_members == 1


@pytest.mark.slow
@pytest.mark.ray
def test_build_with_members_as_ray_tasks(built: E.BuildResult, tmp_path: Path) -> None:
    raw = tiny_config(candidates={"archs": ARCHS[:2]}, pruners=[{"name": "pie", "params": {"size": 1}}],
                      executor={"name": "ray", "params": {"num_cpus": 2, "max_in_flight": 2, "max_retries": 0}})
    result = E.build_ensemble(config_of(raw), tmp_path / "run", progress=False)
    assert result.complete and sorted(result.trained) == ["m00", "m01"]
    assert (tmp_path / "run" / "pool" / "members" / "m01" / "model.pt").is_file()  # written by the driver
    # Seeded CPU training in another process gives the members of the serial build.
    for a, b in zip(result.pool, built.pool):
        np.testing.assert_allclose(a.test_logits, b.test_logits, rtol=1e-5, atol=1e-5)
