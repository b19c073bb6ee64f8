"""``report.md`` of a pipeline run: every stage's figures and tables in one page.

Each stage's own report (``supernet/report.md``, ``search/report.md``,
``ensemble/report.md`` with their PNGs) is regenerated first; the pipeline's report links
their figures and adds its own: ``proxy_quality.png`` (with tables: per proxy round, the
Kendall tau of the cells' inherited-weight validation loss against the ground truth),
``search_progress.png`` (the search's best-so-far fitness by candidate, the end of the
initial population marked, and the ground truth of the best-so-far pick when tables are
configured) and ``final_members.png`` (each final member's validation and test accuracy
next to the exported ensemble's).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evonas.config import from_dict
from evonas.errors import EvonasError, RunDirError
from evonas.pipeline._config import PipelineConfig, StagePaths
from evonas.runs import RESULT, RunDir, read_summary, report_run, run_kind

if TYPE_CHECKING:
    from evonas.tabular import JoinedTable

SEARCH_PNG = "search_progress.png"
MEMBERS_PNG = "final_members.png"
PROXY_PNG = "proxy_quality.png"


def proxy_quality(supernet_dir: Path, config: PipelineConfig, tables: JoinedTable | None = None) -> list[dict[str, Any]]:
    """Per proxy round of the supernet stage: Kendall tau between the cells' inherited-weight
    validation loss (negated) and the ground truth of the first ``report`` metric — how well
    the supernet ranked at that point of its training (empty without tables)."""
    from scipy.stats import kendalltau

    from evonas.supernet._run import read_records
    from evonas.tabular import build_tables

    if not config.tables or not config.report:
        return []
    run = RunDir.open(supernet_dir, kind="supernet")
    rounds = [r for r in read_records(run) if r.get("type") == "proxy"]
    if not rounds:
        return []
    space = config.space.build("space")
    if tables is None:
        tables = build_tables(config.tables, space)
    metric = config.report[0]
    out = []
    for r in rounds:
        pairs = []
        for arch, loss in zip(r["archs"], r["val_loss"]):
            genotype = space.validate(tuple(arch))
            truth, value = (tables.query(genotype, metric) if tables.has(genotype) else math.nan), _f(loss)
            if math.isfinite(truth) and math.isfinite(value):
                pairs.append((-value, truth))
        tau = float(kendalltau(*zip(*pairs)).statistic) if len(pairs) >= 3 else math.nan
        out.append({"step": r["step"], "final": bool(r.get("final")), "cells": len(pairs), "tau": tau,
                    "metric": metric})
    return out


def _draw_quality(run: RunDir, name: str, rows: list[dict[str, Any]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 3.8), constrained_layout=True)
    ax.plot([r["step"] for r in rows], [r["tau"] for r in rows], "o-")
    ax.axhline(0.0, color="grey", linewidth=0.8)
    ax.set_xlabel("supernet step")
    ax.set_ylabel(f"Kendall tau vs {rows[0]['metric']}")
    ax.set_title("proxy rounds: inherited-weight validation loss against the ground truth")
    ax.grid(alpha=0.3)
    run.write_figure(name, fig)
    plt.close(fig)


def search_progress(search_dir: Path, truth: tuple[str, ...]) -> dict[str, Any]:
    """Best-so-far of a search run by candidate: the fitness (as maximised) and, for the
    best-so-far pick, the ``truth`` metrics; plus where the initial population ends.

    Returns:
        ``{"index", "best", "truth": {metric: [...]}, "population", "at_population",
        "final", "improvements_after_population"}``.
    """
    from evonas.search._config import SearchConfig
    from evonas.search._run import load_history

    run = RunDir.open(search_dir, kind="search")
    config = from_dict(SearchConfig, run.config)
    history = [r for r in load_history(run) if r.values is not None and not r.failed]
    population = int(config.strategy.params.get("population_size", 0) or 0)
    index: list[int] = []
    best: list[float] = []
    picks: dict[str, list[float]] = {m: [] for m in truth}
    current = -math.inf
    pick: Any = None
    improvements = 0
    for i, record in enumerate(history):
        value = float((record.values or (math.nan,))[0])
        if value > current:
            current = value
            pick = record
            if i >= population:
                improvements += 1
        index.append(i + 1)
        best.append(current)
        for m in truth:
            picks[m].append(float(pick.metrics.get(m, math.nan)) if pick is not None else math.nan)
    at_population = best[min(population, len(best)) - 1] if best and population else None
    return {
        "index": index,
        "best": best,
        "truth": picks,
        "population": population,
        "at_population": at_population,
        "final": best[-1] if best else None,
        "improvements_after_population": improvements,
        "objective": config.fitness.objectives[0],
    }


def _draw_search(run: RunDir, name: str, progress: dict[str, Any], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    objective = progress["objective"]
    sign = 1.0 if objective.direction == "max" else -1.0
    fig, ax = plt.subplots(figsize=(7, 4), constrained_layout=True)
    ax.step(progress["index"], [sign * v for v in progress["best"]], where="post", color="C0", label="best fitness so far")
    if progress["population"]:
        ax.axvline(progress["population"], color="grey", linestyle="--", label="end of the initial population")
    ax.set_xlabel("candidates")
    ax.set_ylabel(f"{objective.metric} ({objective.direction}), fitness")
    ax.grid(alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    if progress["truth"]:
        twin = ax.twinx()
        for k, (metric, values) in enumerate(progress["truth"].items()):
            line = twin.step(progress["index"], values, where="post", color=f"C{k + 1}", alpha=0.8,
                             label=f"{metric} of the pick (ground truth)")
            handles += line
            labels.append(line[0].get_label())
        twin.set_ylabel("ground truth of the best-so-far pick")
    ax.legend(handles, labels, loc="lower right", fontsize=8)
    ax.set_title(title)
    run.write_figure(name, fig)
    plt.close(fig)


def _draw_members(run: RunDir, name: str, summary: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    members = summary["stages"]["final"]["members"]
    result = summary["result"]
    names = [m["name"] for m in members] + [f"ensemble\n{result['label']}"]
    val = [_f(m["val_acc"]) for m in members] + [_f(result["val_acc"])]
    test = [_f(m["test_acc"]) for m in members] + [_f(result["test_acc"])]
    x = list(range(len(names)))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(names)), 4), constrained_layout=True)
    ax.bar([i - 0.2 for i in x], val, width=0.4, label="validation")
    ax.bar([i + 0.2 for i in x], test, width=0.4, label="test")
    finite = [v for v in val + test if math.isfinite(v)]
    if finite:
        ax.set_ylim(max(0.0, min(finite) - 5), min(100.0, max(finite) + 2))
    ax.set_xticks(x, names, fontsize=8)
    ax.set_ylabel("accuracy (%)")
    ax.set_title("final members (trained from scratch) and the exported ensemble")
    ax.grid(axis="y", alpha=0.3)
    ax.legend()
    run.write_figure(name, fig)
    plt.close(fig)


def _f(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _fmt(value: Any, digits: int = 2) -> str:
    v = _f(value)
    return f"{v:.{digits}f}" if math.isfinite(v) else "-"


def _stage_report(path: Path) -> tuple[list[str], str | None]:
    """Regenerate a stage's report; its PNGs (relative to the stage) and any error."""
    if not path.is_dir():
        return [], "not started"
    try:
        report_run(path)
    except (EvonasError, RunDirError) as exc:
        return [], str(exc)
    return sorted(p.name for p in path.glob("*.png")), None


