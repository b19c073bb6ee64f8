"""SAEP ensemble pruning on real data: members kept, parameters, test accuracy, NLL, ECE.

Trains the candidates of ``configs/ensemble-fashion-mnist.yaml`` (twelve diverse
NAS-Bench-201 cells) from scratch on CPU as Ray tasks, prunes the pool with SAEP's PRS,
PAP and PIE (Bian et al., "Sub-Architecture Ensemble Pruning in Neural Architecture
Search", IEEE TNNLS 2021) and the top-k and Caruana baselines on validation data, and
prints every ensemble's figures on the held-out test set, with the best single member
and the full ensemble. Target: a SAEP-pruned ensemble keeps at most half of the members,
is within 0.2 points of the full ensemble's test accuracy and beats the best single
member.

Data: Fashion-MNIST from Debian's ``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist``).

Usage::

    python benchmarks/ensemble_saep.py [--run-dir DIR] [--config PATH] [key.sub=value ...]
    python benchmarks/ensemble_saep.py --resume DIR      # continue an interrupted run

The run directory keeps the members, the report (``report.md``), the tables and the
figures; a second invocation with ``--resume`` on a finished run prints its summary
without training.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = ROOT / "configs" / "ensemble-fashion-mnist.yaml"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(DEFAULT_CONFIG), help="ensemble config (default: %(default)s)")
    parser.add_argument("--run-dir", help="new run directory (default: runs/ensemble-saep-<time>)")
    parser.add_argument("--resume", metavar="RUN_DIR",
                        help="continue the build in RUN_DIR (overrides: executor, pruners, diversity, ece_bins)")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("overrides", nargs="*", metavar="key.sub=value")
    args = parser.parse_args(argv)

    from ensembles import CandidatePool, build_ensemble, resume_ensemble
    from evonas.errors import EvonasError, RunFailedError

    start = time.perf_counter()
    progress = False if args.no_progress else None
    try:
        if args.resume:
            result = resume_ensemble(args.resume, args.overrides, progress=progress)
        else:
            run_dir = args.run_dir or ROOT / "runs" / f"ensemble-saep-{_dt.datetime.now():%Y%m%d-%H%M%S}"
            result = build_ensemble(args.config, args.overrides, run_dir=run_dir, progress=progress)
    except (EvonasError, RunFailedError) as exc:
        print(f"ensemble_saep: error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, EvonasError) else 1
    elapsed = time.perf_counter() - start
    pool = CandidatePool.load(result.run_dir / "pool")
    train_s = sum(float(m.metadata.get("train_time_s", 0.0)) for m in pool)
    print(result.text)
    print()
    print("members (pool order):")
    for m in pool:
        metrics = m.metadata.get("metrics", {})
        print(f"  {m.name}  val {float(metrics.get('val_acc', float('nan'))):.2f}%  "
              f"test {float(metrics.get('test_acc', float('nan'))):.2f}%  params {m.num_params or 0:,}  {m.arch_str}")
    print()
    print(f"wall time of this invocation: {elapsed / 60:.1f} min; summed member training time: {train_s / 60:.1f} min")
    met = [label for label, checks in result.summary.get("saep_target", {}).items() if checks["met"]]
    print(f"SAEP target met by: {', '.join(met) if met else 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
