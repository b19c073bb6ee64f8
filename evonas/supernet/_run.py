"""Supernet runs: the ``supernet`` run kind (train, resume, summary, report), loading a
finished run, and ranking its architectures.

Layout (besides :class:`evonas.runs.RunDir`'s ``config.yaml``, ``meta.yaml``,
``log.jsonl``, ``checkpoint.pkl`` and ``result.json``)::

    supernet.pt            final weights, image channels and classes (tensors only)
    predictor.pkl          the fitted proxy predictor (when the proxy loop ran; signed)
    rank.json              written by ``evonas supernet rank``
    report.md, *.png       written by ``evonas report``

The log holds ``step`` records (loss, learning rate, distinct architectures), ``proxy``
records (the evaluated architectures and their losses) and a ``resume`` record each
time the run was resumed; records of steps after the checkpoint a resume started from
describe lost work and are superseded by the ones written after the ``resume`` record.

``checkpoint.pkl`` and ``predictor.pkl`` are signed with this user's key
(:meth:`evonas.runs.RunDir.save_signed`): those of a run directory from elsewhere are
refused, never unpickled; ``supernet.pt`` is read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Sized
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch import nn

from evonas._json import JsonFloat, jsonable
from evonas.config import check_int, from_dict
from evonas.data import CIFAR10_CLASSES, DataSplits, cached_splits
from evonas.errors import (
    CapabilityError,
    ConfigError,
    DataError,
    RunDirError,
    one_line_error,
)
from evonas.runs import (
    RESULT,
    RunDir,
    RunKind,
    RunResult,
    declare_records,
    read_summary,
    resume_run,
    start_run,
    step_history,
)
from evonas.spaces import EnumerableSpace, SearchSpace, require
from evonas.supernet._config import SupernetRunConfig
from evonas.supernet._evaluator import SupernetEvaluator
from evonas.supernet._proxy import PredictorEvaluator
from evonas.supernet._rank import (
    TABLE_METRIC,
    RankResult,
    rank_architectures,
    supernet_scores,
    unseen_architectures,
)
from evonas.supernet._supernets import build_supernet
from evonas.supernet._trainer import PREDICTOR, WEIGHTS, SupernetResult, SupernetTrainer

RANK = "rank.json"
LOSS_PLOT = "training_loss.png"
PROXY_PLOT = "proxy_rounds.png"


class SupernetRun(RunKind):
    """``evonas supernet train``: train a supernet in a run directory; ``--resume``
    continues from the latest checkpoint."""

    name = "supernet"
    Config = SupernetRunConfig

    def prepare(self, config: SupernetRunConfig) -> SupernetTrainer:
        """Build the trainer: space, capabilities, sampler, predictor name, device and data
        are all checked here, before the run directory exists."""
        return SupernetTrainer(config)

    def execute(
        self, run: RunDir, config: SupernetRunConfig, prepared: SupernetTrainer, resume: bool, progress: bool
    ) -> dict[str, Any]:
        trainer = prepared
        trainer.run = run
        trainer.progress = progress
        state = None
        if resume:
            run.read_log(repair=True)  # a line torn by a kill is cut before new records follow
            payload = run.load_checkpoint(remedy="delete it to train the supernet again from step 0")
            state = trainer.restore(payload) if payload is not None else None
            run.append({"type": "resume", "from_step": 0 if state is None else state.step})
        result = trainer.train(state)
        _save_outputs(run, result, trainer.splits)
        summary: dict[str, Any] = jsonable(result.summary)
        return summary

    def failure(self, summary: dict[str, Any]) -> str | None:
        loss = float(summary.get("final_loss", math.nan))
        if not math.isfinite(loss):
            return (
                f"supernet training diverged: the final training loss is {loss!r}; lower train.optim.lr or "
                "set train.optim.grad_clip"
            )
        return None

    def format_summary(self, summary: dict[str, Any], run_dir: Path) -> str:
        return format_train_summary(summary, run_dir)

    def report(self, run: RunDir) -> str:
        return write_report(run)


SUPERNET = SupernetRun()


def start_training(
    config_path: str | os.PathLike[str] | None,
    overrides: list[str] | tuple[str, ...] = (),
    run_dir: str | os.PathLike[str] | None = None,
    progress: bool | None = None,
) -> RunResult:
    """Validate a config, create its run directory and train (see :func:`evonas.runs.start_run`)."""
    return start_run(SUPERNET.name, config_path, overrides, run_dir, progress)


def resume_training(run_dir: str | os.PathLike[str], progress: bool | None = None) -> RunResult:
    """Continue the run in ``run_dir`` from its latest checkpoint (kill-safe); a finished
    run is not trained again (see :func:`evonas.runs.resume_run`)."""
    return resume_run(run_dir, (), progress, kind=SUPERNET.name)


def _save_outputs(run: RunDir, result: SupernetResult, splits: DataSplits) -> None:
    payload = {
        "state_dict": {k: v.detach().cpu() for k, v in result.model.state_dict().items()},
        "num_classes": splits.num_classes,
        "in_channels": splits.in_channels,
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    run.write_bytes(WEIGHTS, buffer.getvalue())
    if result.state.predictor is not None:
        run.save_signed(PREDICTOR, result.state.predictor)


declare_records(
    "supernet",
    step={"step": int, "loss": JsonFloat | None, "lr": JsonFloat},
    proxy={"step": int, "archs": list[list[int]], "val_loss": list[JsonFloat | None],
           "val_acc": list[JsonFloat | None], "memory": int, "fitted": bool},
    resume={"from_step": int},
    diverged={"step": int},
)


def read_records(run: RunDir) -> list[dict[str, Any]]:
    """The log records that describe the run's actual history (see the module docstring)."""
    return step_history(run.read_log())


