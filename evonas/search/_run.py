"""Search runs: the ``search`` run kind (start, resume, summary, report)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from evonas._json import jsonable
from evonas.errors import RunDirError
from evonas.fitness import hypervolume
from evonas.runs import RESULT, RunDir, RunKind, RunResult, resume_run, start_run
from evonas.search._config import SearchConfig, SearchParts, build_parts
from evonas.search._loop import CandidateRecord, Search, best_candidate, candidate_from_json, pareto_front
from evonas.spaces import SearchSpace


class SearchRun(RunKind):
    """``evonas search``: a search in a run directory; ``--resume`` may extend its ``budget``."""

    name = "search"
    Config = SearchConfig
    extendable = ("budget",)

    def prepare(self, config: SearchConfig) -> SearchParts:
        return build_parts(config)

    def execute(self, run: RunDir, config: SearchConfig, prepared: SearchParts, resume: bool, progress: bool) -> dict[str, Any]:
        parts = prepared
        search = Search(
            space=parts.space,
            strategy=parts.strategy,
            fitness=parts.fitness,
            evaluator=parts.evaluator,
            executor=parts.executor,
            budget=config.budget,
            seed=config.seed,
            run=run,
            checkpoint_every=config.checkpoint_every,
            progress=progress,
            initial=parts.initial,
        )
        history = search.run_search(resume=resume)
        summary = summarize(history, config, parts.space, search.stop_reason or "budget")
        summary["failed_evaluations"] = search.state.failed_evaluations
        summary["first_error"] = search.state.first_error
        # e.g. a predictor-guided strategy's surrogate fits and their wall time (the state's
        # strategy: on resume it is the checkpoint's, with the figures of the whole run)
        strategy_summary = getattr(search.state.strategy, "summary", None)
        if callable(strategy_summary):
            summary["strategy"] = jsonable(strategy_summary())
        return summary

    def failure(self, summary: dict[str, Any]) -> str | None:
        if summary.get("candidates") and summary.get("best") is None:
            return (
                f"every one of the {summary['candidates']} candidates failed "
                f"({summary.get('failed_evaluations', 0)} failed evaluations); first: {summary.get('first_error')}"
            )
        return None

    def format_summary(self, summary: dict[str, Any], run_dir: Path) -> str:
        return format_summary(summary, run_dir)

    def report(self, run: RunDir) -> str:
        return write_report(run)


SEARCH = SearchRun()


def start_search(
    config_path: str | os.PathLike[str] | None,
    overrides: list[str] | tuple[str, ...] = (),
    run_dir: str | os.PathLike[str] | None = None,
    progress: bool | None = None,
) -> RunResult:
    """Validate a config, create its run directory and run the search (see :func:`evonas.runs.start_run`)."""
    return start_run("search", config_path, overrides, run_dir, progress)


def resume_search(
    run_dir: str | os.PathLike[str], overrides: list[str] | tuple[str, ...] = (), progress: bool | None = None
) -> RunResult:
    """Continue the search in ``run_dir`` from its checkpoint and log; ``budget.*`` overrides extend it."""
    return resume_run(run_dir, overrides, progress, kind="search")


def load_history(run: RunDir) -> list[CandidateRecord]:
    """The scored candidates of a run, from its log."""
    return [candidate_from_json(r) for r in run.read_log() if r.get("type") == "candidate"]


def front_hypervolume(history: list[CandidateRecord]) -> tuple[float, list[float]]:
    """Hypervolume of the Pareto front of ``history`` and its reference point.

    Computed with DEAP (:func:`evonas.fitness.hypervolume`) on the objective values as
    stored (signed so that larger is better); the reference point is the worst value of
    each objective over every scored candidate, so the figure measures how far the front
    reaches beyond what the search saw at its worst. (To compare runs, measure their fronts
    against a table's true front with one reference point: :func:`evonas.fitness.table_front`.)
    """
    scored = np.array([r.values for r in history if r.values is not None], dtype=float)
    ref = scored.min(axis=0)
    volume = hypervolume([r.values or () for r in pareto_front(history)], ref)
    return volume, [float(v) for v in ref]


def summarize(history: list[CandidateRecord], config: SearchConfig, space: SearchSpace, stop_reason: str) -> dict[str, Any]:
    """The summary of a run: best architecture, its metrics, the budget used and how it
    was charged (and the Pareto front with its hypervolume for several objectives)."""
    best = best_candidate(history)
    last = history[-1] if history else None
    summary: dict[str, Any] = {
        "stop_reason": stop_reason,
        "candidates": len(history),
        "failed": sum(r.failed for r in history),
        "used_evaluations": last.used_evaluations if last else 0,
        "used_seconds": last.used_seconds if last else 0.0,
        "accounting": {
            "neighbour_cost": config.fitness.params.get("neighbour_cost", "counted"),
            "uncharged_evaluations": last.uncharged_evaluations if last else 0,
        },
        "objectives": [f"{o.direction} {o.metric}" for o in config.fitness.objectives],
        "best": None,
    }
    if best is not None:
        headline = config.report or config.fitness.objectives[0].metric
        summary["best"] = {
            "arch": space.format(best.arch),
            "cand_id": best.cand_id,
            "metrics": best.metrics,
            "headline": {headline: best.metrics.get(headline)},
        }
    if len(config.fitness.objectives) > 1 and best is not None:
        summary["pareto_front"] = [
            {"arch": space.format(r.arch), "metrics": {o.metric: r.metrics.get(o.metric) for o in config.fitness.objectives}}
            for r in pareto_front(history)
        ]
        volume, ref = front_hypervolume(history)
        summary["hypervolume"] = {"value": volume, "reference": ref, "library": "deap.benchmarks.tools.hypervolume"}
    return summary


def accounting_text(summary: dict[str, Any]) -> str:
    """How the budget of a run was charged, in words (from its summary)."""
    accounting = summary.get("accounting") or {}
    if accounting.get("neighbour_cost") == "free":
        return (
            "neighbours free (neighbour_cost: free): each candidate is charged its own evaluation only; "
            f"{accounting.get('uncharged_evaluations', 0)} neighbour evaluations were run and not charged"
        )
    return "every evaluation run is charged (neighbour_cost: counted)"


def format_summary(summary: dict[str, Any], run_dir: Path | None = None) -> str:
    """A few lines for the terminal."""
    lines = []
    if run_dir is not None:
        lines.append(f"run directory: {run_dir}")
    lines.append(
        f"candidates: {summary['candidates']} ({summary['failed']} failed); budget used: "
        f"{summary['used_evaluations']} evaluations, {summary['used_seconds']:.1f} s; stopped: {summary['stop_reason']}"
    )
    if (summary.get("accounting") or {}).get("neighbour_cost") == "free":
        lines.append(f"budget accounting: {accounting_text(summary)}")
    best = summary.get("best")
    if best is None:
        lines.append("no candidate succeeded")
    else:
        lines.append(f"best architecture: {best['arch']}")
        shown = {k: v for k, v in best["metrics"].items() if not k.startswith("fitness/")}
        lines.append("  " + ", ".join(f"{k}={_fmt(v)}" for k, v in shown.items()))
        for k, v in best["headline"].items():
            lines.append(f"  {k}: {_fmt(v)}")
    if "pareto_front" in summary:
        lines.append(
            f"Pareto front: {len(summary['pareto_front'])} architectures; hypervolume {summary['hypervolume']['value']:.6g}"
        )
    strategy = summary.get("strategy") or {}
    if "fit_seconds" in strategy:
        lines.append(
            f"surrogate {strategy.get('surrogate')}: {strategy.get('surrogate_fits')} fits, "
            f"{_fmt(strategy['fit_seconds'])} s of wall time (beside the budget)"
        )
    return "\n".join(lines)


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


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


def write_report(run: RunDir) -> str:
    """Draw ``best_so_far.png`` (and ``pareto_front.png`` for several objectives) and
    write ``report.md`` in the search run ``run``; return the Markdown."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from evonas.config import from_dict

    config = from_dict(SearchConfig, run.config)
    space = config.space.build("space")
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
    fig.suptitle(f"best so far - {config.strategy.name}, seed {config.seed}")
    run.write_figure("best_so_far.png", fig)
    plt.close(fig)
    pictures = ["best_so_far.png"]

    status = "finished" if (run.path / RESULT).exists() else "in progress"
    summary = summarize(history, config, space, status)
    if len(objectives) >= 2 and "pareto_front" in summary:
        o1, o2 = objectives[0], objectives[1]
        pts = np.array([[r.metrics[o1.metric], r.metrics[o2.metric]] for r in history if r.values is not None])
        front = pareto_front(history)
        fp = np.array(sorted((r.metrics[o1.metric], r.metrics[o2.metric]) for r in front))
        fig, ax = plt.subplots(figsize=(5.5, 4.5), constrained_layout=True)
        ax.scatter(pts[:, 0], pts[:, 1], s=10, alpha=0.4, label="evaluated")
        ax.plot(fp[:, 0], fp[:, 1], "o-", color="C3", label="Pareto front")
        ax.set_xlabel(f"{o1.metric} ({o1.direction})")
        ax.set_ylabel(f"{o2.metric} ({o2.direction})")
        ax.set_title(f"hypervolume {summary['hypervolume']['value']:.4g}")
        ax.legend()
        ax.grid(alpha=0.3)
        run.write_figure("pareto_front.png", fig)
        plt.close(fig)
        pictures.append("pareto_front.png")

    lines = [f"# Search report: {run.path.name}", ""]
    lines.append(f"- space: `{config.space.name}` {config.space.params or ''}")
    lines.append(f"- strategy: `{config.strategy.name}` {config.strategy.params or ''}")
    lines.append(f"- evaluator: `{config.evaluator.name}`; fitness: `{config.fitness.name}` {config.fitness.params or ''}")
    lines.append(f"- objectives: {', '.join(summary['objectives'])}")
    lines.append(f"- seed: {config.seed}; status: {summary['stop_reason']}")
    lines.append(
        f"- candidates: {summary['candidates']} ({summary['failed']} failed); budget used: "
        f"{summary['used_evaluations']} evaluations, {summary['used_seconds']:.1f} s"
    )
    lines.append(f"- budget accounting: {accounting_text(summary)}")
    lines.append("")
    if summary.get("best") is not None:
        b = summary["best"]
        lines += ["## Best architecture", "", f"`{b['arch']}`", "", "| metric | value |", "| --- | --- |"]
        lines += [f"| {k} | {v:.4f} |" for k, v in b["metrics"].items()]
        lines.append("")
    if "pareto_front" in summary:
        names = [o.metric for o in objectives]
        hv = summary["hypervolume"]
        lines += [f"## Pareto front ({len(summary['pareto_front'])} architectures)", ""]
        lines.append(
            f"Hypervolume {hv['value']:.6g} (DEAP, objectives signed so larger is better, reference point "
            f"{[round(v, 6) for v in hv['reference']]}: the worst value of each over all scored candidates)."
        )
        lines.append("")
        lines.append("| architecture | " + " | ".join(names) + " |")
        lines.append("| --- |" + " --- |" * len(names))
        for item in sorted(summary["pareto_front"], key=lambda d: -d["metrics"][names[0]]):
            lines.append(f"| `{item['arch']}` | " + " | ".join(f"{item['metrics'][n]:.4f}" for n in names) + " |")
        lines.append("")
    lines += ["## Plots", ""] + [f"![{p}]({p})" for p in pictures] + [""]
    text = "\n".join(lines)
    run.write_text("report.md", text)
    return text
