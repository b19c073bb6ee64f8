"""Supernet runs in run directories: start, resume, load, rank.

Layout (besides :class:`evonas.runs.RunDir`'s ``config.yaml``, ``meta.yaml``,
``log.jsonl``, ``checkpoint.pkl`` and ``result.json``)::

    supernet.pt     final weights and the network's size
    predictor.pkl   the fitted proxy predictor (when the proxy loop ran)
    rank.json       written by ``evonas supernet rank``

The log holds ``step`` records (loss, learning rate, distinct architectures), ``proxy``
records (the evaluated architectures and their losses) and a ``resume`` record each
time the run was resumed; records of steps after the checkpoint a resume started from
describe lost work and are superseded by the ones written after the ``resume`` record.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

from evonas.config import apply_overrides, from_dict, read_yaml
from evonas.data import CIFAR10_CLASSES
from evonas.errors import ConfigError, RunDirError
from evonas.runs import RESULT, RunDir, atomic_write_bytes
from evonas.supernet._config import SupernetRunConfig, resolve_paths, resolved_dict
from evonas.supernet._evaluator import SupernetEvaluator, _load_splits
from evonas.supernet._network import SuperNet
from evonas.supernet._proxy import PredictorEvaluator
from evonas.supernet._rank import TABLE_METRIC, RankResult, rank_architectures, supernet_scores, unseen_architectures
from evonas.supernet._trainer import PREDICTOR, WEIGHTS, SupernetResult, SupernetTrainer

KIND = "supernet"
RANK = "rank.json"


def load_run_config(
    config_path: str | os.PathLike[str] | None, overrides: list[str] | tuple[str, ...] = ()
) -> SupernetRunConfig:
    """Read, override and validate a supernet config; relative paths in the file are
    relative to the file, those in overrides to the working directory."""
    data = read_yaml(config_path) if config_path is not None else {}
    if config_path is not None:
        data = resolve_paths(data, Path(config_path).resolve().parent)
    data = resolve_paths(apply_overrides(data, list(overrides)), Path.cwd())
    return from_dict(SupernetRunConfig, data)


def default_run_dir(config_path: str | os.PathLike[str] | None) -> Path:
    stem = Path(config_path).stem if config_path else "supernet"
    return Path("runs") / f"{stem}-{_dt.datetime.now().strftime('%Y%m%d-%H%M%S')}"


def start_training(
    config_path: str | os.PathLike[str] | None,
    overrides: list[str] | tuple[str, ...] = (),
    run_dir: str | os.PathLike[str] | None = None,
    progress: bool | None = None,
) -> tuple[Path, dict[str, Any]]:
    """Validate a config, load the data, create the run directory and train.

    Everything is checked (and the data loaded) before the directory is created, so a bad
    config leaves nothing behind. Returns the run directory and the summary.
    """
    config = load_run_config(config_path, overrides)
    resolved = resolved_dict(config)
    splits = config.dataset.load()
    trainer_probe = SupernetTrainer(config, splits=splits)  # validates sampler, predictor, device
    path = Path(run_dir) if run_dir is not None else Path(config.run_dir) if config.run_dir else default_run_dir(config_path)
    run = RunDir.create(path, resolved, config.seed, KIND)
    try:
        trainer_probe.run = run
        trainer_probe.progress = config.progress if progress is None else progress
        return run.path, _finish(run, trainer_probe, trainer_probe.train())
    finally:
        run.close()


def resume_training(run_dir: str | os.PathLike[str], progress: bool | None = None) -> tuple[Path, dict[str, Any]]:
    """Continue the run in ``run_dir`` from its latest checkpoint (kill-safe).

    A finished run is not trained again; its summary is returned.
    """
    run = RunDir.open(run_dir, kind=KIND)
    run.lock()
    try:
        config = from_dict(SupernetRunConfig, run.config)
        if (run.path / RESULT).exists():
            import json

            return run.path, json.loads((run.path / RESULT).read_text())
        trainer = SupernetTrainer(config, run=run, progress=config.progress if progress is None else progress)
        payload = run.load_checkpoint()
        state = trainer.restore(payload) if payload is not None else None
        run.append({"type": "resume", "from_step": 0 if state is None else state.step})
        return run.path, _finish(run, trainer, trainer.train(state))
    finally:
        run.close()


def _finish(run: RunDir, trainer: SupernetTrainer, result: SupernetResult) -> dict[str, Any]:
    model = result.model
    payload = {
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "C": model.C, "N": model.N, "num_classes": model.num_classes, "in_channels": model.in_channels,
    }
    tmp = run.path / f".{WEIGHTS}.tmp"
    torch.save(payload, tmp)
    os.replace(tmp, run.path / WEIGHTS)
    if result.state.predictor is not None:
        atomic_write_bytes(run.path / PREDICTOR, pickle.dumps(result.state.predictor, protocol=pickle.HIGHEST_PROTOCOL))
    summary = _jsonable(result.summary)
    run.write_json(RESULT, summary)
    return summary


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.floating, float)):
        v = float(value)
        return v if np.isfinite(v) else repr(v)
    if isinstance(value, np.integer):
        return int(value)
    return value


def read_records(run: RunDir) -> list[dict[str, Any]]:
    """The log records that describe the run's actual history (see the module docstring)."""
    out: list[dict[str, Any]] = []
    for rec in run.read_log():
        if rec.get("type") == "resume":
            out = [r for r in out if r.get("step", 0) <= rec["from_step"] or r.get("type") == "resume"]
        out.append(rec)
    return out


