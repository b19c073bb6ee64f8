"""Small deterministic evaluators for tests of the search machinery."""

from __future__ import annotations

import time

import numpy as np

from evonas.evaluation import Evaluation


class SumEvaluator:
    """metric ``score`` = sum of op indices; ``conv`` = number of 3x3 convs; cost 1 s each.

    With ``noise`` > 0, Gaussian noise seeded by the evaluation seed is added to ``score``.
    """

    metric_names = ("score", "conv", "params")

    def __init__(self, noise: float = 0.0, sleep: float = 0.0, fail_on: tuple = ()) -> None:
        self.noise = noise
        self.sleep = sleep
        self.fail_on = fail_on

    def evaluate(self, arch, seed):
        if self.sleep:
            time.sleep(self.sleep)
        if tuple(arch) in self.fail_on:
            raise RuntimeError(f"cannot evaluate {arch}")
        score = float(sum(arch))
        if self.noise:
            score += float(np.random.default_rng(seed).normal(0.0, self.noise))
        return Evaluation(
            metrics={"score": score, "conv": float(arch.count(3)), "params": float(sum(a in (2, 3) for a in arch))},
            cost=1.0,
        )
