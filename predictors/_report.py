"""The harness's outputs, rebuilt from a run's log: per-trial rows, their summary, the CSV
files, the Markdown tables and the plot of Kendall tau against training size."""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from evonas._files import atomic_write_bytes, save_figure
from evonas.errors import RunDirError
from evonas.runs import RunDir
from predictors._trials import METRICS, trial_key

if TYPE_CHECKING:
    from predictors._harness import HarnessConfig

_TABLES = (
    ("kendall_tau", "Kendall τ", 3),
    ("spearman_rho", "Spearman ρ", 3),
    ("pearson_r", "Pearson r", 3),
    ("precision_at_top", "precision@top-k", 3),
    ("fit_time_s", "fit time (s)", 2),
    ("query_time_s", "query time (s)", 3),
)


def _cell(mean: float, std: float, digits: int) -> str:
    if not math.isfinite(mean):
        return "n/a"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def _order(summary: list[dict[str, Any]], sizes: list[int]) -> list[str]:
    """Trained predictors, best mean tau at the largest size first."""
    last = sizes[-1]
    score = {r["predictor"]: r["kendall_tau_mean"] for r in summary if r["train_size"] == last}
    return sorted(score, key=lambda n: -score[n] if math.isfinite(score[n]) else math.inf)


def markdown_report(config: Any, summary: list[dict[str, Any]], zc_rows: list[dict[str, Any]], rows: list[dict[str, Any]]) -> str:
    """The Markdown report: one table per metric, zero-cost proxies at the bottom of each.

    Args:
        config: The run's :class:`~predictors.HarnessConfig`.
        summary: Mean and std per predictor and training size.
        zc_rows: Each proxy's correlations over every scored architecture.
        rows: One dict per finished trial (failures are listed).
    """
    sizes = sorted({r["train_size"] for r in summary if r["train_size"] > 0})
    trained = _order([r for r in summary if r["train_size"] > 0], sizes) if sizes else []
    zero_cost = sorted(r["predictor"] for r in summary if r["train_size"] == 0)
    by_key = {(r["predictor"], r["train_size"]): r for r in summary}
    pool = "all others" if config.train_pool is None else str(config.train_pool)
    k = max(1, math.ceil(config.top_fraction * config.test_size))
    better = "higher" if config.direction == "max" else "lower"
    lines = [
        f"# Performance predictors on `{config.space.name}`: `{config.metric}` ({better} is better)",
        "",
        f"Protocol (White et al., NeurIPS 2021): fixed test set of {config.test_size} random architectures, "
        f"training sets drawn from a pool of {pool} others, {config.trials} trials per size (seed {config.seed}); "
        f"mean ± std over trials. Zero-cost proxies need no training: one value on the test set. "
        f"precision@top-k with k = {k}.",
        "",
    ]
    if sizes:
        best = []
        for size in sizes:
            cands = [(by_key[(n, size)]["kendall_tau_mean"], n) for n in trained if (n, size) in by_key]
            cands = [c for c in cands if math.isfinite(c[0])]
            if cands:
                tau, name = max(cands)
                best.append(f"{size}: **{name}** ({tau:.3f})")
        lines += ["Best mean Kendall τ by training size — " + "; ".join(best) + ".", ""]
    for metric, title, digits in _TABLES:
        lines += [f"## {title}", "", "| predictor | " + " | ".join(str(s) for s in sizes) + " |"]
        lines.append("|---|" + "---:|" * len(sizes))
        for name in trained:
            cells = []
            for size in sizes:
                r = by_key.get((name, size))
                cells.append(_cell(r[f"{metric}_mean"], r[f"{metric}_std"], digits) if r else "")
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        for name in zero_cost:
            r = by_key[(name, 0)]
            value = _cell(r[f"{metric}_mean"], 0.0, digits).split(" ±")[0]
            lines.append(f"| {name} (no training) | " + " | ".join([value] * len(sizes)) + " |")
        lines.append("")
    if zc_rows:
        n = zc_rows[0]["n_archs"]
        lines += [
            f"## Zero-cost proxies over all {n} scored architectures (test set and pool)",
            "",
            "| proxy | Kendall τ | Spearman ρ |",
            "|---|---:|---:|",
        ]
        for r in zc_rows:
            lines.append(f"| {r['proxy']} | {r['kendall_tau']:.3f} | {r['spearman_rho']:.3f} |")
        seconds = zc_rows[0]["scoring_time_s"]
        note = "all scores came from the cache" if seconds < 1 else f"scoring the uncached ones took {seconds:.0f} s"
        lines += ["", f"Zero-cost scores: {note}.", ""]
    failures = [r for r in rows if r["failed"]]
    if failures:
        lines += ["## Failed trials", ""]
        for r in failures[:20]:
            lines.append(f"- {r['predictor']} size {r['train_size']} trial {r['trial']}: {r['error']}")
        lines.append("")
    return "\n".join(lines)


