"""Generate the chain space's benchmark tables by real training and timing (run once).

``chain-digits.csv``: every one of the 256 chains of length 4, trained from scratch on
scikit-learn's 8x8 digits (20 % of the 1,437 training images held out for validation, the
usual 20 % test split) for 4 epochs, as evonas's training evaluator does it, in parallel
as Ray tasks: ``val_acc``, ``val_loss``, ``test_acc`` (percent), ``params_M`` and
``train_seconds`` (the training's wall time, a query's cost).
``chain-latency.json``: the median CPU inference time of each network on one image
(one thread, 50 timed passes after 10 warm-up passes), in milliseconds.

Usage: python tests/plugins/chain_nas/make_tables.py [--cpus 2]
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cpus", type=int, default=2)
    args = parser.parse_args()

    import numpy as np
    import torch

    from evonas.config import ComponentConfig
    from evonas.data import DatasetConfig, cached_splits
    from evonas.evaluation import EvaluationWorker, TrainingEvaluator
    from evonas.executors import RayExecutor, Task
    from evonas.models import build_network
    from evonas.plugins import load_plugin
    from evonas.search import as_evaluation
    from evonas.spaces import build_space
    from evonas.training import ComputeConfig, OptimConfig, TrainConfig

    load_plugin(str(HERE))
    space = build_space("chain", {"length": 4})
    network = ComponentConfig("chain", {"width": 8})
    dataset = DatasetConfig(name="digits", val_fraction=0.2)
    train = TrainConfig(epochs=4, batch_size=64, optim=OptimConfig(lr=0.05), compute=ComputeConfig(device="cpu"))
    evaluator = TrainingEvaluator(space, dataset, train, network)
    archs = space.all_archs()
    tasks = [Task(i, arch, seed=0) for i, arch in enumerate(archs)]
    start = time.time()
    outcomes = RayExecutor(num_cpus=args.cpus).run_all(
        EvaluationWorker(evaluator), tasks, progress=lambda done: print(f"{len(done)} done", file=sys.stderr)
    )
    with open(HERE / "chain-digits.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["arch", "val_acc", "val_loss", "test_acc", "params_M", "train_seconds"])
        for outcome in outcomes:
            ev = as_evaluation(outcome)
            if ev.failed:
                raise SystemExit(f"{space.format(outcome.task.payload)} failed: {ev.error}")
            m = ev.metrics
            writer.writerow([space.format(outcome.task.payload), f"{m['val_acc']:.4f}", f"{m['val_loss']:.5f}",
                             f"{m['test_acc']:.4f}", f"{m['params_M']:.6f}", f"{ev.cost:.4f}"])
    print(f"trained {len(archs)} networks in {time.time() - start:.0f} s", file=sys.stderr)

    torch.set_num_threads(1)
    splits = cached_splits(dataset)
    x = splits.test.batch([0])[0]
    latency = {}
    for arch in archs:
        net = build_network(network, space, arch, splits.num_classes, splits.in_channels).eval()
        with torch.inference_mode():
            for _ in range(10):
                net(x)
            times = []
            for _ in range(50):
                t0 = time.perf_counter()
                net(x)
                times.append(time.perf_counter() - t0)
        latency[space.format(arch)] = {"latency_ms": round(1000 * float(np.median(times)), 5)}
    (HERE / "chain-latency.json").write_text(json.dumps(latency, indent=1) + "\n")


if __name__ == "__main__":
    main()
