"""``evonas report``: plots and a Markdown summary of a search run directory."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from evonas.config import from_dict
from evonas.errors import RunDirError
from evonas.runs import RESULT, RunDir
from evonas.search import SearchConfig, load_history, pareto_front, summarize
from evonas.search._loop import CandidateRecord


def _best_so_far(history: list[CandidateRecord], sign: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    evals, secs, best = [], [], []
    current = -np.inf
    for r in history:
        if r.values is not None:
            current = max(current, r.values[0])
        evals.append(r.used_evaluations)
        secs.append(r.used_seconds)
        best.append(sign * current if np.isfinite(current) else np.nan)
    return np.asarray(evals), np.asarray(secs), np.asarray(best)


def write_report(run_dir: str | os.PathLike[str]) -> str:
    """Draw ``best_so_far.png`` (and ``pareto_front.png`` for several objectives) and
    write ``report.md`` in ``run_dir``; return the Markdown."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run = RunDir.open(run_dir, kind="search")
    config = from_dict(SearchConfig, run.config)
    history = load_history(run)
    if not history:
        raise RunDirError(f"run directory {str(run.path)!r} has no scored candidates yet")
    objectives = config.fitness.objectives
    first = objectives[0]
    sign = 1.0 if first.direction == "max" else -1.0
    evals, secs, best = _best_so_far(history, sign)
    label = first.metric if config.fitness.name == "plain" else f"{first.metric} (neighbourhood {config.fitness.params.get('aggregate', 'mean')})"

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    axes[0].step(evals, best, where="post")
    axes[0].set_xlabel("evaluations")
    axes[1].step(secs, best, where="post")
    axes[1].set_xlabel("cost (s)")
    for ax in axes:
        ax.set_ylabel(f"best {label}")
        ax.grid(alpha=0.3)
    fig.suptitle(f"best so far — {config.strategy.name}, seed {config.seed}")
    fig.savefig(run.path / "best_so_far.png", dpi=120)
    plt.close(fig)
    pictures = ["best_so_far.png"]

    summary = summarize(history, config, "finished" if (run.path / RESULT).exists() else "in progress")
    if len(objectives) >= 2:
        o1, o2 = objectives[0], objectives[1]
        pts = np.array([[r.metrics[o1.metric], r.metrics[o2.metric]] for r in history if r.values is not None])
        front = pareto_front(history)
        fp = np.array(sorted((r.metrics[o1.metric], r.metrics[o2.metric]) for r in front))
        fig, ax = plt.subplots(figsize=(5.5, 4.5), constrained_layout=True)
        ax.scatter(pts[:, 0], pts[:, 1], s=10, alpha=0.4, label="evaluated")
        ax.plot(fp[:, 0], fp[:, 1], "o-", color="C3", label="Pareto front")
        ax.set_xlabel(f"{o1.metric} ({o1.direction})")
        ax.set_ylabel(f"{o2.metric} ({o2.direction})")
        ax.legend()
        ax.grid(alpha=0.3)
        fig.savefig(run.path / "pareto_front.png", dpi=120)
        plt.close(fig)
        pictures.append("pareto_front.png")

    lines = [f"# Search report: {run.path.name}", ""]
    lines.append(f"- strategy: `{config.strategy.name}` {config.strategy.params or ''}")
    lines.append(f"- evaluator: `{config.evaluator.name}`; fitness: `{config.fitness.name}` {config.fitness.params or ''}")
    lines.append(f"- objectives: {', '.join(summary['objectives'])}")
    lines.append(f"- seed: {config.seed}; status: {summary['stop_reason']}")
    lines.append(
        f"- candidates: {summary['candidates']} ({summary['failed']} failed); budget used: "
        f"{summary['used_evaluations']} evaluations, {summary['used_seconds']:.1f} s"
    )
    lines.append("")
    if "best" in summary:
        b = summary["best"]
        lines += ["## Best architecture", "", f"`{b['arch']}`", "", "| metric | value |", "| --- | --- |"]
        lines += [f"| {k} | {v:.4f} |" for k, v in b["metrics"].items()]
        lines.append("")
    if "pareto_front" in summary:
        names = [o.metric for o in objectives]
        lines += [f"## Pareto front ({len(summary['pareto_front'])} architectures)", ""]
        lines.append("| architecture | " + " | ".join(names) + " |")
        lines.append("| --- |" + " --- |" * len(names))
        for item in sorted(summary["pareto_front"], key=lambda d: -d["metrics"][names[0]]):
            lines.append(f"| `{item['arch']}` | " + " | ".join(f"{item['metrics'][n]:.4f}" for n in names) + " |")
        lines.append("")
    lines += ["## Plots", ""] + [f"![{p}]({p})" for p in pictures] + [""]
    text = "\n".join(lines)
    (Path(run.path) / "report.md").write_text(text)
    return text
