"""Writing an ensemble build's results: CSV tables, PNG figures and a Markdown report.

Files written into the run directory::

    ensembles.csv          one row per pruner and baseline (the main table)
    members.csv            one row per trained member
    curves.csv             accuracy against ensemble size, per pruner
    diversity.npz          the pairwise test-diversity matrices, one array per measure
    accuracy_vs_size.png   validation and test accuracy against members kept, per pruner
    diversity.png          pairwise diversity heatmaps (NaN entries drawn grey)
    report.md              the tables, the figures and the SAEP target check
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ensembles._evaluate import BEST_SINGLE, BEST_SINGLE_ORACLE, FULL, EnsembleEvaluation, EnsembleRow
from evonas._files import atomic_write_bytes, save_figure, write_npz

ENSEMBLES_CSV = "ensembles.csv"
MEMBERS_CSV = "members.csv"
CURVES_CSV = "curves.csv"
DIVERSITY_NPZ = "diversity.npz"
SIZE_PNG = "accuracy_vs_size.png"
DIVERSITY_PNG = "diversity.png"
REPORT_MD = "report.md"


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.{digits}g}" if abs(value) < 1e4 else f"{value:.0f}"
    return str(value)


def _csv(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode()


def ensemble_table(evaluation: EnsembleEvaluation) -> tuple[list[str], list[list[Any]]]:
    """Header and rows of the main table (``ensembles.csv``)."""
    measures = list(evaluation.diversity)
    header = ["label", "kind", "pruner", "num_members", "num_params", "val_acc", "test_acc", "test_nll", "test_ece"]
    header += [f"diversity_{m}" for m in measures] + ["members", "weights"]
    rows = []
    for r in evaluation.rows:
        rows.append(
            [r.label, r.kind, r.pruner or "", r.num_members, "" if r.num_params is None else r.num_params,
             r.val_acc, r.test_acc, r.test_nll, r.test_ece]
            + [r.diversity[m] for m in measures]
            + [" ".join(r.members), " ".join(f"{w:.4g}" for w in r.weights)]
        )
    return header, rows


def format_table(evaluation: EnsembleEvaluation) -> str:
    """A plain-text table of every pruner and baseline, for the terminal."""
    return format_rows(evaluation.rows, len(evaluation.member_names))


def format_rows(rows: Sequence[EnsembleRow], num_members: int) -> str:
    """A plain-text table of ensemble rows out of ``num_members`` candidates (the first
    diversity measure of the rows as the last column)."""
    first = next(iter(rows[0].diversity), None) if rows else None
    header = ["ensemble", "members", "params", "val acc %", "test acc %", "test NLL", "test ECE"]
    if first is not None:
        header.append(f"div ({first})")
    lines = []
    for r in rows:
        cells = [
            r.label,
            f"{r.num_members}/{num_members}",
            "-" if r.num_params is None else f"{r.num_params:,}",
            f"{r.val_acc:.2f}",
            f"{r.test_acc:.2f}",
            f"{r.test_nll:.4f}",
            f"{r.test_ece:.4f}",
        ]
        if first is not None:
            cells.append(_fmt(r.diversity[first], 3))
        lines.append(cells)
    widths = [max([len(h), *(len(c[i]) for c in lines)]) for i, h in enumerate(header)]
    out = ["  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(header, widths)))]
    out.append("  ".join("-" * w for w in widths))
    for cells in lines:
        out.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))))
    return "\n".join(out)


def _markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    # A '|' inside a cell (NAS-Bench-201 strings are full of them) would end the cell.
    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    lines = ["| " + " | ".join(map(cell, header)) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(map(cell, row)) + " |" for row in rows]
    return lines


def plot_size_curves(evaluation: EnsembleEvaluation, path: Path) -> None:
    """Validation and test accuracy against the number of members kept, one line per pruner.

    The pruners' configured selections are drawn as larger markers; the full ensemble and
    the best single member (by validation accuracy) as horizontal lines.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True, sharey=False)
    for ax, split in zip(axes, ("val", "test")):
        for i, (label, points) in enumerate(evaluation.curves.items()):
            color = f"C{i % 10}"
            # PAP and Caruana may keep fewer members than the bound: one point per size kept.
            by_size: dict[int, float] = {}
            for p in points:
                by_size.setdefault(p.num_members, getattr(p, f"{split}_acc"))
            sizes = sorted(by_size)
            ax.plot(sizes, [by_size[s] for s in sizes], "o-", ms=3, lw=1.2, color=color, label=label)
            row = evaluation.row(label)
            ax.plot([row.num_members], [getattr(row, f"{split}_acc")], "*", ms=13, color=color, mec="black", mew=0.6)
        for label, style in ((FULL, "--"), (BEST_SINGLE, ":")):
            row = evaluation.row(label)
            ax.axhline(getattr(row, f"{split}_acc"), color="black", ls=style, lw=1, label=label)
        ax.set_xlabel("members kept")
        ax.set_ylabel(f"{'validation' if split == 'val' else 'test'} accuracy (%)")
        ax.set_xticks(range(1, len(evaluation.member_names) + 1))
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=8, loc="lower right")
    fig.suptitle("Ensemble accuracy against size (stars: configured selection)")
    save_figure(fig, path)
    plt.close(fig)


