"""Combining members' predictions: plain and weighted averages of probabilities.

Members are combined in probability space (average of softmax outputs), the usual rule
for deep ensembles (Lakshminarayanan et al., "Simple and Scalable Predictive Uncertainty
Estimation using Deep Ensembles", NeurIPS 2017). Learned weights are the mixture weights
on the probability simplex that minimise the validation negative log-likelihood.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.optimize import minimize
from scipy.special import softmax

from ensembles._validation import as_labels, as_prob_stack
from evonas.config import check_int
from evonas.errors import DataError

# Floor of a mixture's probability of the label, so a member with p(y) = 0 on some
# sample keeps the objective finite while the optimiser explores weights.
_PROB_FLOOR = 1e-300


def softmax_logits(logits: Any) -> np.ndarray:
    """Softmax over the last axis, in float64.

    Shapes:
        logits: ``(..., C)`` -> probabilities of the same shape.
    """
    arr = np.asarray(logits, dtype=np.float64)
    if arr.ndim == 0 or arr.shape[-1] < 2:
        raise DataError(f"logits need a last axis of at least 2 classes; got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise DataError(f"logits of shape {arr.shape} contain NaN or infinite values")
    return softmax(arr, axis=-1)


def _check_weights(weights: Any, num_members: int) -> np.ndarray:
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (num_members,):
        raise DataError(f"weights must have shape ({num_members},), one per member; got shape {w.shape}")
    if not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        raise DataError(f"weights must be finite, non-negative and not all zero; got {w.tolist()}")
    return w / w.sum()


def combine_probs(probs: Any, weights: Any | None = None) -> np.ndarray:
    """Average members' probabilities, uniformly or with non-negative weights.

    Args:
        probs: Members' predicted distributions.
        weights: One non-negative weight per member (normalised to sum to 1); ``None``
            gives the uniform average.

    Returns:
        The ensemble's distributions.

    Shapes:
        probs: ``(M, N, C)``; weights: ``(M,)``; returns ``(N, C)``.
    """
    p = as_prob_stack(probs)
    if weights is None:
        return p.mean(axis=0)
    w = _check_weights(weights, p.shape[0])
    return np.tensordot(w, p, axes=1)


def fit_weights(probs: Any, labels: Any, max_iter: int = 1000, tol: float = 1e-12) -> np.ndarray:
    """Mixture weights on the simplex that minimise the validation NLL of the ensemble.

    Solves ``min_w -1/N sum_n log(sum_m w_m p_m[n, y_n])`` subject to ``w >= 0`` and
    ``sum_m w_m = 1``: a convex problem (negative log of a linear function), solved with
    SLSQP from the uniform weights with the analytic gradient. The result is deterministic.
    Like the non-negative combination weights of stacking (Breiman, "Stacked
    Regressions", Machine Learning 1996), fitted on held-out data, here with the
    log-likelihood as the criterion.

    Args:
        probs: Members' validation distributions.
        labels: Validation labels.
        max_iter: SLSQP iteration limit.
        tol: SLSQP ``ftol``.

    Returns:
        Non-negative weights summing to 1.

    Shapes:
        probs: ``(M, N, C)``; labels: ``(N,)``; returns ``(M,)``.

    Raises:
        DataError: Malformed ``probs`` or ``labels``.
        RuntimeError: The optimiser did not converge.
    """
    p = as_prob_stack(probs)
    num_members, num_samples, num_classes = p.shape
    y = as_labels(labels, num_samples=num_samples, num_classes=num_classes)
    check_int(max_iter, "max_iter", 1, owner="fit_weights")
    if num_members == 1:
        return np.ones(1)
    # Only each member's probability of the true label matters: q[m, n] = p_m[n, y_n].
    q = p[:, np.arange(num_samples), y]

    def objective(w: np.ndarray) -> tuple[float, np.ndarray]:
        mix = np.maximum(w @ q, _PROB_FLOOR)
        value = -np.mean(np.log(mix))
        grad = -(q / mix).mean(axis=1)
        return float(value), grad

    start = np.full(num_members, 1.0 / num_members)
    result = minimize(
        objective,
        start,
        jac=True,
        method="SLSQP",
        bounds=[(0.0, 1.0)] * num_members,
        constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1.0, "jac": lambda w: np.ones_like(w)}],
        options={"maxiter": max_iter, "ftol": tol},
    )
    if not result.success:
        raise RuntimeError(f"fitting ensemble weights did not converge: {result.message}")
    w = np.clip(result.x, 0.0, None)
    return w / w.sum()