def write_report(run: RunDir, tables: JoinedTable | None = None) -> str:
    """Write ``report.md`` (and the pipeline's PNGs) in the pipeline run ``run``; return it.

    ``tables`` are the run's ground-truth tables when the caller has them loaded (None:
    loaded from the config when needed)."""
    from evonas.pipeline._run import format_summary

    config = from_dict(PipelineConfig, run.config)
    paths = StagePaths(run.path)
    finished = (run.path / RESULT).exists()
    summary = read_summary(run_kind("pipeline"), run) if finished else None
    lines = [f"# Pipeline report: {run.path.name}", ""]
    lines.append(f"- dataset: `{config.dataset.name}`; space: `{config.space.name}`; seed: {config.seed}")
    lines.append(f"- status: {'finished' if finished else 'in progress'}")
    if config.tables:
        lines.append(f"- ground truth: {', '.join(config.report)} from {', '.join(t.name for t in config.tables)}")
    lines.append("")
    if summary is not None:
        lines += ["## Summary", "", "```", format_summary(summary, None), "```", ""]

    pngs, error = _stage_report(paths.of("supernet"))
    lines += [f"## 1. Supernet (`supernet/`, sampler `{config.supernet.sampler.name}`)", ""]
    lines += [f"stage report: {error}", ""] if error else []
    if not error:
        quality = proxy_quality(paths.of("supernet"), config, tables)
        if quality:
            _draw_quality(run, PROXY_PNG, quality)
            lines += [f"Proxy rounds against the ground truth ({quality[0]['metric']}): Kendall tau of the "
                      "cells' inherited-weight validation loss, per round.", "",
                      "| step | cells | Kendall tau |", "| --- | --- | --- |"]
            lines += [f"| {q['step']}{' (final)' if q['final'] else ''} | {q['cells']} | {_fmt(q['tau'], 3)} |"
                      for q in quality]
            lines += ["", f"![{PROXY_PNG}]({PROXY_PNG})"]
    lines += [f"![{p}](supernet/{p})" for p in pngs] + ["", "[supernet report](supernet/report.md)", ""]

    pngs, error = _stage_report(paths.of("search"))
    lines += [f"## 2. Search (`search/`, {config.search.strategy.name}, fitness {config.search.fitness.name} on "
              f"the {config.search.score} score)", ""]
    if error:
        lines += [f"stage report: {error}", ""]
    else:
        progress = search_progress(paths.of("search"), tuple(config.report))
        _draw_search(run, SEARCH_PNG, progress, f"search best-so-far, seed {config.seed}")
        obj = progress["objective"]
        sign = 1.0 if obj.direction == "max" else -1.0
        lines.append(
            f"Best fitness ({obj.direction} {obj.metric}) after the initial population of {progress['population']}: "
            f"{_fmt(sign * progress['at_population'] if progress['at_population'] is not None else None, 4)}; at "
            f"the end: {_fmt(sign * progress['final'] if progress['final'] is not None else None, 4)} "
            f"({progress['improvements_after_population']} improvements after the initial population)."
        )
        lines += ["", f"![{SEARCH_PNG}]({SEARCH_PNG})"] + [f"![{p}](search/{p})" for p in pngs]
        lines += ["", "[search report](search/report.md)", ""]

    pngs, error = _stage_report(paths.of("ensemble"))
    lines += ["## 3. Final members (`ensemble/pool/members/`)", ""]
    if summary is not None:
        report = summary.get("report") or []
        lines.append("| member | architecture | params | val acc | test acc |" + "".join(f" {m} |" for m in report))
        lines.append("|" + " --- |" * (5 + len(report)))
        for m in summary["stages"]["final"]["members"]:
            lines.append(
                f"| {m['name']} | `{m['arch']}` | {m['num_params']} | {_fmt(m['val_acc'])} | {_fmt(m['test_acc'])} |"
                + "".join(f" {_fmt((m.get('truth') or {}).get(k))} |" for k in report)
            )
        rescored = summary["stages"]["final"].get("rescored") or []
        if rescored:
            lines += ["", "Re-scored with the supernet's inherited weights (the best kept):", "",
                      "| architecture | search fitness | val loss | val acc |", "| --- | --- | --- | --- |"]
            lines += [f"| `{r['arch']}` | {_fmt(r['search_value'], 4)} | {_fmt(r['val_loss'], 4)} | "
                      f"{_fmt(r['val_acc'])} |" for r in rescored]
        _draw_members(run, MEMBERS_PNG, summary)
        lines += ["", f"![{MEMBERS_PNG}]({MEMBERS_PNG})", ""]
    lines += ["## 4. Ensemble (`ensemble/`)", ""]
    lines += [f"stage report: {error}", ""] if error else []
    if summary is not None:
        res = summary["result"]
        lines.append(
            f"Exported `{res['label']}`: {res['num_members']} of {res['pool_size']} members, test accuracy "
            f"{_fmt(res['test_acc'])} % (best single member {_fmt(res['best_single_test_acc'])} %, full pool "
            f"{_fmt(res['full_pool_test_acc'])} %)."
        )
        lines.append("")
    lines += [f"![{p}](ensemble/{p})" for p in pngs] + ["", "[ensemble report](ensemble/report.md)", ""]
    lines += ["## 5. Export (`export/`)", ""]
    if (paths.export / "ensemble.yaml").is_file():
        lines += [f"`evonas.load_ensemble({str(run.path)!r})` returns the ensemble as an `nn.Module`; "
                  f"`evonas predict {run.path} IMAGES...` writes its predictions as CSV.", ""]
    else:
        lines += ["not written yet", ""]
    text = "\n".join(lines)
    run.write_text("report.md", text)
    return text


__all__ = ["MEMBERS_PNG", "PROXY_PNG", "SEARCH_PNG", "proxy_quality", "search_progress", "write_report"]
