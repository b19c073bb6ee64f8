"""Differentiable NAS on the NAS-Bench-201 cell, judged by the table.

Protocol: every run is ``evonas dnas train`` with configs/dnas-darts-cifar10.yaml and the
overrides below — CIFAR-10 JPEGs (../shared/data/images), the cifar10-valid training
split, a seeded subset of ``--images`` training images halved into the weights' and the
architecture's data (DARTS' 50/50 split), a small mixed supernet (C=8, one cell per stage,
32x32 inputs), batch ``--batch-size``, ``--epochs`` passes over the weights' half, DARTS'
optimisers (SGD 0.025 cosine to 0.001, momentum 0.9, weight decay 3e-4; Adam 3e-4 on
alpha; one more DARTS row scales that rate so alpha moves as far as in the paper's 50
epochs), one torch thread per run and two runs at a time. Each searched supernet is read
two ways: magnitude (argmax alpha per edge, taken before any discretisation) and DARTS-PT
perturbation selection (10 fine-tuning steps between edges, removals scored on 10
validation batches). The derived cells are looked up in the NAS-Bench-201 table: the
200-epoch CIFAR-10 test accuracy is reported, never used to choose anything. The cell the
magnitude of alpha derives after every epoch is recorded: the ground-truth curve of each
search (PNG per method in ``--out``).

Usage: python benchmarks/dnas_nb201.py [--out DIR] [--epochs 12] [--images 5000]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "dnas-darts-cifar10.yaml"
DEFAULT_TABLE = ROOT.parent / "shared" / "data" / "nb201" / "nb201.csv.gz"
REPORT = "cifar10_test_acc"
# run key -> (registered method, label, extra overrides)
METHODS = {
    "darts1": ("darts1", "DARTS, first order", []),
    "darts2": ("darts2", "DARTS, second order", []),
    "milenas": ("milenas", "MiLeNAS", []),
    "nadarts": ("nadarts", "NA-DARTS (4 sampled neighbours, radius 0.5)", ["method.params.neighbours=4"]),
    # The paper's 50 epochs on 25k images move alpha for about 19,500 Adam steps; at 3e-4 a
    # CPU-sized run's few hundred steps leave alpha near uniform. This row gives Adam the
    # step size that moves alpha as far in this run's steps as the paper's schedule does.
    "darts1-fast": ("darts1", "DARTS, first order, alpha lr scaled to the paper's total steps", []),
}
PAPER_ARCH_STEPS = 50 * (25000 // 64)  # DARTS on NAS-Bench-201: 50 epochs, batch 64, the 25k training images
PUBLISHED = [
    ("DARTS (first and second order), magnitude", "54.30", "Dong & Yang, ICLR 2020 (the cell collapses to skip connections)"),
    ("GDAS", "93.61", "Dong & Yang, ICLR 2020"),
    ("DARTS-PT (perturbation selection on DARTS' supernet)", "about 88.2", "Wang et al., ICLR 2021, their NAS-Bench-201 rerun"),
    ("MiLeNAS", "not reported on NAS-Bench-201", "He et al., CVPR 2020 report the DARTS space only"),
    ("NA-DARTS", "not found in the available text", "Wang et al., BMVC 2021 (abstract only in this workplace)"),
]


def job(args: tuple[str, int, str, list[str]]) -> dict:
    """One search in its own run directory (resumed if an earlier call was interrupted)."""
    key, seed, out, overrides = args
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
    from evonas.runs import resume_run, start_run

    run_dir = Path(out) / f"{key}-seed{seed}"
    t0 = time.perf_counter()
    if (run_dir / "meta.yaml").exists():
        result = resume_run(run_dir, (), progress=False, kind="dnas")
    else:
        result = start_run("dnas", str(CONFIG), [f"method.name={METHODS[key][0]}", f"seed={seed}", *overrides],
                           run_dir=run_dir, progress=False)
    from evonas.dnas._run import read_records
    from evonas.runs import RunDir

    run = RunDir.open(run_dir, kind="dnas")
    epochs = [r for r in read_records(run) if r.get("type") == "epoch"]
    result.kind.report(run)
    return {"method": key, "seed": seed, "summary": result.summary, "wall": time.perf_counter() - t0,
            "curve": [(r["epoch"], r.get(REPORT), r["param_free"], r["cell"]) for r in epochs]}


def mean_std(values: list[float]) -> str:
    a = np.asarray(values, dtype=float)
    return f"{a.mean():.2f} ± {a.std():.2f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="runs/dnas-bench", help="run directories and plots go here")
    parser.add_argument("--epochs", type=int, default=12, help="passes over the weights' half (default 12)")
    parser.add_argument("--images", type=int, default=5000, help="training images, halved (default 5000)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--darts-seeds", type=int, default=3, help="seeds of first-order DARTS (default 3)")
    parser.add_argument("--other-seeds", type=int, default=2, help="seeds of every other method (default 2)")
    parser.add_argument("--workers", type=int, default=2, help="runs at a time (default 2)")
    parser.add_argument("--table", default=os.environ.get("EVONAS_NB201", str(DEFAULT_TABLE)))
    parser.add_argument("--json", help="also write the raw results here")
    args = parser.parse_args()

    from evonas.tabular import NB201Table

    table = NB201Table.load(args.table)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    steps_per_epoch = (args.images // 2) // args.batch_size
    steps = args.epochs * steps_per_epoch
    common = [
        f"dataset.max_train={args.images}", f"batch_size={args.batch_size}", f"steps={steps}",
        "selection.name=perturbation", "compute.num_threads=1", f"table={os.path.abspath(args.table)}",
        f"checkpoint_every={steps_per_epoch}",
    ]
    fast_lr = 3e-4 * PAPER_ARCH_STEPS / steps
    METHODS["darts1-fast"][2].append(f"arch_optim.lr={fast_lr:.6g}")
    jobs = []
    for key in ("darts2", "nadarts", "milenas", "darts1", "darts1-fast"):  # slowest first: the pool stays busy
        n = args.darts_seeds if key.startswith("darts1") else args.other_seeds
        jobs += [(key, seed, str(out), common + METHODS[key][2]) for seed in range(n)]
    print(__doc__.split("Usage:")[0].strip())
    print(f"\nThis run: {args.images} training images ({args.images // 2} per half), batch {args.batch_size}, "
          f"{args.epochs} epochs = {steps} steps; DARTS {args.darts_seeds} seeds, others {args.other_seeds}; "
          f"{args.workers} runs at a time. The 'scaled' DARTS row uses Adam lr {fast_lr:.3g} on alpha "
          f"(3e-4 x {PAPER_ARCH_STEPS} / {steps} steps).\n", flush=True)
    t0 = time.perf_counter()
    ctx = mp.get_context("spawn")
    with ctx.Pool(args.workers, maxtasksperchild=1) as pool:
        results = []
        for r in pool.imap_unordered(job, jobs):
            s = r["summary"]
            print(f"  done {r['method']} seed {r['seed']}: perturbation {s.get(REPORT)}, magnitude "
                  f"{s['magnitude_cell'].get(REPORT)}; search {s['search_seconds']:.0f} s", flush=True)
            results.append(r)
    wall = time.perf_counter() - t0
    results.sort(key=lambda r: (list(METHODS).index(r["method"]), r["seed"]))

    params = table.column("params_M")
    largest = table.query(table.space.from_ordinal(int(np.argmax(params))), REPORT)  # columns: the space's order
    rng = np.random.default_rng(0)
    random_accs = [table.query(table.space.from_ordinal(int(i)), REPORT) for i in rng.integers(0, len(table), 10000)]

    print("\n## Derived cells: NAS-Bench-201 200-epoch CIFAR-10 test accuracy (mean ± std over seeds)\n")
    print("| method | selection | seeds | test acc | per seed | parameter-free share | depth / width | search s | selection s |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for key, (_, label, _) in METHODS.items():
        rs = [r for r in results if r["method"] == key]
        if not rs:
            continue
        for sel in ("magnitude", "perturbation"):
            cells = [r["summary"]["magnitude_cell"] if sel == "magnitude" else r["summary"] for r in rs]
            accs = [c[REPORT] for c in cells]
            sel_s = "0" if sel == "magnitude" else f"{np.mean([r['summary']['select_seconds'] for r in rs]):.0f}"
            print(f"| {label} | {sel} | {len(rs)} | {mean_std(accs)} | {', '.join(f'{a:.2f}' for a in accs)} | "
                  f"{np.mean([c['param_free'] for c in cells]):.2f} | "
                  f"{np.mean([c['depth'] for c in cells]):.1f} / {np.mean([c['width'] for c in cells]):.1f} | "
                  f"{np.mean([r['summary']['search_seconds'] for r in rs]):.0f} | {sel_s} |")
    print(f"| trivial: largest cell (most parameters) | - | - | {largest:.2f} | | | | | |")
    print(f"| trivial: a random cell (10,000 draws) | - | - | {mean_std(random_accs)} | | | | | |")
    top = results[0]["summary"].get("table_top") if results else None
    if top:
        print(f"| the table's top {top['k']} by cifar10-valid validation (shape only) | - | - | - | | "
              f"{top['param_free']:.2f} | {top['depth']:.1f} / {top['width']:.1f} | | |")

    print("\n## Perturbation minus magnitude selection on the same supernet (test acc, paired by run)\n")
    print("| method | per seed | mean |\n| --- | --- | --- |")
    for key, (_, label, _) in METHODS.items():
        rs = [r for r in results if r["method"] == key]
        if rs:
            d = [r["summary"][REPORT] - r["summary"]["magnitude_cell"][REPORT] for r in rs]
            print(f"| {label} | {', '.join(f'{x:+.2f}' for x in d)} | {np.mean(d):+.2f} |")

    print("\n## Ground-truth curves: the magnitude-derived cell after each epoch (test acc / parameter-free share)\n")
    marks = sorted({0, args.epochs // 4, args.epochs // 2, 3 * args.epochs // 4, args.epochs})
    print("| run | " + " | ".join(f"epoch {m}" for m in marks) + " |")
    print("| --- |" + " --- |" * len(marks))
    for r in results:
        by_epoch = {round(e): (acc, pf) for e, acc, pf, _ in r["curve"]}
        cells = [f"{by_epoch[m][0]:.2f} / {by_epoch[m][1]:.2f}" if m in by_epoch else "-" for m in marks]
        print(f"| {r['method']} seed {r['seed']} | " + " | ".join(cells) + " |")
    _plot_curves(results, out)

    print("\n## Published on NAS-Bench-201 CIFAR-10 (GPU, full size)\n")
    print("| method | test acc | source |\n| --- | --- | --- |")
    for row in PUBLISHED:
        print("| " + " | ".join(row) + " |")
    print(f"\nwall time: {wall / 60:.1f} min; run directories and curves in {out}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


def _plot_curves(results: list[dict], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = [m for m in METHODS if any(r["method"] == m for r in results)]
    fig, axes = plt.subplots(2, len(methods), figsize=(4 * len(methods), 6), sharex=True, constrained_layout=True,
                             squeeze=False)
    for j, method in enumerate(methods):
        for r in (r for r in results if r["method"] == method):
            e = [c[0] for c in r["curve"]]
            axes[0, j].plot(e, [c[1] for c in r["curve"]], "o-", ms=3, label=f"seed {r['seed']}")
            axes[1, j].plot(e, [c[2] for c in r["curve"]], "s-", ms=3, label=f"seed {r['seed']}")
        axes[0, j].set_title(METHODS[method][1], fontsize=8)
        axes[1, j].set_xlabel("epoch")
        axes[1, j].set_ylim(-0.05, 1.05)
        for ax in axes[:, j]:
            ax.grid(alpha=0.3)
        axes[0, j].legend(fontsize=7)
    axes[0, 0].set_ylabel("table CIFAR-10 test acc (%)")
    axes[1, 0].set_ylabel("parameter-free share")
    fig.suptitle("the cell magnitude selection derives after each epoch")
    fig.savefig(out / "ground_truth_curves.png", dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
