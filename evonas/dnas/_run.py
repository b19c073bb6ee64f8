"""Differentiable-search runs: the ``dnas`` run kind (``evonas dnas train``).

A run searches a :class:`~evonas.dnas.DNASConfig` on a dataset's training split,
records the cell the current ``alpha`` derives (magnitude, argmax per edge) after every
epoch of the weights' half, and derives the final cell with the configured selection.
When the data are CIFAR-10 at 32x32 and a NAS-Bench-201 table is at hand, every derived
cell is looked up in it, so the run carries a ground-truth curve of its own search.

Layout (besides :class:`evonas.runs.RunDir`'s ``config.yaml``, ``meta.yaml``,
``log.jsonl``, ``checkpoint.pkl`` and ``result.json``)::

    report.md, alpha.png, ground_truth.png    written by ``evonas report``

The log holds ``step`` records (the mean losses of the last ``log_every`` steps),
``epoch`` records (``softmax(alpha)`` per edge and the derived cell with its measures and
table accuracies), one ``selection`` record and a ``resume`` record each time the run was
resumed; records of steps after the checkpoint a resume started from describe lost work
and are superseded by those written after the ``resume`` record. ``checkpoint.pkl`` is
signed with this user's key and holds tensors, arrays and generators only.

Cell measures (Shu, Wang & Cai, "Understanding Architectures Learnt by Cell-based Neural
Architecture Search", ICLR 2020): *depth* is the number of connections on the longest
path from the cell's input node to its output node, *width* the number of connections
that leave the input node (the parallel branches that read the cell's input; Shu et al.
sum the widths of the intermediate nodes connected to the input, and in a NAS-Bench-201
cell, whose nodes all have the same width, that is this count). A ``none`` edge is no
connection. Searches that favour fast convergence derive wide, shallow cells.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import torch

from evonas._json import JsonFloat, jsonable
from evonas.config import MAX_COUNT, ComponentConfig, IsPath, Range, from_dict
from evonas.data import DatasetConfig, DataSplits, cached_splits
from evonas.dnas._config import DNASConfig
from evonas.dnas._methods import StepStats
from evonas.dnas._search import DNASSearch
from evonas.errors import ConfigError, RunDirError
from evonas.runs import RESULT, RunDir, RunKind, declare_records, read_summary, step_history
from evonas.spaces import Arch, NB201Space, SearchSpace
from evonas.spaces._nb201 import EDGES, OPS
from evonas.training import weights_finite

ALPHA_PLOT = "alpha.png"
TRUTH_PLOT = "ground_truth.png"
PARAMETER_FREE = frozenset({"none", "skip_connect", "avg_pool_3x3"})
TABLE_METRICS = ("cifar10_test_acc", "cifar10-valid_valid_acc")
TOP_CELLS = 20


@dataclass(frozen=True)
class DNASRunConfig(DNASConfig):
    """A differentiable search in a run directory (every field of
    :class:`~evonas.dnas.DNASConfig`, plus the data and the run's bookkeeping).

    Attributes:
        dataset: The data (:class:`~evonas.data.DatasetConfig`); the search uses only its
            training split. A relative ``root`` in a config file is relative to that file.
        record_every: Steps between derived-cell records; null: one epoch of the weights'
            half.
        checkpoint_every: Steps between checkpoints (a record is always checkpointed too).
        log_every: Steps between ``step`` records.
        table: NAS-Bench-201 table to look derived cells up in (null: ``$EVONAS_NB201``,
            else none); used only when the data are CIFAR-10 at 32x32.
        run_dir: Where the run directory goes (default ``runs/<config name>-<time>``).
        progress: Show a progress bar.
    """

    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    record_every: Annotated[int | None, Range(1, MAX_COUNT)] = None
    checkpoint_every: Annotated[int, Range(1, MAX_COUNT)] = 200
    log_every: Annotated[int, Range(1, MAX_COUNT)] = 20
    table: Annotated[str | None, IsPath()] = None
    run_dir: Annotated[str | None, IsPath()] = None
    progress: bool = True


# ---------------------------------------------------------------------------- measures
def parameter_free_share(arch: Arch) -> float:
    """Share of the cell's edges whose operation has no parameters (none, skip, pooling)."""
    return sum(OPS[op] in PARAMETER_FREE for op in arch) / len(arch)


def cell_depth(arch: Arch) -> int:
    """Connections on the longest input-to-output path (0: the output is cut off)."""
    longest = {0: 0}
    for node in (1, 2, 3):
        reach = [longest[src] + 1 for (src, dst), op in zip(EDGES, arch, strict=True)
                 if dst == node and OPS[op] != "none" and src in longest]
        if reach:
            longest[node] = max(reach)
    return longest.get(3, 0)


def cell_width(arch: Arch) -> int:
    """Connections leaving the cell's input node."""
    return sum(1 for (src, _), op in zip(EDGES, arch, strict=True) if src == 0 and OPS[op] != "none")


def describe_cell(arch: Arch, table: Any | None) -> dict[str, Any]:
    """The cell string, its measures and (with a table) its table accuracies."""
    out: dict[str, Any] = {
        "arch": list(arch),
        "cell": NB201Space().format(arch),
        "param_free": parameter_free_share(arch),
        "depth": cell_depth(arch),
        "width": cell_width(arch),
    }
    if table is not None:
        out.update({m: float(table.query(arch, m)) for m in TABLE_METRICS})
    return out


def top_cells(table: Any, k: int = TOP_CELLS) -> dict[str, Any]:
    """Mean depth, width and parameter-free share of the table's ``k`` best cells by
    200-epoch cifar10-valid validation accuracy (the selection column, never test)."""
    order = np.argsort(-table.column("cifar10-valid_valid_acc"), kind="stable")[:k]
    archs = [table.space.from_ordinal(int(i)) for i in order]  # columns are in the space's order
    return {
        "k": k,
        "depth": float(np.mean([cell_depth(a) for a in archs])),
        "width": float(np.mean([cell_width(a) for a in archs])),
        "param_free": float(np.mean([parameter_free_share(a) for a in archs])),
    }


# ----------------------------------------------------------------------------- the run
@dataclass
class Prepared:
    """What :meth:`DNASRun.prepare` checked and built."""

    search: DNASSearch
    splits: DataSplits
    table: Any | None


class DNASRun(RunKind):
    """``evonas dnas train``: a differentiable search in a run directory; ``--resume``
    continues from the latest checkpoint."""

    name = "dnas"
    Config = DNASRunConfig

    def prepare(self, config: DNASRunConfig) -> Prepared:
        """Data, method, selection, device, split sizes and the table are all checked
        here, before the run directory exists."""
        from evonas.supernet._run import _ground_truth

        splits = cached_splits(config.dataset)
        search = DNASSearch(config, splits)
        space: SearchSpace = ComponentConfig("nb201").build("space")
        table = _ground_truth(space, splits, config.table, given=config.table is not None)
        return Prepared(search, splits, table)

    def execute(self, run: RunDir, config: DNASRunConfig, prepared: Prepared, resume: bool,
                progress: bool) -> dict[str, Any]:
        search, table = prepared.search, prepared.table
        if resume:
            run.read_log(repair=True)  # a line torn by a kill is cut before new records follow
            payload = run.load_checkpoint(remedy="delete it to search again from step 0")
            if payload is not None:
                try:
                    search.load_state_dict(payload)
                except ConfigError as exc:
                    raise RunDirError(
                        f"the checkpoint of {str(run.path)!r} does not fit this run ({exc}); delete it to search "
                        "again from step 0"
                    ) from None
            run.append({"type": "resume", "from_step": search.step_count})
        every = config.record_every or search.steps_per_epoch
        if search.step_count == 0:
            self._record(run, search, table, 0, every)
        losses: list[tuple[float, float]] = []
        diverged = False

        def after_step(stats: StepStats) -> bool:
            nonlocal losses, diverged
            step = search.step_count
            losses.append((stats.train_loss, stats.val_loss))
            if not (math.isfinite(stats.train_loss) and math.isfinite(stats.val_loss)) and not weights_finite(search.model):
                run.append({"type": "diverged", "step": step})
                diverged = True
                return True
            if step % config.log_every == 0 or step == config.steps:
                tl, vl = np.mean(losses, axis=0)
                run.append(jsonable({"type": "step", "step": step, "train_loss": float(tl), "val_loss": float(vl),
                                     "lr": search.weight_optimizer.param_groups[0]["lr"],
                                     "seconds": round(search.seconds, 3)}))
                losses = []
            recorded = step % every == 0 or step == config.steps
            if recorded:
                self._record(run, search, table, step, every)
            if recorded or step % config.checkpoint_every == 0:
                run.save_checkpoint(search.state_dict())
            return False

        search.run(progress, after_step)
        if diverged:
            return {"diverged": True, "steps": search.step_count, "method": config.method.name,
                    "selection": config.selection.name, "search_seconds": search.seconds}
        magnitude_arch = search.model.genotype()  # before a selection discretises the supernet
        start = time.perf_counter()
        arch = search.select()
        select_seconds = time.perf_counter() - start
        cell = describe_cell(arch, table)
        run.append(jsonable({"type": "selection", "selection": config.selection.name, "seconds": select_seconds,
                             **cell}))
        summary: dict[str, Any] = {
            "diverged": False,
            "method": config.method.name,
            "selection": config.selection.name,
            "steps": search.step_count,
            "epochs": round(search.step_count / search.steps_per_epoch, 2),
            "search_seconds": search.seconds,
            "select_seconds": select_seconds,
            "magnitude_cell": describe_cell(magnitude_arch, table),
            **cell,
        }
        if table is not None:
            summary["table_top"] = top_cells(table)
        return jsonable(summary)

    @staticmethod
    def _record(run: RunDir, search: DNASSearch, table: Any | None, step: int, every: int) -> None:
        probs = torch.softmax(search.alpha, dim=-1).tolist()
        cell = describe_cell(search.model.genotype(), table)
        run.append(jsonable({"type": "epoch", "step": step, "epoch": round(step / every, 3), "alpha": probs, **cell}))

    def failure(self, summary: dict[str, Any]) -> str | None:
        if summary.get("diverged"):
            return (
                f"the search diverged at step {summary.get('steps')}: the supernet's weights are no longer finite; "
                "lower optim.lr or arch_optim.lr, or set optim.grad_clip"
            )
        return None

    def format_summary(self, summary: dict[str, Any], run_dir: Path) -> str:
        return format_summary(summary, run_dir)

    def report(self, run: RunDir) -> str:
        return write_report(run)


DNAS_RUN = DNASRun()

declare_records(
    "dnas",
    step={"step": int, "train_loss": JsonFloat | None, "val_loss": JsonFloat | None},
    epoch={"step": int, "alpha": list[list[JsonFloat]], "arch": list[int], "param_free": JsonFloat,
           "depth": int, "width": int},
    selection={"arch": list[int], "param_free": JsonFloat, "depth": int, "width": int},
    resume={"from_step": int},
    diverged={"step": int},
)


def read_records(run: RunDir) -> list[dict[str, Any]]:
    """The log records that describe the run's actual history (see the module docstring)."""
    return step_history(run.read_log())


def load_cell(run_dir: str | Path) -> Arch:
    """The cell a finished ``dnas`` run derived, as an nb201 genotype (to seed a search,
    train, or join an ensemble as ``candidates.archs``).

    Raises:
        RunDirError: Not a finished ``dnas`` run.
    """
    run = RunDir.open(run_dir, kind=DNAS_RUN.name)
    if not (run.path / RESULT).exists():
        raise RunDirError(
            f"run directory {str(run.path)!r} has not finished; continue it with 'evonas dnas train --resume {run.path}'"
        )
    summary = read_summary(DNAS_RUN, run)
    if summary.get("diverged"):
        raise RunDirError(f"run directory {str(run.path)!r} diverged and derived no cell")
    try:
        return NB201Space().validate(tuple(summary["arch"]))
    except Exception as exc:  # noqa: BLE001 -- anything unreadable means "not a cell"
        raise RunDirError(f"{str(run.path / RESULT)!r} holds no valid cell ({exc})") from None


# ----------------------------------------------------------------------------- printing
def _acc(cell: dict[str, Any]) -> str:
    if "cifar10_test_acc" not in cell:
        return "no table"
    return f"table CIFAR-10 test {cell['cifar10_test_acc']:.2f}%, cifar10-valid {cell['cifar10-valid_valid_acc']:.2f}%"


def format_summary(summary: dict[str, Any], run_dir: Path | None = None) -> str:
    """A few lines for the terminal."""
    lines = [] if run_dir is None else [f"run directory: {run_dir}"]
    if summary.get("diverged"):
        lines.append(f"diverged at step {summary['steps']}")
        return "\n".join(lines)
    lines.append(
        f"{summary['method']} for {summary['steps']} steps ({summary['epochs']} epochs, {summary['search_seconds']:.1f} s); "
        f"selection {summary['selection']} ({summary['select_seconds']:.1f} s)"
    )
    lines.append(f"cell: {summary['cell']}")
    lines.append(
        f"  {_acc(summary)}; parameter-free ops {summary['param_free']:.0%}; depth {summary['depth']}, "
        f"width {summary['width']}"
    )
    if summary["selection"] != "magnitude":
        mag = summary["magnitude_cell"]
        lines.append(f"magnitude selection would give: {mag['cell']} ({_acc(mag)})")
    return "\n".join(lines)


# ------------------------------------------------------------------------------ report
def write_report(run: RunDir) -> str:
    """Draw ``alpha.png`` (``softmax(alpha)`` per edge against the epoch) and
    ``ground_truth.png`` (the derived cell's table accuracy and parameter-free share per
    epoch), write ``report.md``; return the Markdown.

    Raises:
        RunDirError: The run has no epoch records yet.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    config = from_dict(DNASRunConfig, run.config)
    records = read_records(run)
    epochs = [r for r in records if r.get("type") == "epoch"]
    if not epochs:
        raise RunDirError(f"run directory {str(run.path)!r} has no epoch records yet")
    summary = read_summary(DNAS_RUN, run) if (run.path / RESULT).exists() else None
    x = [float(r["epoch"]) for r in epochs]
    alpha = np.asarray([r["alpha"] for r in epochs], dtype=float)  # (records, 6, 5)

    fig, axes = plt.subplots(2, 3, figsize=(12, 6.5), sharex=True, sharey=True, constrained_layout=True)
    for e, ax in enumerate(axes.flat):
        for o, op in enumerate(OPS):
            ax.plot(x, alpha[:, e, o], label=op, color=f"C{o}")
        ax.set_title(f"edge {EDGES[e][0]}->{EDGES[e][1]}")
        ax.grid(alpha=0.3)
    for ax in axes[1]:
        ax.set_xlabel("epoch")
    for ax in axes[:, 0]:
        ax.set_ylabel("softmax(alpha)")
    axes[0, 0].legend(fontsize=7)
    fig.suptitle(f"{config.method.name}: operation weights per edge, seed {config.seed}")
    run.write_figure(ALPHA_PLOT, fig)
    plt.close(fig)
    pictures = [ALPHA_PLOT]

    has_table = "cifar10_test_acc" in epochs[0]
    fig, ax = plt.subplots(figsize=(7, 4), constrained_layout=True)
    if has_table:
        ax.plot(x, [r["cifar10_test_acc"] for r in epochs], "o-", color="C0", label="derived cell (magnitude)")
        ax.set_ylabel("NAS-Bench-201 CIFAR-10 test accuracy (%), 200 epochs")
    else:
        ax.text(0.5, 0.5, "no NAS-Bench-201 ground truth for these data", ha="center", transform=ax.transAxes)
    ax.set_xlabel("epoch")
    ax.grid(alpha=0.3)
    share = ax.twinx()
    share.plot(x, [r["param_free"] for r in epochs], "s--", color="C3", alpha=0.7, label="parameter-free share")
    share.set_ylim(-0.05, 1.05)
    share.set_ylabel("share of parameter-free operations", color="C3")
    ax.set_title(f"{config.method.name}: the cell alpha derives after each epoch")
    run.write_figure(TRUTH_PLOT, fig)
    plt.close(fig)
    pictures.append(TRUTH_PLOT)

    lines = [f"# Differentiable search report: {run.path.name}", ""]
    lines.append(f"- method: `{config.method.name}` {config.method.params or ''}")
    lines.append(f"- selection: `{config.selection.name}` {config.selection.params or ''}")
    lines.append(f"- network: {config.network.channels} channels, {config.network.cells_per_stage} cell(s) per stage")
    lines.append(f"- dataset: `{config.dataset.name}`; seed: {config.seed}")
    lines.append(f"- steps: {epochs[-1]['step']} of {config.steps}; status: {'finished' if summary else 'in progress'}")
    lines.append("")
    if summary is not None:
        lines += ["## Summary", "", "```", format_summary(summary), "```", ""]
        top = summary.get("table_top")
        if top is not None:
            lines += [
                f"## Shape of the derived cell against the table's top {top['k']} (by 200-epoch cifar10-valid validation accuracy)",
                "", "| cells | depth | width | parameter-free share |", "| --- | --- | --- | --- |",
                f"| derived ({summary['selection']}) | {summary['depth']} | {summary['width']} | {summary['param_free']:.2f} |",
                f"| table top {top['k']} (mean) | {top['depth']:.2f} | {top['width']:.2f} | {top['param_free']:.2f} |", "",
            ]
    head = "| epoch | step | derived cell | param-free | depth | width |" + (" table test acc |" if has_table else "")
    lines += ["## The derived cell per epoch (magnitude)", "", head,
              "| --- " * (6 + has_table) + "|"]
    for r in epochs:
        acc = f" {r['cifar10_test_acc']:.2f} |" if has_table else ""
        cell = r["cell"].replace("|", "\\|")  # a cell string's bars would split the Markdown row
        lines.append(f"| {r['epoch']:g} | {r['step']} | `{cell}` | {r['param_free']:.2f} | {r['depth']} | {r['width']} |{acc}")
    lines += ["", "## Plots", ""] + [f"![{p}]({p})" for p in pictures] + [""]
    text = "\n".join(lines)
    run.write_text("report.md", text)
    return text
