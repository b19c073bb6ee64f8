"""The harness's Markdown tables and its plot of Kendall tau against training size."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

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
    """The Markdown report: one table per metric, zero-cost proxies at the bottom of each."""
    sizes = sorted({r["train_size"] for r in summary if r["train_size"] > 0})
    trained = _order([r for r in summary if r["train_size"] > 0], sizes) if sizes else []
    zero_cost = sorted(r["predictor"] for r in summary if r["train_size"] == 0)
    by_key = {(r["predictor"], r["train_size"]): r for r in summary}
    pool = "all others" if config.train_pool is None else str(config.train_pool)
    k = max(1, math.ceil(config.top_fraction * config.test_size))
    lines = [
        f"# Performance predictors on NAS-Bench-201: `{config.metric}`",
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
    fig.savefig(path, dpi=120)
    plt.close(fig)