# ----------------------------------------------------------------------------- loading
def _open_finished(run_dir: str | os.PathLike[str]) -> tuple[RunDir, SupernetRunConfig]:
    run = RunDir.open(run_dir, kind=SUPERNET.name)
    if not (run.path / WEIGHTS).is_file():
        raise RunDirError(
            f"run directory {str(run.path)!r} has no {WEIGHTS}: training has not finished; "
            f"continue it with 'evonas supernet train --resume {run.path!s}'"
        )
    return run, from_dict(SupernetRunConfig, run.config)


def _run_space(run: RunDir, config: SupernetRunConfig, space: SearchSpace | None) -> SearchSpace:
    """The run's space, checked to be ``space`` when one is given."""
    trained_on: SearchSpace = config.space.build("space")
    if space is not None and space != trained_on:
        # names tell spaces apart unless only their parameters differ
        ours, theirs = (trained_on.name, space.name) if trained_on.name != space.name else (trained_on, space)
        raise CapabilityError(
            f"supernet run {str(run.path)!r} was trained on space {ours!r}, not the configured space {theirs!r}"
        )
    return trained_on


def _weights(run: RunDir) -> dict[str, Any]:
    """The final weights of a finished run (tensors and numbers only: nothing is executed).

    Raises:
        RunDirError: ``supernet.pt`` is not weights written by evonas (or is a link).
    """
    path = run.path / WEIGHTS
    data = run.read_bytes(WEIGHTS)
    try:
        payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 -- a garbage or crafted file: any failure means "not our weights"
        raise RunDirError(
            f"{str(path)!r} cannot be read as supernet weights ({type(exc).__name__}); train the supernet again"
        ) from None
    if not isinstance(payload, dict) or not {"state_dict", "num_classes", "in_channels"} <= payload.keys():
        raise RunDirError(f"{str(path)!r} holds no supernet weights written by evonas; train the supernet again")
    return payload


def load_supernet_evaluator(
    run_dir: str | os.PathLike[str], device: str = "cpu", space: SearchSpace | None = None
) -> SupernetEvaluator:
    """A :class:`SupernetEvaluator` with the final weights of a finished run.

    Args:
        run_dir: The run directory.
        device: Where evaluations run.
        space: The space the caller works in (None: the run's own).

    Raises:
        RunDirError: Not a finished supernet run.
        CapabilityError: The run was trained on another space than ``space``.
    """
    run, config = _open_finished(run_dir)
    run_space = _run_space(run, config, space)
    payload = _weights(run)
    return SupernetEvaluator(
        payload["state_dict"], run_space, config.supernet, config.dataset, config.evaluation,
        num_classes=payload["num_classes"], in_channels=payload["in_channels"], device=device,
        data_seed=config.seed, num_threads=config.train.compute.num_threads,
    )


def load_supernet(run_dir: str | os.PathLike[str]) -> nn.Module:
    """The trained supernet of a finished run (on the CPU, eval mode)."""
    run, config = _open_finished(run_dir)
    payload = _weights(run)
    net = build_supernet(config.supernet, _run_space(run, config, None), payload["num_classes"], payload["in_channels"])
    net.load_state_dict(payload["state_dict"])
    return net.eval()