# ----------------------------------------------------------------------------- loading
def _open_finished(run_dir: str | os.PathLike[str]) -> tuple[RunDir, SupernetRunConfig]:
    run = RunDir.open(run_dir, kind=KIND)
    if not (run.path / WEIGHTS).is_file():
        raise RunDirError(
            f"run directory {str(run.path)!r} has no {WEIGHTS}: training has not finished; "
            f"continue it with 'evonas supernet train --resume {str(run.path)}'"
        )
    return run, from_dict(SupernetRunConfig, run.config)


def load_supernet_evaluator(run_dir: str | os.PathLike[str], device: str = "cpu") -> SupernetEvaluator:
    """A :class:`SupernetEvaluator` with the final weights of a finished run."""
    run, config = _open_finished(run_dir)
    payload = torch.load(run.path / WEIGHTS, map_location="cpu", weights_only=True)
    from evonas.supernet._config import SupernetSpec

    return SupernetEvaluator(
        payload["state_dict"], SupernetSpec(payload["C"], payload["N"]), config.dataset, config.evaluation,
        num_classes=payload["num_classes"], in_channels=payload["in_channels"], device=device,
        data_seed=config.seed, num_threads=config.train.num_threads,
    )


def load_supernet(run_dir: str | os.PathLike[str]) -> SuperNet:
    """The trained supernet of a finished run (on the CPU, eval mode)."""
    run, _ = _open_finished(run_dir)
    payload = torch.load(run.path / WEIGHTS, map_location="cpu", weights_only=True)
    net = SuperNet(payload["C"], payload["N"], payload["num_classes"], payload["in_channels"])
    net.load_state_dict(payload["state_dict"])
    return net.eval()


def load_predictor(run_dir: str | os.PathLike[str]) -> PredictorEvaluator | None:
    """The proxy predictor of a finished run as an evaluator, or None if none was fitted."""
    run, _ = _open_finished(run_dir)
    path = run.path / PREDICTOR
    if not path.is_file():
        return None
    try:
        predictor = pickle.loads(path.read_bytes())
    except Exception as exc:  # a corrupt file: say which
        raise RunDirError(f"{str(path)!r} cannot be read ({type(exc).__name__})") from None
    return PredictorEvaluator(predictor)


# ----------------------------------------------------------------------------- ranking
def is_cifar10(splits: Any) -> bool:
    """Whether the data are CIFAR-10 (its classes, 32x32), so NAS-Bench-201 applies."""
    return tuple(splits.classes) == CIFAR10_CLASSES and tuple(splits.image_size) == (32, 32)