def plot_kendall(summary: list[dict[str, Any]], path: Path, title: str) -> None:
    """Mean Kendall tau (± std) against training size per predictor; proxies as horizontal lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(11, 6))
    names = sorted({r["predictor"] for r in summary if r["train_size"] > 0})
    cmap = plt.get_cmap("tab20")
    for i, name in enumerate(names):
        pts = sorted((r["train_size"], r["kendall_tau_mean"], r["kendall_tau_std"]) for r in summary
                     if r["predictor"] == name and r["train_size"] > 0)
        xs, ys, es = zip(*pts)
        ax.errorbar(xs, ys, yerr=es, marker="o", ms=3, capsize=2, label=name, color=cmap(i % 20))
    styles = ["--", ":", "-."]
    proxies = sorted((r for r in summary if r["train_size"] == 0), key=lambda r: r["predictor"])
    greys = plt.get_cmap("copper")
    for i, r in enumerate(proxies):
        ax.axhline(r["kendall_tau_mean"], ls=styles[i % 3], lw=1.2, color=greys(i / max(1, len(proxies))),
                   label=f"{r['predictor']} (no training)")
    ax.set_xscale("log")
    ax.set_xlabel("training architectures")
    ax.set_ylabel("Kendall τ on the test set")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


@dataclass
class HarnessOutputs:
    """The tables of a run and the files they were written to.

    Attributes:
        rows: One dict per finished trial: predictor, train_size (0 for zero-cost
            proxies), trial, the :data:`METRICS`, failed, error.
        summary: One dict per (predictor, train_size): mean and std of every metric.
        zero_cost: One dict per zero-cost proxy: correlations over every scored architecture.
        markdown: The Markdown report (``results.md``).
        files: Paths of the files written, by kind (``csv``, ``summary``, ``markdown``, ``plot``).
    """

    rows: list[dict[str, Any]]
    summary: list[dict[str, Any]]
    zero_cost: list[dict[str, Any]]
    markdown: str
    files: dict[str, Path]


def zero_cost_records(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows of the last ``zero_cost`` record of a log (empty: none)."""
    last: list[dict[str, Any]] = []
    for r in records:
        if r.get("type") == "zero_cost":
            last = [{**row, **{k: float(row[k]) for k in ("kendall_tau", "spearman_rho", "scoring_time_s")}}
                    for row in r["rows"]]
    return last


def _rows_from_log(records: list[dict[str, Any]], config: HarnessConfig) -> list[dict[str, Any]]:
    """The finished trials of a log, in the order of the config's predictors, sizes and trials."""
    names = list(config.predictor_names)
    by_key: dict[tuple[str, int, int], dict[str, Any]] = {}
    for r in records:
        if r.get("type") != "trial":
            continue
        row: dict[str, Any] = {"predictor": r["predictor"], "train_size": int(r["train_size"]), "trial": int(r["trial"])}
        row.update({m: float(r[m]) for m in METRICS})
        row["failed"] = bool(r["failed"])
        row["error"] = str(r["error"])
        by_key[trial_key(row["predictor"], row["train_size"], row["trial"])] = row

    def order(key: tuple[str, int, int]) -> tuple[int, str, int, int]:
        name, size, trial = key
        return (names.index(name) if name in names else len(names), name, size, trial)

    return [by_key[k] for k in sorted(by_key, key=order)]


def _summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["predictor"], row["train_size"]), []).append(row)
    out = []
    for (name, size), members in groups.items():
        ok = [r for r in members if not r["failed"]]
        entry: dict[str, Any] = {"predictor": name, "train_size": size, "trials": len(ok), "failed": len(members) - len(ok)}
        for m in METRICS:
            values = np.array([r[m] for r in ok], dtype=np.float64)
            values = values[np.isfinite(values)]
            entry[f"{m}_mean"] = float(values.mean()) if values.size else math.nan
            entry[f"{m}_std"] = float(values.std()) if values.size else math.nan
        out.append(entry)
    return out


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    buffer = io.StringIO(newline="")
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    atomic_write_bytes(path, buffer.getvalue().encode())


def write_outputs(run: RunDir, config: HarnessConfig) -> HarnessOutputs:
    """(Re-)write ``results.csv``, ``summary.csv``, ``results.md``, ``report.md`` and
    ``kendall_tau.png`` of a run from its log.

    Raises:
        RunDirError: The log has no finished trial yet.
    """
    records = run.read_log()
    rows = _rows_from_log(records, config)
    if not rows:
        raise RunDirError(f"run directory {str(run.path)!r} has no finished predictor trial yet")
    summary = _summarise(rows)
    zero_cost = zero_cost_records(records)
    files = {
        "csv": run.path / "results.csv",
        "summary": run.path / "summary.csv",
        "markdown": run.path / "results.md",
        "plot": run.path / "kendall_tau.png",
    }
    _write_csv(files["csv"], rows)
    _write_csv(files["summary"], summary)
    markdown = markdown_report(config, summary, zero_cost, rows)
    run.write_text("results.md", markdown)
    run.write_text("report.md", markdown)
    plot_kendall(summary, files["plot"], title=f"{config.metric}: Kendall tau vs training size")
    return HarnessOutputs(rows=rows, summary=summary, zero_cost=zero_cost, markdown=markdown, files=files)