def load_predictor(run_dir: str | os.PathLike[str], space: SearchSpace | None = None) -> PredictorEvaluator | None:
    """The proxy predictor of a finished run as an evaluator, or None if none was fitted.

    Raises:
        RunDirError: Not a finished supernet run.
        UntrustedFileError: The predictor file is not signed with this user's key (a run
            directory from elsewhere, or edited) or is unreadable; it is never unpickled.
        CapabilityError: The run was trained on another space than ``space``.
    """
    run, config = _open_finished(run_dir)
    run_space = _run_space(run, config, space)
    remedy = (
        f"train the supernet again, or, if its checkpoint is yours, delete {PREDICTOR} and {RESULT} and "
        f"write them again with 'evonas supernet train --resume {run.path}'"
    )
    predictor = run.load_signed(PREDICTOR, "proxy predictor", remedy)
    if predictor is None:
        return None
    return PredictorEvaluator(predictor, run_space)


# ----------------------------------------------------------------------------- ranking
def is_cifar10(splits: DataSplits) -> bool:
    """Whether the data are CIFAR-10 (its classes, 32x32), so NAS-Bench-201 applies."""
    return tuple(splits.classes) == CIFAR10_CLASSES and tuple(splits.image_size) == (32, 32)


def _check_table_file(table: str | os.PathLike[str]) -> None:
    """Raise unless ``--table`` names a file (its content is checked when it is loaded)."""
    path = Path(table)
    if path.is_dir():
        raise DataError(f"--table {str(path)!r} is a directory; give the NAS-Bench-201 table file (nb201.csv.gz)")
    if not path.is_file():
        what = "does not exist" if not path.exists() else "is not a regular file"
        raise DataError(f"--table {str(path)!r} {what}; give the NAS-Bench-201 table file (nb201.csv.gz)")


def _ground_truth(space: SearchSpace, splits: DataSplits, table: str | os.PathLike[str] | None,
                  given: bool) -> Any | None:
    """The NAS-Bench-201 table when it is the ground truth of the run, else None.

    Raises:
        ConfigError: A table was given explicitly but cannot apply to the run.
        DataError: The table is missing or malformed.
    """
    from evonas.tabular import TABLES, NB201TableConfig

    serves = getattr(TABLES.get("nb201"), "space", None) == space.name
    if not (serves and is_cifar10(splits)):
        if given:
            raise ConfigError(
                f"--table {str(table)!r}: the run's space is {space.name!r} and its data are "
                f"{'' if is_cifar10(splits) else 'not '}CIFAR-10 at 32x32, so NAS-Bench-201 is no ground truth for it"
            )
        return None
    if given and table is not None:
        _check_table_file(table)
    path = None if table is None else os.path.abspath(table)
    return TABLES.get("nb201")(NB201TableConfig(path=path), space=space)


