"""Checks shared by the ensemble modules: arrays of probabilities, labels and sizes.

Every check raises an :class:`~evonas.errors.EvonasError` subclass whose message quotes
the offending shape or value: :class:`~evonas.errors.DataError` for malformed arrays,
:class:`~evonas.errors.ConfigError` for bad parameters (sizes, fractions, bin counts),
the latter through :func:`evonas.config.check_int` / :func:`evonas.config.check_number`.
"""

from __future__ import annotations

import math
from typing import Any, overload

import numpy as np

from evonas.config import check_int, check_number
from evonas.errors import ConfigError, DataError

# Rows of a probability matrix may drift from 1 by float32 round-off of a softmax.
_ROW_SUM_TOL = 1e-4


def as_labels(
    labels: Any, num_samples: int | None = None, num_classes: int | None = None, what: str = "labels"
) -> np.ndarray:
    """Return ``labels`` as a 1-D int64 array, checking length and range.

    Args:
        labels: Class indices, one per sample.
        num_samples: Required length, if known.
        num_classes: Labels must lie in ``0..num_classes-1``, if known.
        what: Name used in error messages.

    Raises:
        DataError: Not 1-D, not integers, wrong length, or out of range.
    """
    arr = np.asarray(labels)
    if arr.ndim != 1:
        raise DataError(f"{what} must be a 1-D array of class indices; got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise DataError(f"{what} must hold integers; got dtype {arr.dtype}")
    arr = arr.astype(np.int64, copy=False)
    if num_samples is not None and arr.shape[0] != num_samples:
        raise DataError(f"{what} has {arr.shape[0]} entries; expected {num_samples} (one per sample)")
    if num_classes is not None and arr.size:
        bad = (arr < 0) | (arr >= num_classes)
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            raise DataError(
                f"{what}[{first}] = {int(arr[first])} is out of range; valid class indices are 0..{num_classes - 1}"
            )
    return arr


def as_predictions(pred: Any, what: str = "predictions") -> np.ndarray:
    """Return predicted labels as a 1-D int64 array (no range check)."""
    return as_labels(pred, what=what)


def as_prob_matrix(probs: Any, what: str = "probabilities") -> np.ndarray:
    """Return ``probs`` as a float64 ``(N, C)`` matrix whose rows are distributions.

    Raises:
        DataError: Wrong rank, non-finite or negative entries, or rows not summing to 1.
    """
    arr = np.asarray(probs)
    if arr.ndim != 2:
        raise DataError(f"{what} must have shape (num_samples, num_classes); got shape {arr.shape}")
    return _check_distributions(arr, what)


def as_prob_stack(probs: Any, what: str = "probabilities") -> np.ndarray:
    """Return ``probs`` as a float64 ``(M, N, C)`` stack: M members, N samples, C classes.

    Raises:
        DataError: Wrong rank, no members, non-finite or negative entries, or rows not
            summing to 1.
    """
    arr = np.asarray(probs)
    if arr.ndim != 3:
        raise DataError(
            f"{what} must have shape (num_members, num_samples, num_classes); got shape {arr.shape}"
        )
    if arr.shape[0] == 0:
        raise DataError(f"{what} holds no members (shape {arr.shape}); give at least one candidate")
    return _check_distributions(arr, what)


def _check_distributions(arr: np.ndarray, what: str) -> np.ndarray:
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise DataError(f"{what} must be numeric; got dtype {arr.dtype}")
    if arr.shape[-1] < 2:
        raise DataError(f"{what} need at least 2 classes; got shape {arr.shape}")
    if arr.shape[-2] == 0:
        raise DataError(f"{what} hold no samples (shape {arr.shape})")
    arr = arr.astype(np.float64, copy=False)
    if not np.isfinite(arr).all():
        raise DataError(f"{what} of shape {arr.shape} contain NaN or infinite values")
    if (arr < 0).any():
        raise DataError(f"{what} of shape {arr.shape} contain negative values")
    sums = arr.sum(axis=-1)
    worst = int(np.argmax(np.abs(sums - 1.0)))
    if abs(float(sums.flat[worst]) - 1.0) > _ROW_SUM_TOL:
        raise DataError(
            f"{what} of shape {arr.shape} are not distributions: a row sums to "
            f"{float(sums.flat[worst]):.6g} instead of 1 (pass softmax outputs, not logits)"
        )
    return arr


@overload
def resolve_size(
    num_members: int, size: int | None, max_fraction: float | None, default_fraction: float, owner: str | None = None
) -> int: ...


@overload
def resolve_size(
    num_members: int, size: int | None, max_fraction: float | None, default_fraction: None, owner: str | None = None
) -> int | None: ...


def resolve_size(
    num_members: int,
    size: int | None,
    max_fraction: float | None,
    default_fraction: float | None,
    owner: str | None = None,
) -> int | None:
    """Turn the ``size`` / ``max_fraction`` stopping parameters into a member count.

    Args:
        num_members: Number of candidates ``M``.
        size: Number of members, in ``1..M``.
        max_fraction: Fraction of ``M`` in ``(0, 1]``; the count is ``max(1, floor(f * M))``.
        default_fraction: Fraction used when neither is given; ``None`` means "no target".
        owner: Whose parameters they are, e.g. ``"pruner 'pie'"`` (in messages).

    Returns:
        The member count, or ``None`` when no target applies.

    Raises:
        ConfigError: Both parameters given, or either out of range.
    """
    if size is not None and max_fraction is not None:
        who = "" if owner is None else f" of {owner}"
        raise ConfigError(
            f"give either size or max_fraction{who}, not both; got size={size!r}, max_fraction={max_fraction!r}"
        )
    if size is not None:
        check_int(size, "size", 1, num_members, owner=owner)
        return int(size)
    if max_fraction is None:
        max_fraction = default_fraction
        if max_fraction is None:
            return None
    check_number(max_fraction, "max_fraction", 0.0, 1.0, low_open=True, owner=owner)
    # A small epsilon keeps 0.3 * 10 from flooring to 2 through round-off.
    return max(1, math.floor(float(max_fraction) * num_members + 1e-9))
