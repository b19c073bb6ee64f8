"""One trial of the predictor harness: fit a predictor on a training set, score it on the test set.

A trial is an :class:`~evonas.executors.Task` whose payload is a :class:`TrialSpec`; the
executor runs it with the :class:`TrialRunner` of the run, which answers a
:class:`TrialResult` (White et al., NeurIPS 2021: Kendall tau, Spearman rho, Pearson r,
precision@top-k, fit and query time).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from evonas.spaces import Arch

METRICS: tuple[str, ...] = ("kendall_tau", "spearman_rho", "pearson_r", "precision_at_top", "fit_time_s", "query_time_s")
"""Metrics recorded for every trial."""


@dataclass(frozen=True)
class TrialSpec:
    """The payload of one trial task.

    Attributes:
        predictor: Registered predictor name.
        size_index: Position in ``train_sizes`` (``None``: a zero-cost proxy, not trained).
        trial: Trial number (chooses the training set with the size).
    """

    predictor: str
    size_index: int | None
    trial: int


def trial_key(predictor: str, train_size: int, trial: int) -> tuple[str, int, int]:
    """What identifies a finished trial in a run's log (train size 0: a zero-cost proxy)."""
    return (predictor, int(train_size), int(trial))


@dataclass(frozen=True)
class TrialResult:
    """What one trial measured on the test set (see :data:`METRICS`)."""

    kendall_tau: float
    spearman_rho: float
    pearson_r: float
    precision_at_top: float
    fit_time_s: float
    query_time_s: float

    def metrics(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}


@dataclass
class TrialRunner:
    """The worker of the trials: fits one predictor on one training set and scores it.

    Picklable, so executors can ship it to other processes. The training set depends only
    on ``(seed, size, trial)``, so every predictor sees the same draws.

    Attributes:
        params: Hyper-parameters per predictor name (the run's ``space``, ``scorer`` and
            proxy ``direction`` included); the task seed becomes ``random_state``.
        test: The fixed test set.
        test_y: Its targets.
        pool: The architectures training sets are drawn from.
        pool_y: Their targets.
        sizes: The training-set sizes.
        seed: The run seed.
        top_fraction: ``k`` of precision@top-k as a share of the test set.
        direction: ``max`` or ``min`` (which targets are the top).
        threads: torch threads of a trial.
    """

    params: dict[str, dict[str, Any]]
    test: tuple[Arch, ...]
    test_y: np.ndarray
    pool: tuple[Arch, ...]
    pool_y: np.ndarray
    sizes: tuple[int, ...]
    seed: int
    top_fraction: float
    direction: str
    threads: int

    def training_set(self, size_index: int, trial: int) -> np.ndarray:
        """Positions in ``pool`` of the training architectures of one size and trial (sorted)."""
        rng = np.random.default_rng([self.seed, size_index, trial])
        return np.sort(rng.choice(len(self.pool), size=self.sizes[size_index], replace=False))

    def run(self, payload: TrialSpec, seed: int) -> TrialResult:
        import torch

        from predictors._metrics import kendall_tau, pearson_r, precision_at_top, spearman_rho
        from predictors._registry import make_predictor

        torch.set_num_threads(self.threads)
        est = make_predictor(payload.predictor, **self.params.get(payload.predictor, {}))
        if "random_state" in est.get_params(deep=False):
            est.set_params(random_state=int(seed))
        if payload.size_index is None:
            positions = np.zeros(0, dtype=np.int64)
        else:
            positions = self.training_set(payload.size_index, payload.trial)
        start = time.perf_counter()
        est.fit([self.pool[int(i)] for i in positions], self.pool_y[positions])
        fit_time = time.perf_counter() - start
        start = time.perf_counter()
        pred = np.asarray(est.predict(list(self.test)), dtype=np.float64)
        query_time = time.perf_counter() - start
        y = self.test_y
        return TrialResult(
            kendall_tau=kendall_tau(y, pred),
            spearman_rho=spearman_rho(y, pred),
            pearson_r=pearson_r(y, pred),
            precision_at_top=precision_at_top(y, pred, self.top_fraction, self.direction),
            fit_time_s=fit_time,
            query_time_s=query_time,
        )