def rank_run(
    run_dir: str | os.PathLike[str],
    table: str | os.PathLike[str] | None = None,
    num_archs: int = 200,
    progress: bool = False,
    val_images: int | None = None,
) -> dict[str, Any]:
    """Evaluate ``num_archs`` random architectures with the run's supernet (and predictor).

    ``val_images`` (default: the run's ``evaluation.val_images``) sets how many
    validation images each architecture is measured on; more is slower but steadier. The
    tau of the validation loss (``supernet_loss``, lower loss ranked higher) is reported
    next to accuracy's.

    Architectures are drawn (seeded by the run seed) among those the proxy memory never
    saw, so the predictor's figure is on unseen architectures. When the data are CIFAR-10
    and the space nb201, Kendall tau against the table's ``cifar10-valid_valid_acc`` is
    reported for the supernet, the predictor and the trivial baselines. Every argument,
    the table included, is checked before any architecture is evaluated. The result is
    written to ``rank.json`` in the run directory and returned.

    Args:
        run_dir: A finished supernet run.
        table: The NAS-Bench-201 table (default: the run's ``table``, else ``$EVONAS_NB201``).
        num_archs: Architectures to rank.
        progress: Show a progress bar.
        val_images: Validation images per architecture.

    Raises:
        ConfigError: ``num_archs`` is not in ``[1, unseen architectures]``, ``val_images``
            not in ``[1, validation images]``, or a table was given for a run it cannot rank.
        CapabilityError: The run's space is not enumerable.
        RunDirError: The run has not finished.
        DataError: The table is missing or malformed.
    """
    check_int(num_archs, "--num-archs", 1)
    if val_images is not None:
        check_int(val_images, "--val-images", 1)
    run, config = _open_finished(run_dir)
    space = _run_space(run, config, None)
    require(space, {"enumerable"}, "evonas supernet rank (it draws unseen architectures by ordinal)")
    seen = _memory_archs(run)
    unseen = cast(EnumerableSpace, space).size - len(seen)
    if not 1 <= num_archs <= unseen:
        raise ConfigError(
            f"invalid value {num_archs!r} for '--num-archs'; expected an integer in [1, {unseen}] (the architectures "
            f"of space {space.name!r} that the run's proxy memory never saw)"
        )
    splits = cached_splits(config.dataset)
    if val_images is not None and val_images > len(cast(Sized, splits.val)):
        raise ConfigError(
            f"invalid value {val_images!r} for '--val-images'; expected an integer in [1, {len(cast(Sized, splits.val))}] "
            "(the images of the run's validation split)"
        )
    truth = _ground_truth(space, splits, table if table is not None else config.table, given=table is not None)
    evaluator = load_supernet_evaluator(run_dir)
    if val_images is not None:
        from dataclasses import replace

        evaluator.config = replace(evaluator.config, val_images=val_images)
    predictor = load_predictor(run_dir)
    archs = unseen_architectures(space, seen, config.seed, num_archs)
    iterator: Any = archs
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(archs, desc="rank", unit="arch")
    evals = [evaluator.evaluate(a) for a in iterator]
    acc = [e.metrics["val_acc"] for e in evals]
    loss = [e.metrics["val_loss"] for e in evals]
    proxy = [e.metrics[predictor.metric] for e in predictor.evaluate_many(archs)] if predictor is not None else None
    out: dict[str, Any] = {
        "num_archs": len(archs),
        "val_images": int(evals[0].info["images"]) if evals else 0,
        "mean_val_acc": float(np.mean(acc)),
        "seconds_per_arch": float(np.mean([e.cost for e in evals])),
        "taus": None,
    }
    if truth is not None:
        result: RankResult = rank_architectures(archs, truth, acc, proxy, TABLE_METRIC, supernet_loss=loss)
        out.update(result.to_dict())
    else:
        out["note"] = "no NAS-Bench-201 ground truth for this run (it needs the nb201 space and CIFAR-10 at 32x32)"
        out["archs"] = [list(a) for a in archs]
        out["scores"] = supernet_scores(acc, proxy, loss)
    run.write_json(RANK, out)
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
    overhead = summary["sampling_overhead"]
    lines.append(
        f"throughput: {_f(summary['throughput_img_s'])} path-images/s; sampling overhead: "
        f"{_f(100 * overhead if isinstance(overhead, float) else overhead)}%; "
        f"final training loss: {_f(summary['final_loss'])}"
    )
    if summary.get("proxy_memory"):
        lines.append(
            f"proxy memory: {summary['proxy_memory']} evaluations; predictor fitted: {summary['predictor_fitted']}"
        )
    return "\n".join(lines)


_RANKERS = {
    "supernet": "supernet (inherited weights)",
    "supernet_loss": "supernet, by validation loss",
    "proxy": "proxy predictor (unseen archs)",
    "params": "baseline: parameter count",
    "conv3x3": "baseline: number of 3x3 convs",
}


def format_rank(out: dict[str, Any]) -> str:
    """The ranking table for the terminal."""
    head = (
        f"architectures: {out['num_archs']} on {out.get('val_images', '?')} validation images each; "
        f"mean supernet val_acc {_f(out['mean_val_acc'])}%; {_f(out['seconds_per_arch'])} s per architecture"
    )
    lines = [head]
    if out.get("taus") is None:
        lines.append(out.get("note", "no ground truth"))
        return "\n".join(lines)
    lines.append(f"Kendall tau against NAS-Bench-201 {out['metric']} (200 epochs):")
    for key, label in _RANKERS.items():
        if key in out["taus"]:
            lines.append(f"  {label:<32} {float(out['taus'][key]):+.3f}")
    return "\n".join(lines)


