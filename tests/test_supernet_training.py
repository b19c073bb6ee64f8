"""Supernet training: configs, capabilities, checkpoint and resume, the proxy-validation
loop, the run lifecycle (report, rank) and the command line."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

import evonas
from evonas.cli import main as cli_main
from evonas.config import ComponentConfig, load_config, to_dict
from evonas.errors import (
    CapabilityError,
    ConfigError,
    EvonasError,
    RunDirError,
    UnknownChoiceError,
)
from evonas.runs import RunDir, report_run, resume_run
from evonas.spaces import get_space
from evonas.supernet import (
    SUPERNET,
    PredictorEvaluator,
    SupernetEvaluator,
    SupernetRunConfig,
    SupernetTrainer,
    load_predictor,
    load_supernet,
    load_supernet_evaluator,
    resume_training,
    start_training,
)
from evonas.supernet._run import rank_run, read_records

from _toys import CoreOnlySpace

ROOT = Path(__file__).resolve().parents[1]
SPACE = get_space("nb201")

TINY = [
    "dataset.name=digits",
    "dataset.max_train=192",
    "dataset.max_val=48",
    "dataset.max_test=16",
    "dataset.val_fraction=0.2",
    "supernet.name=nb201",
    "supernet.params.channels=4",
    "supernet.params.cells_per_stage=1",
    "train.batch_size=32",
    "train.steps=8",
    "train.compute.device=cpu",
    "evaluation.bn_batches=1",
    "evaluation.batch_size=32",
    "evaluation.val_images=32",
    "checkpoint_every=3",
    "log_every=2",
    "progress=false",
]
PROXY = ["proxy.every=3", "proxy.archs_per_round=6", "proxy.min_memory=6", "proxy.predictor=linear"]


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _config(overrides: list[str], path: Path | None = None) -> SupernetRunConfig:
    return load_config(SupernetRunConfig, path, overrides)


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_supernet(run_dir).state_dict()


# -------------------------------------------------------------------------------- config
@pytest.mark.parametrize(("overrides", "error", "message"), [
    (["sampler.name=random"], UnknownChoiceError, "unknown sampler 'random'; valid choices: fair, importance, novelty, uniform"),
    (["train.steps=0"], ConfigError, "invalid value 0 for 'train.steps'; expected an integer in [1, 1000000000]"),
    (["train.optim.lr=-1"], ConfigError, "invalid value -1.0 for 'train.optim.lr'; expected a finite number > 0"),
    (["train.stepz=3"], ConfigError, "unknown key 'train.stepz'"),
    (["train.lr=0.1"], ConfigError, "unknown key 'train.lr'; valid keys: archs_per_step, batch_size, compute, optim"),
    (["space.name=nasbench101"], UnknownChoiceError, "unknown search space 'nasbench101'"),
    (["supernet.name=darts"], UnknownChoiceError, "unknown supernet 'darts'; valid choices: nb201"),
    (["supernet.params.channels=0"], ConfigError, "invalid value 0 for 'supernet.params.channels'; expected an integer in [1, 256]"),
    (["evaluation.val_images=0"], ConfigError, "invalid value 0 for 'evaluation.val_images'; expected an integer in [1, 1000000000]"),
    (["train.compute.device=gpu"], ConfigError, "invalid device 'gpu'"),
    (["proxy.every=-1"], ConfigError, "invalid value -1 for 'proxy.every'; expected an integer in [0, 1000000000]"),
    (["proxy.ensemble=0"], ConfigError, "invalid value 0 for 'proxy.ensemble'; expected an integer in [1, 100]"),
    (["proxy.archs_per_round=1"], ConfigError, "invalid value 1 for 'proxy.archs_per_round'; expected an integer >= 2"),
    (["sampler.name=novelty", "sampler.params.k=0"], ConfigError, "invalid value 0 for 'sampler.params.k'"),
])
def test_bad_config_values_raise_one_line_errors(overrides, error, message):
    with pytest.raises(error, match=re.escape(message)) as info:
        _config(TINY + overrides)
    assert "\n" not in str(info.value)


def test_train_section_composes_the_shared_optimiser_and_compute_configs():
    default = _config([]).train
    assert (default.optim.lr, default.optim.grad_clip) == (0.05, 5.0)  # the supernet's defaults
    train = _config(["train.optim.lr=0.2", "train.optim.min_lr=0.01", "train.compute.num_threads=2"]).train
    assert (train.optim.lr, train.optim.min_lr, train.compute.num_threads) == (0.2, 0.01, 2)
    with pytest.raises(ConfigError, match="expected a number <= lr"):
        _config(["train.optim.lr=0.01", "train.optim.min_lr=0.1"])


def test_bad_sampler_or_predictor_fails_before_the_run_directory_exists(tmp_path):
    with pytest.raises(ConfigError, match="unknown key 'sampler.params.kk'"):
        start_training(None, TINY + ["sampler.name=novelty", "sampler.params.kk=1"], run_dir=tmp_path / "a")
    with pytest.raises(UnknownChoiceError, match="unknown predictor 'gea'"):
        start_training(None, TINY + PROXY[:-1] + ["proxy.predictor=gea"], run_dir=tmp_path / "b")
    with pytest.raises(EvonasError, match="unknown hyper-parameter"):
        start_training(None, TINY + PROXY + ["proxy.predictor_params={depth: 3}"], run_dir=tmp_path / "c")
    with pytest.raises(ConfigError, match="'train.batch_size'; expected at most the 192 training images"):
        start_training(None, TINY + ["train.batch_size=500"], run_dir=tmp_path / "d")
    assert not any((tmp_path / d).exists() for d in "abcd")


# ------------------------------------------------------------------------- capabilities
class _ChainSpace(CoreOnlySpace):
    """A plugin space of 3 binary positions with the core protocol only."""

    name = "chain_test"


class _FixedChainSpace(_ChainSpace):
    name = "chain_fixed_test"
    capabilities = frozenset({"fixed_length"})
    length, num_choices = 3, 2


@dataclass(frozen=True)
class _ChainSupernetConfig:
    width: int = 4


@pytest.fixture
def chain_plugin():
    """Two plugin spaces and a supernet registered for each; unregistered afterwards."""
    from evonas.spaces import SPACES
    from evonas.supernet import SUPERNETS

    def factory(config, *, space, num_classes, in_channels):
        raise AssertionError("the capability checks come before any supernet is built")

    evonas.register("space", "chain_test", _ChainSpace)
    evonas.register("space", "chain_fixed_test", _FixedChainSpace)
    for space in ("chain_test", "chain_fixed_test"):
        evonas.register("supernet", space, evonas.Component(_ChainSupernetConfig, factory, space=space))
    yield
    for name in ("chain_test", "chain_fixed_test"):
        SPACES.unregister(name)
        SUPERNETS.unregister(name)


@pytest.mark.parametrize(("overrides", "message"), [
    (["space.name=chain_test"],
     "supernet 'nb201' serves space 'nb201', not the configured space 'chain_test'; supernets for 'chain_test': chain_test"),
    (["space.name=chain_test", "supernet.name=chain_test", "supernet.params={}"],
     ("supernet training (it counts the ops trained per position) needs a search space with fixed_length; "
      "space 'chain_test' does not declare it")),
    (["space.name=chain_fixed_test", "supernet.name=chain_fixed_test", "supernet.params={}"] + PROXY,
     "the proxy loop (proxy.every > 0) needs a search space with enumerable; space 'chain_fixed_test'"),
    (["space.name=chain_fixed_test", "supernet.name=chain_fixed_test", "supernet.params={}", "sampler.name=fair"],
     None),  # the fair sampler only needs fixed_length: it passes the checks; the data come next
])
def test_a_space_lacking_capabilities_fails_on_one_line_before_the_run_exists(chain_plugin, tmp_path, overrides, message):
    if message is None:
        config = _config(TINY + overrides)
        from evonas.supernet import check_capabilities

        check_capabilities(config, config.space.build("space"))
        return
    with pytest.raises(CapabilityError, match=re.escape(message)) as info:
        start_training(None, TINY + overrides, run_dir=tmp_path / "run")
    assert "\n" not in str(info.value)
    assert not (tmp_path / "run").exists()


def test_config_file_paths_are_relative_to_the_file(tmp_path):
    (tmp_path / "c.yaml").write_text("dataset: {name: imagefolder, root: data/x.tar.gz}\ntable: t.csv.gz\nrun_dir: runs/r\n")
    config = _config([], tmp_path / "c.yaml")
    assert config.dataset.root == str(tmp_path / "data" / "x.tar.gz")
    assert config.table == str(tmp_path / "t.csv.gz")
    assert config.run_dir == str(tmp_path / "runs" / "r")
    # on the command line, relative to the current directory
    assert _config(["table=t.csv.gz"], tmp_path / "c.yaml").table == str(Path.cwd() / "t.csv.gz")


def test_shipped_config_is_valid():
    config = _config([], ROOT / "configs" / "supernet-cifar10.yaml")
    assert config.dataset.root == str((ROOT.parent / "shared" / "data" / "images" / "cifar10-jpg.tar.gz").resolve())
    assert config.space == ComponentConfig("nb201", {})
    assert config.supernet == ComponentConfig("nb201", {"channels": 8, "cells_per_stage": 1})
    assert config.sampler.name == "novelty" and config.sampler.params["archive_size"] == 5000  # defaults filled in
    assert (config.train.optim.lr, config.train.optim.grad_clip, config.proxy.predictor) == (0.05, 5.0, "gae")


# ------------------------------------------------------------------- checkpoint / resume
class _Killed(Exception):
    pass


@pytest.mark.parametrize("sampler", [
    ["sampler.name=novelty", "sampler.params.warmup_steps=2"],
    ["sampler.name=fair", "sampler.params.base.name=importance"],
])
def test_resume_after_a_kill_gives_the_weights_of_an_uninterrupted_run(tmp_path, sampler):
    overrides = TINY + PROXY + sampler
    straight = start_training(None, overrides, run_dir=tmp_path / "straight")
    config = _config(overrides)
    run = RunDir.create(tmp_path / "killed", to_dict(config), config.seed, SUPERNET.name)

    def kill(step: int) -> None:
        if step == 5:
            raise _Killed

    trainer = SupernetTrainer(config, run=run, on_step=kill)
    with pytest.raises(_Killed):
        trainer.train()
    run.close()
    assert not (tmp_path / "killed" / "supernet.pt").exists()
    with open(tmp_path / "killed" / "log.jsonl", "a") as log:
        log.write('{"type": "step", "st')  # a record torn by the kill
    resumed = resume_training(tmp_path / "killed")
    a, b = _weights(straight.run_dir), _weights(resumed.run_dir)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    for key in ("steps", "distinct_archs", "images", "proxy_memory", "final_loss", "op_balance"):
        assert straight.summary[key] == resumed.summary[key], key
    # the log tells the same history: the records of steps 4-5 lost in the kill are superseded
    def history(p):
        return [(r["type"], r.get("step"), r.get("archs")) for r in read_records(RunDir.open(p)) if r["type"] != "resume"]

    assert history(straight.run_dir) == history(resumed.run_dir)
    # the run resumed over a torn log ranks like any finished run
    ranked = rank_run(resumed.run_dir, num_archs=3, val_images=16)
    assert len(ranked["scores"]["supernet"]) == 3 and all(np.isfinite(ranked["scores"]["supernet"]))
    # a finished run is not trained again, and cannot be extended
    assert resume_training(resumed.run_dir).summary == resumed.summary
    with pytest.raises(ConfigError, match="--resume takes overrides of none only"):
        resume_run(resumed.run_dir, ["train.steps=20"], kind="supernet")


def test_run_directories_of_another_kind_or_unfinished_are_refused(tmp_path):
    RunDir.create(tmp_path / "s", {}, 0, "search").close()
    with pytest.raises(RunDirError, match="holds a 'search' run, not a 'supernet' run"):
        resume_training(tmp_path / "s")
    RunDir.create(tmp_path / "u", {}, 0, SUPERNET.name).close()
    with pytest.raises(RunDirError, match="has no supernet.pt: training has not finished"):
        load_supernet(tmp_path / "u")


# -------------------------------------------------------------------------- proxy loop
def test_proxy_loop_fills_the_memory_and_fits_the_gae_predictor(tmp_path):
    overrides = TINY + [
        "proxy.every=4", "proxy.archs_per_round=8", "proxy.min_memory=8", "proxy.predictor=gae",
        "proxy.predictor_params={pretrain_archs: 40, pretrain_epochs: 2, epochs: 5, hidden: 8, latent: 4}",
        "sampler.name=importance",
    ]
    result = start_training(None, overrides, run_dir=tmp_path / "p")
    path, summary = result.run_dir, result.summary
    # rounds after steps 4 and 8 (final); the importance sampler gets the predictor each round
    assert summary["proxy_memory"] == 16 and summary["predictor_fitted"]
    records = [r for r in read_records(RunDir.open(path)) if r["type"] == "proxy"]
    assert [(r["step"], r["final"], r["fitted"]) for r in records] == [(4, False, True), (8, True, True)]
    assert np.mean(records[0]["stored"]) == pytest.approx(0.0, abs=1e-9)
    proxy = load_predictor(path)
    assert isinstance(proxy, PredictorEvaluator) and type(proxy.predictor).__name__ == "GAEPredictor"
    assert proxy.space == SPACE and proxy.predictor.space == "nb201"
    archs = [(3, 3, 3, 3, 3, 3), (0, 0, 0, 0, 0, 0)]
    values = [e.metrics["proxy_val_loss"] for e in proxy.evaluate_many(archs)]
    assert np.isfinite(values).all()
    assert proxy.evaluate(archs[0]).metrics["proxy_val_loss"] == values[0]
    ev = load_supernet_evaluator(path)
    assert set(ev.evaluate(archs[0]).metrics) == {"val_loss", "val_acc"}


def test_proxy_rounds_start_late_and_an_ensemble_predictor_is_saved(tmp_path):
    overrides = TINY + [
        "train.steps=12", "proxy.every=3", "proxy.start=5", "proxy.archs_per_round=4", "proxy.min_memory=4",
        "proxy.predictor=rf", "proxy.predictor_params={n_estimators: 4}", "proxy.ensemble=3",
    ]
    result = start_training(None, overrides, run_dir=tmp_path / "s")
    records = [r for r in read_records(RunDir.open(result.run_dir)) if r["type"] == "proxy"]
    # rounds after steps 5, 8 and 11, then the final one; only the final round fits (no feedback sampler)
    assert [(r["step"], r["final"], r["fitted"]) for r in records] == [
        (5, False, False), (8, False, False), (11, False, False), (12, True, True)
    ]
    assert result.summary["proxy_memory"] == 16
    proxy = load_predictor(result.run_dir)
    assert type(proxy.predictor).__name__ == "EnsemblePredictor"
    assert [m.random_state for m in proxy.predictor.estimators_] == [0, 1, 2]


def test_proxy_loop_never_evaluates_held_out_cells():
    from evonas.errors import ArchError

    free = {SPACE.from_ordinal(o) for o in (3, 5, 77, 901, 999, 4242, 12345, 15000)}
    holdout = [a for a in map(SPACE.from_ordinal, range(SPACE.size)) if a not in free]
    config = _config(TINY + PROXY)
    result = SupernetTrainer(config, holdout=holdout).train()
    # rounds after steps 3 and 6 and a final one, 6 cells each, all drawn from the 8 free cells
    seen = result.state.memory.archs()
    assert 6 <= len(seen) and seen <= free
    with pytest.raises(ArchError, match="op indices in 0..4"):
        SupernetTrainer(config, holdout=[(0, 0, 0, 0, 0, 9)])


def test_uniform_run_without_proxy_writes_no_predictor(tmp_path):
    result = start_training(None, TINY + ["train.archs_per_step=2"], run_dir=tmp_path / "u")
    summary = result.summary
    assert load_predictor(result.run_dir) is None and summary["proxy_memory"] == 0
    assert summary["images"] == 8 * 2 * 32 and summary["steps"] == 8
    assert 0 <= summary["sampling_overhead"] < 0.5
    steps = [r["step"] for r in read_records(RunDir.open(result.run_dir)) if r["type"] == "step"]
    assert steps == [2, 4, 6, 8]
    assert "steps: 8" in result.text and "distinct architectures trained:" in result.text


def test_report_draws_the_loss_curve_and_the_proxy_rounds(tmp_path):
    result = start_training(None, TINY + PROXY, run_dir=tmp_path / "r")
    text = report_run(result.run_dir)
    assert (result.run_dir / "report.md").read_text() == text
    for png in ("training_loss.png", "proxy_rounds.png"):
        assert (result.run_dir / png).stat().st_size > 1000 and f"![{png}]({png})" in text
    # rounds after steps 3 and 6 and the final one, each with its 6 architectures
    rows = [line for line in text.splitlines() if re.match(r"\| \d+( \(final\))? \| 6 \|", line)]
    assert [row.split(" | ")[0] for row in rows] == ["| 3", "| 6", "| 8 (final)"]
    assert "status: finished" in text and "predictor fitted: True" in text


# ---------------------------------------------------------------------------------- CLI
def _cli_error(capsys, argv: list[str]) -> str:
    assert cli_main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    return err


def test_rank_checks_its_arguments_before_evaluating_anything(tmp_path, capsys, monkeypatch):
    assert "invalid value 0 for '--num-archs'" in _cli_error(capsys, ["supernet", "rank", str(tmp_path), "--num-archs", "0"])
    assert "invalid value 0 for '--val-images'" in _cli_error(
        capsys, ["supernet", "rank", str(tmp_path), "--num-archs", "5", "--val-images", "0"]
    )
    assert "is not a run directory" in _cli_error(capsys, ["supernet", "rank", str(tmp_path)])
    run = start_training(None, TINY, run_dir=tmp_path / "digits").run_dir

    def never(self, arch, seed=0):
        raise AssertionError("evaluated before the arguments were checked")

    monkeypatch.setattr(SupernetEvaluator, "evaluate", never)
    # digits are no CIFAR-10: a table cannot apply to this run
    err = _cli_error(capsys, ["supernet", "rank", str(run), "--table", str(tmp_path / "nb201.csv.gz")])
    assert "NAS-Bench-201 is no ground truth for it" in err


def test_rank_without_ground_truth_scores_unseen_architectures(tmp_path, capsys):
    run = start_training(None, TINY + PROXY, run_dir=tmp_path / "digits").run_dir
    assert cli_main(["supernet", "rank", str(run), "--num-archs", "4", "--val-images", "16", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "architectures: 4 on 16 validation images each" in out and "no NAS-Bench-201 ground truth" in out
    saved = json.loads((run / "rank.json").read_text())
    assert saved["taus"] is None and len(saved["scores"]["supernet"]) == len(saved["scores"]["proxy"]) == 4
    seen = {tuple(a) for r in read_records(RunDir.open(run)) if r["type"] == "proxy" for a in r["archs"]}
    assert not seen & {tuple(a) for a in saved["archs"]}  # the predictor is scored on unseen architectures


@pytest.mark.slow
def test_cli_train_report_and_rank_on_cifar10_images_against_the_table(tmp_path, shared_data, nb201_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text(
        f"dataset: {{name: imagefolder, root: {shared_data / 'images' / 'cifar10-jpg-small.tar.gz'}, "
        "val_fraction: 0.2, max_train: 512, max_val: 64}\n"
        "supernet: {name: nb201, params: {channels: 4, cells_per_stage: 1}}\n"
        "train: {steps: 6, batch_size: 32, compute: {device: cpu}}\n"
        "evaluation: {bn_batches: 1, batch_size: 32, val_images: 32}\n"
        "proxy: {every: 3, archs_per_round: 5, min_memory: 5, predictor: linear}\n"
        f"table: {nb201_path}\n"
        "log_every: 2\n"
    )
    run = tmp_path / "run"
    assert cli_main(["supernet", "train", "--config", str(config), "--run-dir", str(run), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "distinct architectures trained: 6" in out
    assert cli_main(["supernet", "train", "--resume", str(run), "--no-progress"]) == 0  # finished: nothing to do
    assert capsys.readouterr().out == out
    rank = ["supernet", "rank", str(run), "--num-archs", "12", "--val-images", "48", "--no-progress"]
    assert cli_main(rank) == 0
    out = capsys.readouterr().out
    assert "Kendall tau against NAS-Bench-201 cifar10-valid_valid_acc" in out and "baseline: parameter count" in out
    assert "12 on 48 validation images each" in out and "supernet, by validation loss" in out
    saved = json.loads((run / "rank.json").read_text())
    assert saved["num_archs"] == 12 and set(saved["taus"]) == {"supernet", "supernet_loss", "proxy", "params", "conv3x3"}
    assert saved["val_images"] == 48
    seen = {tuple(a) for r in read_records(RunDir.open(run)) if r["type"] == "proxy" for a in r["archs"]}
    assert not seen & {tuple(a) for a in saved["archs"]}  # the predictor is ranked on unseen architectures
    assert all(-1 <= t <= 1 for t in saved["taus"].values())
    assert cli_main(["report", str(run)]) == 0
    report = capsys.readouterr().out
    assert "## Ranking" in report and "baseline: parameter count" in report and (run / "proxy_rounds.png").exists()


# ------------------------------------------------------------------- search evaluators
def test_evaluator_components_for_search_configs(tmp_path, chain_plugin):
    from evonas.config import from_dict
    from evonas.supernet._components import (
        ProxyEvaluatorConfig,
        SupernetEvaluatorConfig,
        build_proxy_evaluator,
        build_supernet_evaluator,
    )

    path = start_training(None, TINY + PROXY, run_dir=tmp_path / "r").run_dir
    config = from_dict(SupernetEvaluatorConfig, {"run_dir": "r"}, "evaluator.params", base=tmp_path)
    assert config.run_dir == str(path)  # relative to the config file's folder
    ev = build_supernet_evaluator(config, space=SPACE)
    assert ev.metric_names == ("val_loss", "val_acc") and ev.space == SPACE
    proxy = build_proxy_evaluator(ProxyEvaluatorConfig(str(path)), space=SPACE)
    assert proxy.metric_names == ("proxy_val_loss",)
    with pytest.raises(CapabilityError, match="was trained on space 'nb201', not the configured space 'chain_test'"):
        build_proxy_evaluator(ProxyEvaluatorConfig(str(path)), space=get_space("chain_test"))
    with pytest.raises(ConfigError, match="invalid value -1 for 'actors'; expected an integer in \\[0, 1024\\]"):
        SupernetEvaluatorConfig(str(path), actors=-1)
    bare = start_training(None, TINY, run_dir=tmp_path / "bare").run_dir
    with pytest.raises(RunDirError, match="has no proxy predictor; train it with proxy.every > 0"):
        build_proxy_evaluator(ProxyEvaluatorConfig(str(bare)), space=SPACE)


def test_search_configs_use_a_supernet_run_as_evaluator(tmp_path):
    """``evaluator: {name: proxy | supernet}`` in an ``evonas search`` config, with the
    neighbourhood-aware fitness scoring every neighbour through the proxy predictor."""
    import yaml

    from evonas.evaluation import EVALUATORS
    from evonas.search import SearchConfig, start_search

    assert {"supernet", "proxy"} <= set(EVALUATORS.names())
    path = start_training(None, TINY + PROXY, run_dir=tmp_path / "r").run_dir

    def config(evaluator: str, run_dir: Path, objective: str, fitness: str, evaluations: int) -> Path:
        cfg = {
            "seed": 0,
            "evaluator": {"name": evaluator, "params": {"run_dir": str(run_dir)}},
            "fitness": {"name": fitness, "objectives": [{"metric": objective, "direction": "min"}]},
            "strategy": {"name": "rea", "params": {"population_size": 4, "tournament_size": 2}},
            "budget": {"evaluations": evaluations},
            "progress": False,
        }
        file = tmp_path / f"{evaluator}-{fitness}.yaml"
        file.write_text(yaml.safe_dump(cfg))
        return file

    def scored(run: Path) -> list[dict]:
        records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
        return [r for r in records if r["type"] == "eval"]

    shipped = ROOT / "configs" / "supernet-na-rea.yaml"
    # the shipped config's run_dir is relative to the config file
    assert load_config(SearchConfig, shipped).evaluator.params["run_dir"] == str(ROOT / "runs" / "supernet-cifar10")
    overrides = [f"evaluator.params.run_dir={path}", "budget.evaluations=80", "progress=false"]
    result = start_search(shipped, overrides, run_dir=tmp_path / "na")
    evals = scored(tmp_path / "na")
    assert len(evals) >= 25 and result.summary["best"]["arch"].startswith("|")  # a cell and its 24 neighbours
    predictor = load_predictor(path)
    for r in evals[:5]:
        expected = predictor.evaluate(tuple(r["arch"])).metrics["proxy_val_loss"]
        assert r["evaluation"]["metrics"]["proxy_val_loss"] == pytest.approx(expected)

    start_search(config("supernet", path, "val_loss", "plain", 6), run_dir=tmp_path / "sn")
    evals = scored(tmp_path / "sn")
    assert len(evals) == 6
    assert all(0.0 <= r["evaluation"]["metrics"]["val_acc"] <= 100.0 for r in evals)

    with pytest.raises(RunDirError):
        start_search(config("proxy", tmp_path / "missing", "proxy_val_loss", "plain", 4), run_dir=tmp_path / "never")
    assert not (tmp_path / "never").exists()


def test_supernet_and_proxy_evaluators_pass_the_table_s_ground_truth_through(tmp_path, nb201_path):
    """``tables`` + ``report`` on a supernet-run evaluator: every evaluation records the true
    accuracy, the search's ``report:`` headlines it, and the fitness still sees only the proxy."""
    import yaml

    from evonas.search import start_search
    from evonas.tabular import NB201Table

    path = start_training(None, TINY + PROXY, run_dir=tmp_path / "r").run_dir
    truth = {"tables": [{"name": "nb201", "params": {"path": str(nb201_path)}}], "report": ["cifar10_test_acc"]}
    table = NB201Table.load(nb201_path)
    for evaluator, objective in (("proxy", "proxy_val_loss"), ("supernet", "val_loss")):
        cfg = {
            "seed": 0,
            "evaluator": {"name": evaluator, "params": {"run_dir": str(path), **truth}},
            "fitness": {"name": "neighbourhood" if evaluator == "proxy" else "plain",
                        "objectives": [{"metric": objective, "direction": "min"}]},
            "strategy": {"name": "rea", "params": {"population_size": 3, "tournament_size": 2}},
            "budget": {"evaluations": 60 if evaluator == "proxy" else 5},
            "report": "cifar10_test_acc",
            "progress": False,
        }
        file = tmp_path / f"{evaluator}.yaml"
        file.write_text(yaml.safe_dump(cfg))
        result = start_search(file, run_dir=tmp_path / f"search-{evaluator}")
        best = result.summary["best"]
        arch = SPACE.parse(best["arch"])
        assert best["headline"] == {"cifar10_test_acc": table.query(arch, "cifar10_test_acc")}
        records = [json.loads(line) for line in (tmp_path / f"search-{evaluator}" / "log.jsonl").read_text().splitlines()]
        for r in [r for r in records if r["type"] == "eval"][:10]:
            assert r["evaluation"]["metrics"]["cifar10_test_acc"] == table.query(tuple(r["arch"]), "cifar10_test_acc")
        assert "fitness/cifar10_test_acc" not in best["metrics"]
    with pytest.raises(ConfigError, match="report names table metrics \\['cifar10_test_acc'\\] but no tables are given"):
        start_search(file, ["evaluator.params.tables=[]"], run_dir=tmp_path / "bad")
    with pytest.raises(UnknownChoiceError, match="unknown table metric 'acc'"):
        start_search(file, ["evaluator.params.report=[acc]"], run_dir=tmp_path / "bad")
    assert not (tmp_path / "bad").exists()


def test_a_diverging_supernet_stops_and_fails(tmp_path, capsys):
    """Weights that are no longer finite end the training at once (no further steps, no
    final proxy round); the run is a failure: exit 1 with the reason on one line."""
    run = tmp_path / "diverged"
    config = tmp_path / "diverging.yaml"
    config.write_text("dataset: {name: digits}\n")
    argv = ["supernet", "train", "--config", str(config), "--run-dir", str(run), *TINY, *PROXY, "train.steps=40",
            "train.optim.lr=1e30", "train.optim.grad_clip=null", "train.warmup_steps=0"]
    assert cli_main(argv) == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert "supernet training diverged" in last
    records = read_records(RunDir.open(run))
    stop = [r for r in records if r["type"] == "diverged"]
    assert len(stop) == 1 and stop[0]["step"] < 40
    assert not any(r["type"] == "proxy" and r.get("final") for r in records)
    summary = json.loads((run / "result.json").read_text())
    assert summary["steps"] == stop[0]["step"] and summary["final_loss"] == "nan"
