"""What search checkpoints cost, against the length of the run.

Protocol: regularized evolution (population 10, tournament 3, plain fitness, seed 0) on
NAS-Bench-201 with the tabular evaluator (noisy ``cifar10-valid_valid_acc``: a table
look-up, so the evaluator costs next to nothing and what is left to measure is the search
loop and its run directory), serial executor, for each number of evaluations three ways:

* in memory: no run directory (no log, no checkpoint);
* log only: a run directory whose ``checkpoint_every`` is larger than the run, so the one
  checkpoint written is the final one when the search ends;
* log + checkpoints: the default ``checkpoint_every`` (a checkpoint every 20 candidates).

Each time is the wall time of ``Search.run_search`` (table loading and run-directory
creation excluded), the minimum over ``--repeats`` repeats (the least disturbed by other
work on the machine). The overhead per evaluation is (log + checkpoints - log only) /
evaluations; it is flat when a checkpoint costs the same however long the run is. The
checkpoint size is that of ``checkpoint.pkl`` at the end of the run, and the single write
the median of ``--writes`` further checkpoint writes (pickle, sign, atomic write with
fsync) of the finished search of the last repeat. All runs of one length must give the
same history (checked). Run directories live under ``--dir`` (a temporary directory by
default), their signing key in it too unless ``$EVONAS_KEY_FILE`` is set.

Usage: python benchmarks/checkpoint_overhead.py [--evaluations 1000 4000 16000] [--repeats 3]
       [--writes 20] [--table PATH] [--dir DIR] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from evonas.config import ComponentConfig
from evonas.evaluation import TabularEvaluator, TabularEvaluatorConfig
from evonas.executors import SerialExecutor
from evonas.fitness import Objective, PlainFitness
from evonas.runs import CHECKPOINT, RunDir
from evonas.search import Budget, Search
from evonas.spaces import build_space
from evonas.strategies import REAConfig, RegularizedEvolution

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TABLE = ROOT.parent / "shared" / "data" / "nb201" / "nb201.csv.gz"
METRIC = "cifar10-valid_valid_acc"
DEFAULT_EVERY = 20
MODES = ("in memory", "log only", "log + checkpoints")


def make_search(evaluator: TabularEvaluator, evaluations: int, run: RunDir | None, every: int) -> Search:
    space = evaluator.space
    strategy = RegularizedEvolution(space, 1, np.random.default_rng(0), REAConfig(population_size=10, tournament_size=3))
    return Search(space, strategy, PlainFitness((Objective(METRIC),)), evaluator, SerialExecutor(),
                  Budget(evaluations=evaluations), seed=0, run=run, checkpoint_every=every)


def timed_run(evaluator: TabularEvaluator, evaluations: int, mode: str, run_dir: Path | None, writes: int = 0) -> dict[str, Any]:
    """One run of ``mode``: its time and history; with a run directory the checkpoint's
    size, and with ``writes`` the median time of that many more checkpoint writes of the
    finished search."""
    run = None if run_dir is None else RunDir.create(run_dir, {"benchmark": "checkpoint_overhead"}, 0, "search")
    every = evaluations + 1 if mode == "log only" else DEFAULT_EVERY
    search = make_search(evaluator, evaluations, run, every)
    t0 = time.perf_counter()
    history = search.run_search()
    seconds = time.perf_counter() - t0
    out: dict[str, Any] = {"seconds": seconds, "history": [(r.arch, r.values) for r in history]}
    if run is not None:
        out["checkpoint_bytes"] = (run.path / CHECKPOINT).stat().st_size
        times = []
        for _ in range(writes):
            t0 = time.perf_counter()
            run.save_checkpoint(search.state)
            times.append(time.perf_counter() - t0)
        out["write_seconds"] = statistics.median(times) if times else None
        run.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--evaluations", type=int, nargs="+", default=[1000, 4000, 16000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--writes", type=int, default=20, help="checkpoint writes timed at the end of a run")
    parser.add_argument("--table", default=os.environ.get("EVONAS_NB201", str(DEFAULT_TABLE)))
    parser.add_argument("--dir", type=Path, default=None, help="where run directories go (default: a temporary one)")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows as JSON here")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(dir=args.dir, prefix="evonas-ckpt-") as tmp:
        os.environ.setdefault("EVONAS_KEY_FILE", str(Path(tmp) / "run-key"))
        space = build_space("nb201")
        tables = (ComponentConfig("nb201", {"path": args.table}),)
        evaluator = TabularEvaluator(TabularEvaluatorConfig(tables=tables, metric=METRIC, report=(), noisy=True), space)
        print(__doc__.split("Usage:")[0].strip() + "\n")
        print(f"repeats: {args.repeats}; checkpoint_every: {DEFAULT_EVERY}; run directories under {tmp}\n")
        print("| evaluations | in memory s | log only s | log + checkpoints s | checkpoint overhead ms / evaluation "
              "| checkpoint.pkl bytes | one checkpoint write ms | same history |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- |")
        rows = []
        counter = 0
        for n in args.evaluations:
            best: dict[str, float] = {}
            histories = []
            size = 0
            write = 0.0
            for repeat in range(args.repeats):
                for mode in MODES:
                    counter += 1
                    run_dir = None if mode == "in memory" else Path(tmp) / f"run{counter}"
                    last = mode == "log + checkpoints" and repeat == args.repeats - 1
                    result = timed_run(evaluator, n, mode, run_dir, writes=args.writes if last else 0)
                    best[mode] = min(best.get(mode, float("inf")), result["seconds"])
                    histories.append(result["history"])
                    if last:
                        size, write = result["checkpoint_bytes"], result["write_seconds"]
            same = all(h == histories[0] for h in histories)
            overhead_ms = 1000 * (best["log + checkpoints"] - best["log only"]) / n
            row = {"evaluations": n, **{f"{m} s": best[m] for m in MODES}, "overhead ms / evaluation": overhead_ms,
                   "checkpoint bytes": size, "checkpoint write ms": 1000 * write, "same history": same}
            rows.append(row)
            print(f"| {n} | {best['in memory']:.2f} | {best['log only']:.2f} | {best['log + checkpoints']:.2f} "
                  f"| {overhead_ms:.3f} | {size} | {1000 * write:.2f} | {'yes' if same else 'NO'} |", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"protocol": __doc__.split("Usage:")[0].strip(), "repeats": args.repeats,
                                         "checkpoint_every": DEFAULT_EVERY, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