def _f(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


# ------------------------------------------------------------------------------ report
def write_report(run: RunDir) -> str:
    """Draw ``training_loss.png`` (and ``proxy_rounds.png`` when the proxy loop ran) and
    write ``report.md`` in the supernet run ``run``; return the Markdown.

    Raises:
        RunDirError: The run has no step records yet.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    config = from_dict(SupernetRunConfig, run.config)
    records = read_records(run)
    steps = [r for r in records if r.get("type") == "step"]
    rounds = [r for r in records if r.get("type") == "proxy"]
    if not steps:
        raise RunDirError(f"run directory {str(run.path)!r} has no step records yet")
    # every file the report shows is checked before anything is drawn
    summary = read_summary(SUPERNET, run) if (run.path / RESULT).exists() else None
    ranking = _ranking_text(run) if (run.path / RANK).exists() else None

    fig, ax = plt.subplots(figsize=(6.5, 4), constrained_layout=True)
    ax.plot([r["step"] for r in steps], [_num(r["loss"]) for r in steps], ".-", color="C0")
    ax.set_xlabel("step")
    ax.set_ylabel(f"training loss (mean of the last {config.log_every} steps)")
    ax.grid(alpha=0.3)
    lr_ax = ax.twinx()
    lr_ax.plot([r["step"] for r in steps], [_num(r["lr"]) for r in steps], ".-", color="C1", alpha=0.6)
    lr_ax.set_ylabel("learning rate", color="C1")
    ax.set_title(f"supernet training - sampler {config.sampler.name}, seed {config.seed}")
    run.write_figure(LOSS_PLOT, fig)
    plt.close(fig)
    pictures = [LOSS_PLOT]

    if rounds:
        fig, axes = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
        at = [r["step"] for r in rounds]
        width = max(1.0, 0.4 * (min(np.diff(at)) if len(at) > 1 else max(at[0], 1)))
        for ax, key, label in ((axes[0], "val_loss", "validation loss"), (axes[1], "val_acc", "validation accuracy (%)")):
            values = [[_num(v) for v in r[key]] for r in rounds]
            ax.boxplot(values, positions=at, widths=width, manage_ticks=False)
            ax.plot(at, [float(np.nanmean(v)) for v in values], "o-", color="C3", label="round mean")
            ax.set_xlabel("step")
            ax.set_ylabel(f"{label}, inherited weights")
            ax.grid(alpha=0.3)
            ax.legend()
        fig.suptitle("proxy-validation rounds (each box: the architectures of one round)")
        run.write_figure(PROXY_PLOT, fig)
        plt.close(fig)
        pictures.append(PROXY_PLOT)

    finished = summary is not None
    lines = [f"# Supernet report: {run.path.name}", ""]
    lines.append(f"- space: `{config.space.name}` {config.space.params or ''}")
    lines.append(f"- supernet: `{config.supernet.name}` {config.supernet.params or ''}")
    lines.append(f"- sampler: `{config.sampler.name}` {config.sampler.params or ''}")
    lines.append(f"- dataset: `{config.dataset.name}`; seed: {config.seed}")
    lines.append(f"- steps: {steps[-1]['step']} of {config.train.steps}; status: {'finished' if finished else 'in progress'}")
    lines.append("")
    if summary is not None:
        lines += ["## Summary", "", "```", format_train_summary(summary), "```", ""]
    if rounds:
        lines += ["## Proxy rounds", "", "| step | architectures | mean val_loss | mean val_acc | memory | predictor fitted |",
                  "| --- | --- | --- | --- | --- | --- |"]
        for r in rounds:
            mark = " (final)" if r.get("final") else ""
            lines.append(
                f"| {r['step']}{mark} | {len(r['archs'])} | {np.nanmean([_num(v) for v in r['val_loss']]):.4f} | "
                f"{np.nanmean([_num(v) for v in r['val_acc']]):.2f} | {r['memory']} | {r['fitted']} |"
            )
        lines.append("")
    if ranking is not None:
        lines += ["## Ranking (`evonas supernet rank`)", "", "```", ranking, "```", ""]
    lines += ["## Plots", ""] + [f"![{p}]({p})" for p in pictures] + [""]
    text = "\n".join(lines)
    run.write_text("report.md", text)
    return text


def _ranking_text(run: RunDir) -> str:
    """``rank.json`` formatted for the report.

    Raises:
        RunDirError: It is not what ``evonas supernet rank`` writes.
    """
    data = run.read_json(RANK)
    try:
        return format_rank(data)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise RunDirError(
            f"{str(run.path / RANK)!r} is not what 'evonas supernet rank' writes ({one_line_error(exc)}); "
            "delete it or rank the run again"
        ) from None


def _num(value: Any) -> float:
    """A logged number (non-finite ones are logged as their repr strings; None is NaN)."""
    return math.nan if value is None else float(value)


__all__ = [
    "SUPERNET",
    "SupernetRun",
    "format_rank",
    "format_train_summary",
    "load_predictor",
    "load_supernet",
    "load_supernet_evaluator",
    "rank_run",
    "read_records",
    "resume_training",
    "start_training",
    "write_report",
]
