"""Every registered performance predictor under the protocol of White et al. (NeurIPS 2021).

"How Powerful are Performance Predictors in Neural Architecture Search?": a fixed test set
of 200 NAS-Bench-201 architectures, training sets of 10 to 400 architectures, 10 trials per
size, Kendall tau / Spearman rho / Pearson r / precision@top-10% on the 200-epoch
cifar10-valid validation accuracy. Zero-cost proxies are computed on real CIFAR-10 images
(``../shared/data/images/cifar10-jpg-small.tar.gz``) and also reported over every scored
architecture (test set and training pool, 1,200 by default).

Targets to reach (issue 3): best predictor mean tau >= 0.70 at 100 and >= 0.80 at 400
(reference: a random forest on one-hot gets about 0.44 / 0.62); NASWOT tau >= 0.50 (paper
0.574) and synflow Spearman >= 0.70 (published about 0.74) over >= 1,000 architectures;
the GAE with pre-training beating the one without at <= 50 labels; HAAP's effect.

Usage: python benchmarks/predictors_nb201.py [--out DIR] [--config PATH] [key=value ...]
       e.g. ``trials=3 predictors=[rf,gbdt_zc]`` or ``executor=ray``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from evonas.config import load_config
from predictors import HarnessConfig, resolve_paths, run_harness

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = ROOT / "configs" / "predictors-nb201.yaml"


def _pairs(result, a: str, b: str, sizes: list[int]) -> str:  # type: ignore[no-untyped-def]
    cells = []
    for size in sizes:
        try:
            cells.append(f"{size}: {result.mean(a, size):.3f} vs {result.mean(b, size):.3f}")
        except KeyError:
            continue
    return "; ".join(cells)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default=str(DEFAULT_CONFIG), help="harness config (YAML)")
    parser.add_argument("--out", default=os.path.join(tempfile.gettempdir(), "evonas-predictors-nb201"),
                        help="output folder (CSV, Markdown, PNG, zero-cost cache)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("overrides", nargs="*", help="config overrides key=value")
    args = parser.parse_args(argv)

    config = resolve_paths(load_config(HarnessConfig, args.config, args.overrides), ROOT)
    start = time.perf_counter()
    result = run_harness(config, Path(args.out), progress=not args.quiet)
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
    print(f"Files: {', '.join(str(p) for p in result.files.values())}")
    print(f"Total time: {elapsed / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
