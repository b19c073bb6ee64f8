"""Starting, resuming and summarising search runs in run directories."""

from __future__ import annotations

import datetime as _dt
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evonas.config import from_dict, load_config, to_dict
from evonas.runs import RESULT, RunDir
from evonas.search._config import SearchConfig, build_parts, resolve_config
from evonas.search._loop import Budget, CandidateRecord, Search, best_candidate, pareto_front

KIND = "search"


@dataclass
class SearchResult:
    """What a finished search reports."""

    run_dir: Path
    history: list[CandidateRecord]
    summary: dict[str, Any]


def default_run_dir(config_path: str | os.PathLike[str] | None) -> Path:
    stem = Path(config_path).stem if config_path else "search"
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{stem}-{stamp}"


def start_search(
    config_path: str | os.PathLike[str] | None,
    overrides: list[str] | tuple[str, ...] = (),
    run_dir: str | os.PathLike[str] | None = None,
    progress: bool | None = None,
) -> SearchResult:
    """Validate a config, create its run directory and run the search.

    Everything is validated and built before the run directory is created, so a bad
    config leaves nothing behind and never touches an existing directory.
    """
    config = load_config(SearchConfig, config_path, overrides)
    resolved, typed = resolve_config(config)
    parts = build_parts(resolved, typed)
    path = Path(run_dir) if run_dir is not None else Path(resolved.run_dir) if resolved.run_dir else default_run_dir(config_path)
    run = RunDir.create(path, to_dict(resolved), resolved.seed, KIND)
    try:
        return _execute(run, resolved, parts, resume=False, progress=progress)
    finally:
        run.close()


def resume_search(run_dir: str | os.PathLike[str], progress: bool | None = None) -> SearchResult:
    """Continue the search in ``run_dir`` from its checkpoint and log."""
    run = RunDir.open(run_dir, kind=KIND)
    run.lock()
    try:
        config = from_dict(SearchConfig, run.config)
        resolved, typed = resolve_config(config)
        if (run.path / RESULT).exists():
            history = load_history(run)
            return SearchResult(run.path, history, summarize(history, resolved, "finished before"))
        parts = build_parts(resolved, typed)
        return _execute(run, resolved, parts, resume=True, progress=progress)
    finally:
        run.close()


def _execute(run: RunDir, config: SearchConfig, parts: Any, resume: bool, progress: bool | None) -> SearchResult:
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
        progress=config.progress if progress is None else progress,
    )
    history = search.run_search(resume=resume)
    summary = summarize(history, config, search.stop_reason or "budget")
    run.write_json(RESULT, summary)
    return SearchResult(run.path, history, summary)


def load_history(run: RunDir) -> list[CandidateRecord]:
    """The scored candidates of a run, from its log."""
    out = []
    for r in run.read_log():
        if r.get("type") != "candidate":
            continue
        out.append(
            CandidateRecord(
                cand_id=r["cand_id"],
                arch=tuple(r["arch"]),
                values=None if r["values"] is None else tuple(float(v) for v in r["values"]),
                metrics={k: float(v) for k, v in r["metrics"].items()},
                failed=r["failed"],
                num_evaluations=r["num_evaluations"],
                used_evaluations=r["used_evaluations"],
                used_seconds=r["used_seconds"],
            )
        )
    return out


def summarize(history: list[CandidateRecord], config: SearchConfig, stop_reason: str) -> dict[str, Any]:
    """The summary of a run: best architecture, its metrics, and the budget used."""
    from evonas.spaces import SPACES

    space = SPACES.get(config.space)()
    best = best_candidate(history)
    last = history[-1] if history else None
    summary: dict[str, Any] = {
        "stop_reason": stop_reason,
        "candidates": len(history),
        "failed": sum(r.failed for r in history),
        "used_evaluations": last.used_evaluations if last else 0,
        "used_seconds": last.used_seconds if last else 0.0,
        "objectives": [f"{o.direction} {o.metric}" for o in config.fitness.objectives],
    }
    if best is not None:
        summary["best"] = {
            "arch": space.format(best.arch),
            "cand_id": best.cand_id,
            "metrics": best.metrics,
        }
        headline = config.report or config.fitness.objectives[0].metric
        summary["best"]["headline"] = {headline: best.metrics.get(headline)}
    if len(config.fitness.objectives) > 1:
        summary["pareto_front"] = [
            {"arch": space.format(r.arch), "metrics": {o.metric: r.metrics.get(o.metric) for o in config.fitness.objectives}}
            for r in pareto_front(history)
        ]
    return summary


def format_summary(summary: dict[str, Any], run_dir: Path | None = None) -> str:
    """A few lines for the terminal."""
    lines = []
    if run_dir is not None:
        lines.append(f"run directory: {run_dir}")
    lines.append(
        f"candidates: {summary['candidates']} ({summary['failed']} failed); budget used: "
        f"{summary['used_evaluations']} evaluations, {summary['used_seconds']:.1f} s; stopped: {summary['stop_reason']}"
    )
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
        lines.append(f"Pareto front: {len(summary['pareto_front'])} architectures")
    return "\n".join(lines)


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


__all__ = ["Budget", "SearchResult", "format_summary", "load_history", "resume_search", "start_search", "summarize"]
