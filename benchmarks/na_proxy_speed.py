"""How fast a neighbourhood-aware search scores candidates with a proxy predictor.

Protocol: a GAE predictor (``predictors.GAEPredictor``, seed 0) is fitted on 200 random
NAS-Bench-201 cells labelled with their 200-epoch CIFAR-10 validation accuracy; then
neighbourhood-aware regularized evolution (each candidate scored over itself and its 24
one-edit neighbours, 3,000 evaluations, serial executor, seed 0) runs on it twice:

* with the predictor's evaluator hidden behind a wrapper that only offers ``evaluate``
  (one predictor call per architecture, as before the search loop batched fitness plans);
* with the evaluator as it is (``evaluate_many``: a candidate's whole plan in one call).

Both runs must give the same history; the table gives their wall time.

Usage: python benchmarks/na_proxy_speed.py [--table PATH] [--evaluations 3000]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from evonas.executors import SerialExecutor
from evonas.fitness import NeighbourhoodAwareFitness, Objective
from evonas.search import Budget, Search
from evonas.spaces import build_space
from evonas.strategies import RegularizedEvolution
from evonas.supernet import PredictorEvaluator
from evonas.tabular import NB201Table
from predictors import make_predictor

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TABLE = ROOT.parent / "shared" / "data" / "nb201" / "nb201.csv.gz"


class OneByOne:
    """An evaluator without ``evaluate_many``: the search loop then asks for one architecture at a time."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.metric_names = inner.metric_names

    def evaluate(self, arch: tuple[int, ...], seed: int) -> Any:
        return self.inner.evaluate(arch, seed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--table", default=os.environ.get("EVONAS_NB201", str(DEFAULT_TABLE)))
    parser.add_argument("--evaluations", type=int, default=3000)
    args = parser.parse_args()
    space = build_space("nb201")
    table = NB201Table.load(args.table, space)
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(200)]
    gae = make_predictor("gae", space=space, random_state=0).fit(archs, [table.query(a, "cifar10-valid_valid_acc") for a in archs])
    print(__doc__.split("Usage:")[0].strip() + "\n")
    print("| evaluator calls | candidates | evaluations | wall s | ms / evaluation |\n| --- | --- | --- | --- | --- |")
    histories = []
    for name, evaluator in (("one per architecture", OneByOne(PredictorEvaluator(gae, space))),
                            ("one per fitness plan", PredictorEvaluator(gae, space))):
        search = Search(space, RegularizedEvolution(space, 1, np.random.default_rng(0)),
                        NeighbourhoodAwareFitness(space, (Objective("proxy_val_loss", "min"),)), evaluator,
                        SerialExecutor(), Budget(evaluations=args.evaluations), seed=0)
        t0 = time.perf_counter()
        history = search.run_search()
        seconds = time.perf_counter() - t0
        used = search.state.used_evaluations
        histories.append([(r.arch, r.values) for r in history])
        print(f"| {name} | {len(history)} | {used} | {seconds:.2f} | {1000 * seconds / used:.3f} |")
    print(f"\nsame history: {'yes' if histories[0] == histories[1] else 'NO'}")


if __name__ == "__main__":
    main()
