"""Small deterministic evaluators for tests of the search machinery."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np

from evonas.evaluation import Evaluation
from evonas.spaces import SpaceBase

if TYPE_CHECKING:
    from evonas.data import DataSplits
    from evonas.supernet import SuperNet


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


class BatchSumEvaluator(SumEvaluator):
    """:class:`SumEvaluator` that also scores batches; records the size of every batch."""

    def __init__(self, noise: float = 0.0) -> None:
        super().__init__(noise=noise)
        self.calls: list[int] = []

    def evaluate_many(self, archs, seeds=None):
        self.calls.append(len(archs))
        return [self.evaluate(a, s) for a, s in zip(archs, seeds)]


def trained_toy_supernet(splits: DataSplits, steps: int) -> SuperNet:
    """A C=4, N=1 supernet trained ``steps`` SGD steps on uniformly sampled paths (seeded).

    Its config section is ``{name: nb201, params: {channels: 4, cells_per_stage: 1}}``.
    """
    import torch
    from torch import nn

    from evonas.data import ImageTensorDataset
    from evonas.spaces import get_space
    from evonas.supernet import SuperNet

    space = get_space("nb201")
    torch.manual_seed(0)
    net = SuperNet(C=4, N=1, num_classes=10, in_channels=1)
    rng = np.random.default_rng(0)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    images = splits.train
    assert isinstance(images, ImageTensorDataset)
    for _ in range(steps):
        x, y = images.batch(torch.as_tensor(rng.choice(len(images), 32, replace=False)))
        opt.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(net(x, space.sample(rng)), y).backward()
        opt.step()
    return net


class CoreOnlySpace(SpaceBase):
    """A space of 3 binary positions with the core protocol only (no optional capability)."""

    name = "core_only_test"
    capabilities: frozenset[str] = frozenset()

    def validate(self, arch):
        return tuple(int(v) for v in arch)

    def parse(self, text):
        return tuple(int(c) for c in text)

    def format(self, arch):
        return "".join(map(str, arch))

    def sample(self, rng):
        return tuple(int(v) for v in rng.integers(0, 2, size=3))

    def neighbors(self, arch):
        return [tuple(1 - v if j == i else v for j, v in enumerate(arch)) for i in range(3)]

    def mutate(self, arch, rng):
        return self.neighbors(arch)[int(rng.integers(3))]

    def canonical_key(self, arch):
        return arch


def drive(strategy, n, value, fail=frozenset()):
    """Ask/tell ``n`` proposals of a batch strategy, telling each batch once it is complete
    (as the search loop does); archs in ``fail`` are told as failed evaluations."""
    asked, batch = [], []
    while len(asked) < n:
        arch = strategy.ask()
        if arch is None:
            assert batch, "the strategy waits although nothing is outstanding"
            for a in batch:
                strategy.tell(a, None if a in fail else (value(a),))
            batch = []
            continue
        asked.append(arch)
        batch.append(arch)
    for a in batch:
        strategy.tell(a, None if a in fail else (value(a),))
    return asked
