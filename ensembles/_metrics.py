"""Quality of a probabilistic classifier: accuracy, negative log-likelihood, calibration.

All functions take a probability matrix ``probs`` of shape ``(N, C)`` (rows are
distributions, e.g. the output of a combiner) and integer ``labels`` of shape ``(N,)``.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, log_loss

from ensembles._validation import as_labels, as_prob_matrix
from evonas.config import check_int

DEFAULT_ECE_BINS = 15
MAX_ECE_BINS = 10_000
"""Most bins of the expected calibration error (a config's ``ece_bins``)."""
"""Number of equal-width confidence bins of :func:`expected_calibration_error` (Guo et al. 2017)."""


def _checked(probs: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p = as_prob_matrix(probs)
    y = as_labels(labels, num_samples=p.shape[0], num_classes=p.shape[1])
    return p, y


def accuracy(probs: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of samples whose most probable class is the label (ties: lowest index).

    Shapes:
        probs: ``(N, C)``; labels: ``(N,)``.
    """
    p, y = _checked(probs, labels)
    return float(accuracy_score(y, np.argmax(p, axis=1)))


def nll(probs: np.ndarray, labels: np.ndarray) -> float:
    """Mean negative log-likelihood of the labels, in nats.

    Probabilities are clipped to machine epsilon by :func:`sklearn.metrics.log_loss`,
    so a zero probability on the label costs ``-log(2.2e-16) ~ 36`` nats, not infinity.

    Shapes:
        probs: ``(N, C)``; labels: ``(N,)``.
    """
    p, y = _checked(probs, labels)
    return float(log_loss(y, p, labels=np.arange(p.shape[1])))


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, n_bins: int = DEFAULT_ECE_BINS) -> float:
    """Expected calibration error with equal-width confidence bins.

    Guo et al., "On Calibration of Modern Neural Networks", ICML 2017: samples
    are grouped by confidence ``max_c p_c`` into bins ``((m-1)/M, m/M]``, and
    ``ECE = sum_m |B_m|/N * |acc(B_m) - conf(B_m)|``.

    Args:
        probs: Predicted distributions.
        labels: True classes.
        n_bins: Number of bins ``M`` (default 15, as in Guo et al.).

    Shapes:
        probs: ``(N, C)``; labels: ``(N,)``.
    """
    check_int(n_bins, "n_bins", 1, MAX_ECE_BINS, owner="expected_calibration_error")
    n_bins = int(n_bins)
    p, y = _checked(probs, labels)
    confidence = p.max(axis=1)
    correct = (np.argmax(p, axis=1) == y).astype(np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # side="left" puts a confidence equal to an edge m/M into bin m-1: bins are right-closed.
    bins = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, n_bins - 1)
    # |B_m|/N * |acc_m - conf_m| = |sum of correct in B_m - sum of confidence in B_m| / N
    correct_sum = np.bincount(bins, weights=correct, minlength=n_bins)
    confidence_sum = np.bincount(bins, weights=confidence, minlength=n_bins)
    return float(np.abs(correct_sum - confidence_sum).sum() / p.shape[0])


def classification_metrics(probs: np.ndarray, labels: np.ndarray, n_bins: int = DEFAULT_ECE_BINS) -> dict[str, float]:
    """``{"accuracy", "nll", "ece"}`` of ``probs`` against ``labels`` (see the functions above)."""
    return {
        "accuracy": accuracy(probs, labels),
        "nll": nll(probs, labels),
        "ece": expected_calibration_error(probs, labels, n_bins=n_bins),
    }