def rank_run(
    run_dir: str | os.PathLike[str],
    table: str | os.PathLike[str] | None = None,
    num_archs: int = 200,
    progress: bool = False,
    val_images: int | None = None,
) -> dict[str, Any]:
    """Evaluate ``num_archs`` random architectures with the run's supernet (and predictor).

    ``val_images`` (default: the run's ``evaluation.val_images``) sets how many
    validation images each architecture is measured on. More is slower but steadier: on
    a CIFAR-10 supernet, two disjoint sets of 1000 images ranked 200 cells at Kendall tau
    0.58 against each other by accuracy (0.78 by loss), and 3000 images raised the tau
    against the table from 0.18 to 0.25 (loss: 0.31 to 0.35). The tau of the validation
    loss (``supernet_loss``, lower loss ranked higher) is reported next to accuracy's.

    Architectures are drawn (seeded by the run seed) among those the proxy memory never
    saw, so the predictor's figure is on unseen architectures. When the data are CIFAR-10
    and the space nb201, Kendall tau against the table's ``cifar10-valid_valid_acc`` is
    reported for the supernet, the predictor and the trivial baselines. The result is
    written to ``rank.json`` in the run directory and returned.

    Raises:
        ConfigError: ``num_archs`` or ``val_images`` is not a positive integer.
        RunDirError: The run has not finished.
        DataError: The table is missing.
    """
    if isinstance(num_archs, bool) or not isinstance(num_archs, int) or num_archs < 1:
        raise ConfigError(f"--num-archs must be a positive integer; got {num_archs!r}")
    if val_images is not None and (isinstance(val_images, bool) or not isinstance(val_images, int) or val_images < 1):
        raise ConfigError(f"--val-images must be a positive integer; got {val_images!r}")
    run, config = _open_finished(run_dir)
    evaluator = load_supernet_evaluator(run_dir)
    if val_images is not None:
        evaluator.config = dataclasses.replace(evaluator.config, val_images=val_images)
    predictor = load_predictor(run_dir)
    seen = _memory_archs(run)
    archs = unseen_architectures(evaluator.space, seen, config.seed, num_archs)
    iterator = archs
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(archs, desc="rank", unit="arch")
    evals = [evaluator.evaluate(a) for a in iterator]
    acc = [e.metrics["val_acc"] for e in evals]
    proxy = [e.metrics[predictor.metric] for e in predictor.evaluate_many(archs)] if predictor is not None else None
    loss = [e.metrics["val_loss"] for e in evals]
    out: dict[str, Any] = {
        "num_archs": len(archs),
        "val_images": int(evals[0].info["images"]) if evals else 0,
        "mean_val_acc": float(np.mean(acc)),
        "seconds_per_arch": float(np.mean([e.cost for e in evals])),
        "taus": None,
    }
    if is_cifar10(_load_splits(config.dataset)):
        from evonas.tabular import NB201Table

        tbl = NB201Table.load(table if table is not None else config.table)
        result: RankResult = rank_architectures(archs, tbl, acc, proxy, TABLE_METRIC, supernet_loss=loss)
        out.update(result.to_dict())
    else:
        out["note"] = "the data are not CIFAR-10 at 32x32: no NAS-Bench-201 ground truth to rank against"
        out["archs"] = [list(a) for a in archs]
        out["scores"] = supernet_scores(acc, proxy, loss)
    run.write_json(RANK, _jsonable(out))
    return out


def _memory_archs(run: RunDir) -> set[tuple[int, ...]]:
    seen: set[tuple[int, ...]] = set()
    for rec in read_records(run):
        if rec.get("type") == "proxy":
            seen.update(tuple(a) for a in rec["archs"])
    return seen


# ----------------------------------------------------------------------------- printing
def format_train_summary(summary: dict[str, Any], run_dir: Path | None = None) -> str:
    """A few lines for the terminal."""
    lines = [] if run_dir is None else [f"run directory: {run_dir}"]
    lines.append(
        f"steps: {summary['steps']} ({summary['epochs']} epochs); distinct architectures trained: "
        f"{summary['distinct_archs']}; op balance: {_f(summary['op_balance'])}"
    )
    lines.append(
        f"throughput: {_f(summary['throughput_img_s'])} path-images/s; sampling overhead: "
        f"{_f(100 * summary['sampling_overhead'] if isinstance(summary['sampling_overhead'], float) else summary['sampling_overhead'])}%; "
        f"final training loss: {_f(summary['final_loss'])}"
    )
    if summary.get("proxy_memory"):
        lines.append(
            f"proxy memory: {summary['proxy_memory']} evaluations; predictor fitted: {summary['predictor_fitted']}"
        )
    return "\n".join(lines)


def format_rank(out: dict[str, Any]) -> str:
    """The ranking table for the terminal."""
    lines = [f"architectures: {out['num_archs']} on {out.get('val_images', '?')} validation images each; "
             f"mean supernet val_acc {out['mean_val_acc']:.2f}%; "
             f"{out['seconds_per_arch']:.2f} s per architecture"]
    if out.get("taus") is None:
        lines.append(out.get("note", "no ground truth"))
        return "\n".join(lines)
    lines.append(f"Kendall tau against NAS-Bench-201 {out['metric']} (200 epochs):")
    names = {"supernet": "supernet (inherited weights)", "supernet_loss": "supernet, by validation loss", "proxy": "proxy predictor (unseen archs)",
             "params": "baseline: parameter count", "conv3x3": "baseline: number of 3x3 convs"}
    for key, label in names.items():
        if key in out["taus"]:
            lines.append(f"  {label:<32} {out['taus'][key]:+.3f}")
    return "\n".join(lines)


def _f(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)
