"""How well predictions rank architectures: the metrics of White et al., NeurIPS 2021.

"How Powerful are Performance Predictors in Neural Architecture Search?" compares
predictors by rank correlations (Kendall tau, Spearman rho), linear correlation (Pearson
r) and precision@top-k. Correlations come from :mod:`scipy.stats`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import stats

from evonas.config import check_choice, check_number
from evonas.errors import EvonasError


def _pair(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(y_pred, dtype=np.float64)
    if t.ndim != 1 or t.shape != p.shape:
        raise EvonasError(f"y_true and y_pred must be 1-d of the same length; got shapes {t.shape} and {p.shape}")
    if t.size < 2:
        raise EvonasError(f"correlations need at least 2 values; got {t.size}")
    if np.isnan(t).any() or np.isnan(p).any():
        raise EvonasError("y_true and y_pred must not contain NaN")
    return t, _finite_order(p)


def _finite_order(p: np.ndarray) -> np.ndarray:
    """Replace -inf / +inf (e.g. a proxy that cannot score a dead network) by finite values
    just below / above all others, keeping the order."""
    finite = p[np.isfinite(p)]
    if finite.size == p.size:
        return p
    low, high = (finite.min(), finite.max()) if finite.size else (0.0, 0.0)
    span = max(high - low, 1.0)
    return np.where(p == -np.inf, low - span, np.where(p == np.inf, high + span, p))


def kendall_tau(y_true: Any, y_pred: Any) -> float:
    """Kendall's tau-b between targets and predictions (:func:`scipy.stats.kendalltau`)."""
    t, p = _pair(y_true, y_pred)
    return float(stats.kendalltau(t, p).statistic)


def spearman_rho(y_true: Any, y_pred: Any) -> float:
    """Spearman's rank correlation (:func:`scipy.stats.spearmanr`)."""
    t, p = _pair(y_true, y_pred)
    return float(stats.spearmanr(t, p).statistic)


def pearson_r(y_true: Any, y_pred: Any) -> float:
    """Pearson's linear correlation (:func:`scipy.stats.pearsonr`); NaN for constant inputs."""
    t, p = _pair(y_true, y_pred)
    if np.all(t == t[0]) or np.all(p == p[0]):
        return math.nan
    return float(stats.pearsonr(t, p).statistic)


def precision_at_top(y_true: Any, y_pred: Any, fraction: float = 0.1, direction: str = "max") -> float:
    """Share of the truly best ``k`` architectures among the ``k`` predicted best.

    ``k = ceil(fraction * n)``. Ties are broken by position (stable sort), so the value is
    exact for hand-made inputs.

    Args:
        y_true: Targets. Shapes: ``(n,)``.
        y_pred: Predictions. Shapes: ``(n,)``.
        fraction: Size of the top set as a share of ``n``, in ``(0, 1]``.
        direction: ``"max"``: higher targets are better (accuracies); ``"min"``: lower
            ones (losses).
    """
    t, p = _pair(y_true, y_pred)
    check_number(fraction, "fraction", 0.0, 1.0, low_open=True)
    check_choice(direction, "direction", ("max", "min"))
    k = max(1, math.ceil(fraction * t.size))
    sign = -1.0 if direction == "max" else 1.0
    top_true = set(np.argsort(sign * t, kind="stable")[:k].tolist())
    top_pred = set(np.argsort(sign * p, kind="stable")[:k].tolist())
    return len(top_true & top_pred) / k
