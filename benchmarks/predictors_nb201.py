"""Every registered performance predictor under the protocol of White et al. (NeurIPS 2021).

"How Powerful are Performance Predictors in Neural Architecture Search?": a fixed test set
of 200 NAS-Bench-201 architectures, training sets of 10 to 400 architectures, 10 trials per
size, Kendall tau / Spearman rho / Pearson r / precision@top-10% on the 200-epoch
cifar10-valid validation accuracy. Zero-cost proxies are computed on real CIFAR-10 images
(``cifar10-jpg-small.tar.gz`` of the shared data) and also reported over every scored
architecture (test set and training pool). The ablations printed at the end compare the
GAE with and without unsupervised pre-training, and HAAP against its plain encoding.
Results go to ``benchmarks/RESULTS.md`` by hand.

Usage: python benchmarks/predictors_nb201.py [--out DIR] [--config PATH] [key=value ...]
       e.g. ``trials=3 predictors=[rf,gbdt_zc]`` or ``executor.name=ray``.
The run directory (default: a new folder under the system's temporary directory) can be
continued with ``evonas predictors evaluate --resume DIR`` and re-rendered with
``evonas report DIR``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import sys
import tempfile
import time
from pathlib import Path

from evonas.config import load_config
from predictors import HarnessConfig, HarnessResult, run_harness

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = ROOT / "configs" / "predictors-nb201.yaml"


def _pairs(result: HarnessResult, a: str, b: str, sizes: list[int]) -> str:
    cells = []
    for size in sizes:
        try:
            cells.append(f"{size}: {result.mean(a, size):.3f} vs {result.mean(b, size):.3f}")
        except KeyError:
            continue
    return "; ".join(cells)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--config", default=str(DEFAULT_CONFIG), help="harness config (YAML; paths relative to it)")
    parser.add_argument("--out", default=None,
                        help="run directory (must not exist or be empty; default: a new one under the temp folder)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("overrides", nargs="*", help="config overrides key=value")
    args = parser.parse_args(argv)

    config = load_config(HarnessConfig, args.config, args.overrides)
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = Path(args.out) if args.out else Path(tempfile.gettempdir()) / f"evonas-predictors-nb201-{stamp}"
    start = time.perf_counter()
    result = run_harness(config, out, progress=not args.quiet)
    elapsed = time.perf_counter() - start
    print(result.markdown)
    small = [s for s in config.train_sizes if s <= 50]
    print("## Ablations")
    print()
    names = config.predictor_names
    if {"gae", "gae_scratch"} <= set(names):
        print(f"- GAE with vs without unsupervised pre-training (≤ 50 labels, mean τ): "
              f"{_pairs(result, 'gae', 'gae_scratch', small)}")
    if {"mlp_haap", "mlp"} <= set(names):
        print(f"- MLP on adjacency one-hot with vs without HAAP (mean τ): "
              f"{_pairs(result, 'mlp_haap', 'mlp', list(config.train_sizes))}")
    if {"rf_haap", "rf"} <= set(names):
        print(f"- Random forest with HAAP (adjacency one-hot) vs one-hot (mean τ): "
              f"{_pairs(result, 'rf_haap', 'rf', list(config.train_sizes))}")
    print()
    print(f"Run directory: {out}")
    print(f"Total time: {elapsed / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
