"""How well a supernet (and its proxy predictor) rank architectures against NAS-Bench-201.

Kendall's tau-b (scipy.stats.kendalltau) between a score and the table's 200-epoch
accuracy, next to two trivial baselines computed on the same architectures: parameter
count and the number of 3x3 convolutions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
from scipy.stats import kendalltau

from evonas.spaces import OPS, Arch, EnumerableSpace, SearchSpace, require

TABLE_METRIC = "cifar10-valid_valid_acc"
_CONV3 = OPS.index("nor_conv_3x3")


def num_conv3x3(arch: Arch) -> int:
    """Number of ``nor_conv_3x3`` edges of a cell (a trivial ranking baseline)."""
    return sum(op == _CONV3 for op in arch)


def unseen_architectures(space: SearchSpace, seen: set[Arch], seed: int, num: int) -> list[Arch]:
    """``num`` architectures of ``space`` not in ``seen``, in a random order seeded by ``seed``.

    The same seed gives the same architectures, so ``evonas supernet rank`` and the
    benchmark rank a run on the same cells.

    Raises:
        CapabilityError: ``space`` is not enumerable.
    """
    require(space, {"enumerable"}, "drawing unseen architectures")
    enumerable = cast(EnumerableSpace, space)
    rng = np.random.default_rng([seed, 2024])
    archs: list[Arch] = []
    for o in rng.permutation(enumerable.size):
        arch = enumerable.from_ordinal(int(o))
        if arch not in seen:
            archs.append(arch)
            if len(archs) == num:
                break
    return archs


def tau(score: Sequence[float] | np.ndarray, truth: Sequence[float] | np.ndarray) -> float:
    """Kendall's tau-b between ``score`` and ``truth`` (NaN when undefined)."""
    s, t = np.asarray(score, dtype=np.float64), np.asarray(truth, dtype=np.float64)
    ok = np.isfinite(s) & np.isfinite(t)
    if ok.sum() < 2:
        return float("nan")
    return float(kendalltau(s[ok], t[ok]).statistic)


def tau_ci(
    truth: Sequence[float],
    score: Sequence[float],
    other: Sequence[float] | None = None,
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of Kendall's tau over the architectures.

    With ``other``, the interval is of the paired difference ``tau(score) - tau(other)``
    (both scores resampled on the same architectures), the way to compare two supernets
    ranked on one set of cells.

    Shapes:
        ``truth``, ``score``, ``other``: ``(num_archs,)``.
    """
    from scipy.stats import bootstrap

    t = np.asarray(truth, dtype=np.float64)
    a = np.asarray(score, dtype=np.float64)
    b = a if other is None else np.asarray(other, dtype=np.float64)
    if not (len(t) == len(a) == len(b)):
        raise ValueError(f"truth, score and other must have one entry per architecture; got {len(t)}, {len(a)}, {len(b)}")

    def statistic(ti: np.ndarray, ai: np.ndarray, bi: np.ndarray) -> float:
        first = tau(ai, ti)
        return first if other is None else first - tau(bi, ti)

    res = bootstrap(
        (t, a, b), statistic, paired=True, vectorized=False, n_resamples=resamples,
        confidence_level=confidence, method="percentile", random_state=np.random.default_rng(seed),
    )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


@dataclass
class RankResult:
    """Ranking quality over one set of architectures.

    Attributes:
        archs: The architectures.
        truth: The table's accuracy of each.
        taus: Kendall tau of each scorer against ``truth`` (``supernet``, ``proxy``,
            ``params``, ``conv3x3``; absent scorers are left out).
        scores: Each scorer's values (larger is better), aligned with ``archs``.
        metric: The table metric used as the truth.
    """

    archs: list[Arch]
    truth: list[float]
    taus: dict[str, float]
    scores: dict[str, list[float]] = field(default_factory=dict)
    metric: str = TABLE_METRIC

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "num_archs": len(self.archs),
            "taus": self.taus,
            "archs": [list(a) for a in self.archs],
            "truth": self.truth,
            "scores": self.scores,
        }


def supernet_scores(
    supernet_acc: Sequence[float] | None = None,
    proxy_loss: Sequence[float] | None = None,
    supernet_loss: Sequence[float] | None = None,
) -> dict[str, list[float]]:
    """The given measurements as scores, larger is better: ``supernet`` (accuracy),
    ``supernet_loss`` and ``proxy`` (negated losses); absent ones are left out."""
    scores: dict[str, list[float]] = {}
    if supernet_acc is not None:
        scores["supernet"] = [float(v) for v in supernet_acc]
    if supernet_loss is not None:
        scores["supernet_loss"] = [-float(v) for v in supernet_loss]
    if proxy_loss is not None:
        scores["proxy"] = [-float(v) for v in proxy_loss]
    return scores


def rank_architectures(
    archs: Sequence[Arch],
    table: Any,
    supernet_acc: Sequence[float] | None = None,
    proxy_loss: Sequence[float] | None = None,
    metric: str = TABLE_METRIC,
    supernet_loss: Sequence[float] | None = None,
) -> RankResult:
    """Kendall tau of the given scores and of the trivial baselines against ``table``.

    Args:
        archs: The architectures ranked.
        table: An :class:`evonas.tabular.NB201Table`.
        supernet_acc: Validation accuracy with inherited weights (larger is better).
        proxy_loss: The proxy predictor's predicted loss (smaller is better).
        metric: The table's ground-truth metric.
        supernet_loss: Validation loss with inherited weights (smaller is better; scored
            as ``supernet_loss``, its negation).
    """
    archs = [tuple(a) for a in archs]
    truth = [table.query(a, metric) for a in archs]
    scores = supernet_scores(supernet_acc, proxy_loss, supernet_loss)
    scores["params"] = [table.query(a, "params_M") for a in archs]
    scores["conv3x3"] = [float(num_conv3x3(a)) for a in archs]
    return RankResult(archs, truth, {k: tau(v, truth) for k, v in scores.items()}, scores, metric)
