"""Supernet training: configs, checkpoint and resume, the proxy-validation loop, the CLI."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from evonas.errors import ConfigError, EvonasError, RunDirError, UnknownChoiceError
from evonas.runs import RunDir
from evonas.supernet import (
    KIND,
    PredictorEvaluator,
    SupernetRunConfig,
    SupernetTrainer,
    load_predictor,
    load_supernet,
    load_supernet_evaluator,
    resume_training,
    start_training,
)
from evonas.supernet._cli import main as supernet_main
from evonas.supernet._run import load_run_config, read_records

ROOT = Path(__file__).resolve().parents[1]

TINY = [
    "dataset.name=digits",
    "dataset.max_train=192",
    "dataset.max_val=48",
    "dataset.max_test=16",
    "dataset.val_fraction=0.2",
    "supernet.channels=4",
    "supernet.cells_per_stage=1",
    "train.batch_size=32",
    "train.steps=8",
    "train.device=cpu",
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


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_supernet(run_dir).state_dict()


# -------------------------------------------------------------------------------- config
@pytest.mark.parametrize(("overrides", "error", "message"), [
    (["sampler.name=random"], EvonasError, "unknown sampler 'random'; valid choices: fair, importance, novelty, uniform"),
    (["train.steps=0"], ConfigError, "train.steps must be an integer >= 1; got 0"),
    (["train.lr=-1"], ConfigError, "train.lr must be a number > 0.0; got -1"),
    (["train.stepz=3"], ConfigError, "unknown key 'train.stepz'"),
    (["space=nasbench101"], EvonasError, "unknown search space 'nasbench101'"),
    (["evaluation.val_images=0"], ConfigError, "evaluation.val_images must be an integer >= 1 or null; got 0"),
    (["train.device=gpu"], ConfigError, "train.device: invalid device 'gpu'"),
    (["proxy.every=-1"], ConfigError, "proxy.every must be an integer >= 0; got -1"),
    (["proxy.ensemble=0"], ConfigError, "proxy.ensemble must be an integer >= 1; got 0"),
])
def test_bad_config_values_raise_one_line_errors(overrides, error, message):
    with pytest.raises(error, match=message):
        load_run_config(None, TINY + overrides)


def test_bad_sampler_or_predictor_fails_before_the_run_directory_exists(tmp_path):
    with pytest.raises(ConfigError, match="unknown key 'sampler.params.kk'"):
        start_training(None, TINY + ["sampler.name=novelty", "sampler.params.kk=1"], run_dir=tmp_path / "a")
    with pytest.raises(UnknownChoiceError, match="unknown predictor 'gea'"):
        start_training(None, TINY + PROXY[:-1] + ["proxy.predictor=gea"], run_dir=tmp_path / "b")
    with pytest.raises(EvonasError, match="unknown hyper-parameter"):
        start_training(None, TINY + PROXY + ["proxy.predictor_params={depth: 3}"], run_dir=tmp_path / "c")
    assert not any((tmp_path / d).exists() for d in "abc")


def test_config_file_paths_are_relative_to_the_file(tmp_path):
    (tmp_path / "c.yaml").write_text("dataset: {name: imagefolder, root: data/x.tar.gz}\ntable: t.csv.gz\n")
    config = load_run_config(tmp_path / "c.yaml")
    assert config.dataset.root == str(tmp_path / "data" / "x.tar.gz")
    assert config.table == str(tmp_path / "t.csv.gz")


def test_shipped_config_is_valid():
    config = load_run_config(ROOT / "configs" / "supernet-cifar10.yaml")
    assert config.dataset.root == str((ROOT.parent / "shared" / "data" / "images" / "cifar10-jpg.tar.gz").resolve())
    assert config.space == "nb201" and config.proxy.predictor == "gae"


# ------------------------------------------------------------------- checkpoint / resume
class _Killed(Exception):
    pass


@pytest.mark.parametrize("sampler", [
    ["sampler.name=novelty", "sampler.params.warmup_steps=2"],
    ["sampler.name=fair", "sampler.params.base=importance"],
])
def test_resume_after_a_kill_gives_the_weights_of_an_uninterrupted_run(tmp_path, sampler):
    overrides = TINY + PROXY + sampler
    straight, summary = start_training(None, overrides, run_dir=tmp_path / "straight")
    config = load_run_config(None, overrides)
    run = RunDir.create(tmp_path / "killed", _resolved(config), config.seed, KIND)

    def kill(step: int) -> None:
        if step == 5:
            raise _Killed

    trainer = SupernetTrainer(config, run=run, on_step=kill)
    with pytest.raises(_Killed):
        trainer.train()
    run.close()
    assert not (tmp_path / "killed" / "supernet.pt").exists()
    path, resumed = resume_training(tmp_path / "killed")
    a, b = _weights(straight), _weights(path)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    for key in ("steps", "distinct_archs", "images", "proxy_memory", "final_loss", "op_balance"):
        assert summary[key] == resumed[key], key
    # the log tells the same history: the records of steps 4-5 lost in the kill are superseded
    def history(p):
        return [(r["type"], r.get("step"), r.get("archs")) for r in read_records(RunDir.open(p)) if r["type"] != "resume"]

    assert history(straight) == history(path)
    # a finished run is not trained again
    assert resume_training(path)[1] == resumed


def _resolved(config: SupernetRunConfig) -> dict:
    from evonas.supernet._config import resolved_dict

    return resolved_dict(config)


def test_run_directories_of_another_kind_or_unfinished_are_refused(tmp_path):
    RunDir.create(tmp_path / "s", {}, 0, "search").close()
    with pytest.raises(RunDirError, match="holds a 'search' run, not a 'supernet' run"):
        resume_training(tmp_path / "s")
    RunDir.create(tmp_path / "u", {}, 0, KIND).close()
    with pytest.raises(RunDirError, match="has no supernet.pt: training has not finished"):
        load_supernet(tmp_path / "u")


# -------------------------------------------------------------------------- proxy loop
def test_proxy_loop_fills_the_memory_and_fits_the_gae_predictor(tmp_path):
    overrides = TINY + [
        "proxy.every=4", "proxy.archs_per_round=8", "proxy.min_memory=8", "proxy.predictor=gae",
        "proxy.predictor_params={pretrain_archs: 40, pretrain_epochs: 2, epochs: 5, hidden: 8, latent: 4}",
        "sampler.name=importance",
    ]
    path, summary = start_training(None, overrides, run_dir=tmp_path / "p")
    # rounds after steps 4 and 8 (final); the importance sampler gets the predictor each round
    assert summary["proxy_memory"] == 16 and summary["predictor_fitted"]
    records = [r for r in read_records(RunDir.open(path)) if r["type"] == "proxy"]
    assert [(r["step"], r["final"], r["fitted"]) for r in records] == [(4, False, True), (8, True, True)]
    assert np.mean(records[0]["stored"]) == pytest.approx(0.0, abs=1e-9)
    proxy = load_predictor(path)
    assert isinstance(proxy, PredictorEvaluator) and type(proxy.predictor).__name__ == "GAEPredictor"
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
    path, summary = start_training(None, overrides, run_dir=tmp_path / "s")
    records = [r for r in read_records(RunDir.open(path)) if r["type"] == "proxy"]
    # rounds after steps 5, 8 and 11, then the final one; only the final round fits (no feedback sampler)
    assert [(r["step"], r["final"], r["fitted"]) for r in records] == [
        (5, False, False), (8, False, False), (11, False, False), (12, True, True)
    ]
    assert summary["proxy_memory"] == 16
    proxy = load_predictor(path)
    assert type(proxy.predictor).__name__ == "EnsemblePredictor"
    assert [m.random_state for m in proxy.predictor.estimators_] == [0, 1, 2]


def test_proxy_loop_never_evaluates_held_out_cells():
    from evonas.errors import ArchError
    from evonas.spaces import NB201Space

    space = NB201Space()
    free = {space.from_ordinal(o) for o in (3, 5, 77, 901, 999, 4242, 12345, 15000)}
    holdout = [a for a in map(space.from_ordinal, range(space.size)) if a not in free]
    config = load_run_config(None, TINY + PROXY)
    result = SupernetTrainer(config, holdout=holdout).train()
    # rounds after steps 3 and 6 and a final one, 6 cells each, all drawn from the 8 free cells
    seen = result.state.memory.archs()
    assert 6 <= len(seen) and seen <= free
    with pytest.raises(ArchError, match="op indices in 0..4"):
        SupernetTrainer(config, holdout=[(0, 0, 0, 0, 0, 9)])


def test_uniform_run_without_proxy_writes_no_predictor(tmp_path):
    path, summary = start_training(None, TINY + ["train.archs_per_step=2"], run_dir=tmp_path / "u")
    assert load_predictor(path) is None and summary["proxy_memory"] == 0
    assert summary["images"] == 8 * 2 * 32 and summary["steps"] == 8
    assert 0 <= summary["sampling_overhead"] < 0.5
    steps = [r["step"] for r in read_records(RunDir.open(path)) if r["type"] == "step"]
    assert steps == [2, 4, 6, 8]


# ---------------------------------------------------------------------------------- CLI
def _ns(**kw) -> argparse.Namespace:
    base = dict(action="train", config=None, resume=None, run_dir=None, no_progress=True, overrides=[])
    base.update(kw)
    return argparse.Namespace(**base)


def test_cli_rejects_bad_combinations(tmp_path):
    with pytest.raises(EvonasError, match="needs --config PATH"):
        supernet_main(_ns())
    with pytest.raises(EvonasError, match="--resume takes no --config, overrides or --run-dir"):
        supernet_main(_ns(resume=str(tmp_path), overrides=["seed=1"]))
    with pytest.raises(EvonasError, match="unknown supernet action 'eval'"):
        supernet_main(_ns(action="eval"))
    with pytest.raises(ConfigError, match="--num-archs must be a positive integer; got 0"):
        supernet_main(argparse.Namespace(action="rank", run_dir=str(tmp_path), table=None, num_archs=0))
    with pytest.raises(ConfigError, match="--val-images must be a positive integer; got 0"):
        supernet_main(argparse.Namespace(action="rank", run_dir=str(tmp_path), table=None, num_archs=5, val_images=0))


@pytest.mark.slow
def test_cli_train_and_rank_on_cifar10_images_against_the_table(tmp_path, shared_data, nb201_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text(
        f"dataset: {{name: imagefolder, root: {shared_data / 'images' / 'cifar10-jpg-small.tar.gz'}, "
        "val_fraction: 0.2, max_train: 512, max_val: 64}\n"
        "supernet: {channels: 4, cells_per_stage: 1}\n"
        "train: {steps: 6, batch_size: 32, device: cpu}\n"
        "evaluation: {bn_batches: 1, batch_size: 32, val_images: 32}\n"
        "proxy: {every: 3, archs_per_round: 5, min_memory: 5, predictor: linear}\n"
        f"table: {nb201_path}\n"
    )
    assert supernet_main(_ns(config=str(config), run_dir=str(tmp_path / "run"))) == 0
    out = capsys.readouterr().out
    assert "distinct architectures trained: 6" in out
    rank = argparse.Namespace(action="rank", run_dir=str(tmp_path / "run"), table=None, num_archs=12, no_progress=True,
                              val_images=48)
    assert supernet_main(rank) == 0
    out = capsys.readouterr().out
    assert "Kendall tau against NAS-Bench-201 cifar10-valid_valid_acc" in out and "baseline: parameter count" in out
    assert "12 on 48 validation images each" in out and "supernet, by validation loss" in out
    saved = json.loads((tmp_path / "run" / "rank.json").read_text())
    assert saved["num_archs"] == 12 and set(saved["taus"]) == {"supernet", "supernet_loss", "proxy", "params", "conv3x3"}
    assert saved["val_images"] == 48
    seen = {tuple(a) for r in read_records(RunDir.open(tmp_path / "run")) if r["type"] == "proxy" for a in r["archs"]}
    assert not seen & {tuple(a) for a in saved["archs"]}  # the predictor is ranked on unseen architectures
    assert all(-1 <= t <= 1 for t in saved["taus"].values())


def test_evaluator_components_for_search_configs(tmp_path):
    from evonas.config import from_dict
    from evonas.supernet._components import (
        ProxyEvaluatorConfig,
        SupernetEvaluatorConfig,
        build_proxy_evaluator,
        build_supernet_evaluator,
    )

    path, _ = start_training(None, TINY + PROXY, run_dir=tmp_path / "r")
    ev = build_supernet_evaluator(from_dict(SupernetEvaluatorConfig, {"run_dir": str(path)}, "evaluator.params"))
    assert ev.metric_names == ("val_loss", "val_acc")
    proxy = build_proxy_evaluator(ProxyEvaluatorConfig(str(path)))
    assert proxy.metric_names == ("proxy_val_loss",)
    with pytest.raises(ConfigError, match="evaluator.params.actors must be an integer >= 0; got -1"):
        SupernetEvaluatorConfig(str(path), actors=-1)
    bare, _ = start_training(None, TINY, run_dir=tmp_path / "bare")
    with pytest.raises(RunDirError, match="has no proxy predictor; train it with proxy.every > 0"):
        build_proxy_evaluator(ProxyEvaluatorConfig(str(bare)))



def test_search_configs_use_a_supernet_run_as_evaluator(tmp_path):
    """``evaluator: {name: proxy | supernet}`` in an ``evonas search`` config, with the
    neighbourhood-aware fitness scoring every neighbour through the proxy predictor."""
    import yaml

    from evonas.evaluation import EVALUATORS
    from evonas.search import start_search

    assert {"supernet", "proxy"} <= set(EVALUATORS.names())
    path, _ = start_training(None, TINY + PROXY, run_dir=tmp_path / "r")

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