def plot_diversity(evaluation: EnsembleEvaluation, path: Path) -> None:
    """Heatmaps of the pairwise test-diversity matrices; NaN entries are grey and marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    measures = list(evaluation.diversity)
    cols = min(3, len(measures))
    nrows = math.ceil(len(measures) / cols)
    m = len(evaluation.member_names)
    size = max(3.2, 0.35 * m + 1.5)
    fig, axes = plt.subplots(nrows, cols, figsize=(cols * size * 1.15, nrows * size), squeeze=False,
                             constrained_layout=True)
    for ax in axes.ravel()[len(measures):]:
        ax.axis("off")
    for ax, name in zip(axes.ravel(), measures):
        mat = np.asarray(evaluation.diversity[name], dtype=np.float64)
        masked = np.ma.masked_invalid(mat)
        cmap = matplotlib.colormaps["viridis"].with_extremes(bad="lightgrey")
        finite = mat[np.isfinite(mat)]
        vmin, vmax = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        if vmin == vmax:
            vmin, vmax = vmin - 0.5, vmax + 0.5
        image = ax.imshow(masked, cmap=cmap, vmin=vmin, vmax=vmax)
        for i, j in zip(*np.nonzero(~np.isfinite(mat))):
            ax.text(j, i, "nan" if np.isnan(mat[i, j]) else "inf", ha="center", va="center", fontsize=6)
        ax.set_xticks(range(m))
        ax.set_yticks(range(m))
        ax.set_xticklabels(evaluation.member_names, rotation=90, fontsize=7)
        ax.set_yticklabels(evaluation.member_names, fontsize=7)
        ax.set_title(name, fontsize=10)
        fig.colorbar(image, ax=ax, shrink=0.8)
    fig.suptitle("Pairwise diversity of the members on the test split")
    save_figure(fig, path)
    plt.close(fig)


def write_ensemble_report(
    directory: str | Path,
    evaluation: EnsembleEvaluation,
    *,
    title: str = "Ensemble build",
    details: Sequence[str] = (),
) -> str:
    """Write the tables, figures and ``report.md`` of an evaluation into ``directory``.

    Args:
        directory: An existing directory (the run directory).
        evaluation: What :func:`~ensembles.evaluate_pool` returned.
        title: The report's heading.
        details: Extra Markdown bullet lines (dataset, training, candidates source, ...).

    Returns:
        The Markdown text of ``report.md``.
    """
    path = Path(directory)
    header, rows = ensemble_table(evaluation)
    atomic_write_bytes(path / ENSEMBLES_CSV, _csv(header, rows))
    member_header = list(evaluation.members[0]) if evaluation.members else []
    atomic_write_bytes(
        path / MEMBERS_CSV,
        _csv(member_header, [["" if v is None else v for v in m.values()] for m in evaluation.members]),
    )
    curve_rows = [
        [label, p.bound, p.num_members, p.val_acc, p.test_acc]
        for label, points in evaluation.curves.items()
        for p in points
    ]
    atomic_write_bytes(path / CURVES_CSV, _csv(["label", "bound", "num_members", "val_acc", "test_acc"], curve_rows))
    write_npz(path / DIVERSITY_NPZ, {"names": np.asarray(evaluation.member_names), **evaluation.diversity})
    figures = []
    if evaluation.curves:
        plot_size_curves(evaluation, path / SIZE_PNG)
        figures.append((SIZE_PNG, "Accuracy against ensemble size"))
    if evaluation.diversity:
        plot_diversity(evaluation, path / DIVERSITY_PNG)
        figures.append((DIVERSITY_PNG, "Pairwise diversity (test split)"))

    measures = list(evaluation.diversity)
    lines = [f"# {title}", ""]
    lines += [f"- {d}" for d in details]
    lines += [
        (f"- candidates trained: {len(evaluation.member_names)}; pruners choose on the validation split, "
        "every number below is on the held-out test split unless marked val"),
        "",
        "## Ensembles",
        "",
    ]
    table_header = ["ensemble", "members", "params", "val acc %", "test acc %", "test NLL", "test ECE"]
    table_header += [f"{m}" for m in measures]
    table_rows = []
    for r in evaluation.rows:
        table_rows.append(
            [f"**{r.label}**" if r.kind == "pruner" else r.label,
             f"{r.num_members}/{len(evaluation.member_names)}",
             "-" if r.num_params is None else f"{r.num_params:,}",
             f"{r.val_acc:.2f}", f"{r.test_acc:.2f}", f"{r.test_nll:.4f}", f"{r.test_ece:.4f}"]
            + [_fmt(r.diversity[m], 3) for m in measures]
        )
    lines += _markdown_table(table_header, table_rows)
    lines += ["", "Diversity columns: mean pairwise value over the kept members (NaN for a single member).", ""]
    target = evaluation.saep_target()
    if target:
        full = evaluation.row(FULL).test_acc
        single = evaluation.row(BEST_SINGLE_ORACLE).test_acc
        lines += [
            "## SAEP target",
            "",
            (f"At most half of the members, within 0.2 points of the full ensemble ({full:.2f} %), "
            f"better than the best single member on the test split ({single:.2f} %)."),
            "",
        ]
        lines += _markdown_table(
            ["pruner", "<= half", "within 0.2", "beats single", "met"],
            [[label, *("yes" if c[k] else "no" for k in ("half", "near_full", "beats_single", "met"))]
             for label, c in target.items()],
        )
        lines.append("")
    lines += ["## Selections", ""]
    for r in evaluation.rows:
        if r.kind == "pruner" or r.label not in (BEST_SINGLE, BEST_SINGLE_ORACLE):
            weights = "" if len(set(r.weights)) == 1 else " (weights " + ", ".join(f"{w:.3f}" for w in r.weights) + ")"
            lines.append(f"- {r.label}: {', '.join(r.members)}{weights}")
    lines += ["", "## Members", ""]
    lines += _markdown_table(
        ["member", "arch", "params", "val acc %", "test acc %", "test NLL", "test ECE"],
        [[m["name"], f"`{m['arch']}`", _fmt(m["num_params"]), f"{m['val_acc']:.2f}", f"{m['test_acc']:.2f}",
          f"{m['test_nll']:.4f}", f"{m['test_ece']:.4f}"] for m in evaluation.members],
    )
    lines.append("")
    for file, caption in figures:
        lines += [f"## {caption}", "", f"![{caption}]({file})", ""]
    if evaluation.notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in evaluation.notes] + [""]
    text = "\n".join(lines)
    atomic_write_bytes(path / REPORT_MD, text.encode())
    return text
