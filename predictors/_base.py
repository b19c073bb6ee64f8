"""The contract every predictor follows, and the input checks they share.

Predictors are scikit-learn estimators whose samples are architectures (genotypes of one
search space) instead of feature rows: ``__init__`` only stores hyper-parameters,
``fit(archs, y)`` validates its inputs and returns ``self``, fitted state ends in ``_``,
and ``predict(archs)`` returns a 1-d array. Models with an uncertainty estimate also
accept ``predict(archs, return_std=True)`` and return ``(mean, std)``.

Targets may be accuracies or losses: models standardise them internally, so nothing in a
predictor assumes a direction or a scale.
"""

from __future__ import annotations

import abc
import math
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted

from evonas.errors import ArchError, EvonasError, UnknownChoiceError
from evonas.spaces import SPACES, Arch, SearchSpace, get_space


class TargetError(EvonasError):
    """Training targets are not finite numbers or do not match the architectures."""


class ParamError(EvonasError):
    """A predictor hyper-parameter has an invalid value."""


def check_space(name: str) -> SearchSpace:
    """The search space ``name``; unknown names raise listing the registered ones."""
    if not isinstance(name, str):
        raise UnknownChoiceError("search space", name, SPACES.names())
    return get_space(name)


def check_archs(archs: Sequence[Any], space: SearchSpace, min_count: int = 1) -> list[Arch]:
    """Validate architectures of ``space`` and return them as genotype tuples.

    Args:
        archs: Genotypes (tuples of op indices) or architecture strings of ``space``.
        space: The space they must belong to.
        min_count: Fewest architectures accepted.

    Raises:
        ArchError: An architecture is not of ``space`` (the message gives its position),
            or there are fewer than ``min_count``.
    """
    if isinstance(archs, (str, bytes)) or not isinstance(archs, (Sequence, np.ndarray)):
        raise ArchError(f"architectures must be a sequence of {space.name} genotypes; got {archs!r:.80}")
    out = []
    for i, arch in enumerate(archs):
        try:
            out.append(space.validate(arch))
        except ArchError as exc:
            raise ArchError(f"architecture at position {i} is not of the {space.name} space: {exc}") from None
    if len(out) < min_count:
        raise ArchError(f"need at least {min_count} architecture(s); got {len(out)}")
    return out


def check_targets(y: Any, n_archs: int) -> np.ndarray:
    """Validate training targets: finite numbers, one per architecture.

    Raises:
        TargetError: ``y`` is not 1-d numeric, has NaN/inf, or its length differs from
            ``n_archs``.
    """
    try:
        arr = np.asarray(y, dtype=np.float64)
    except (TypeError, ValueError):
        raise TargetError(f"targets must be numbers; got {y!r:.80}") from None
    if arr.ndim != 1:
        raise TargetError(f"targets must be a 1-d sequence of numbers; got shape {arr.shape}")
    if arr.shape[0] != n_archs:
        raise TargetError(f"got {n_archs} architectures but {arr.shape[0]} targets; they must match one to one")
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        raise TargetError(
            f"targets must be finite numbers; got {arr[bad[0]]!r} at position {int(bad[0])} "
            f"({bad.size} non-finite value(s) in all)"
        )
    return arr


def check_int(owner: object, name: str, value: Any, low: int, high: int | None = None) -> int:
    """Return ``value`` if it is an int in ``[low, high]``, else raise :class:`ParamError`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low or (
        high is not None and value > high
    ):
        bound = f">= {low}" if high is None else f"in {low}..{high}"
        raise ParamError(
            f"the {name!r} parameter of {type(owner).__name__} must be an int {bound}; got {value!r}"
        )
    return int(value)


def check_float(
    owner: object, name: str, value: Any, low: float, high: float = math.inf, low_open: bool = False
) -> float:
    """Return ``value`` if it is a real number in the interval, else raise :class:`ParamError`."""
    ok = (
        not isinstance(value, bool)
        and isinstance(value, numbers.Real)
        and math.isfinite(float(value))
        and (value > low if low_open else value >= low)
        and value <= high
    )
    if not ok:
        left = "(" if low_open else "["
        raise ParamError(
            f"the {name!r} parameter of {type(owner).__name__} must be a number in {left}{low}, {high}]; got {value!r}"
        )
    return float(value)


def check_choice(owner: object, name: str, value: Any, choices: Sequence[Any]) -> Any:
    """Return ``value`` if it is one of ``choices``, else raise :class:`ParamError` listing them."""
    if value not in choices or isinstance(value, bool) != any(isinstance(c, bool) for c in choices if c == value):
        raise ParamError(
            f"the {name!r} parameter of {type(owner).__name__} must be one of "
            f"{', '.join(repr(c) for c in choices)}; got {value!r}"
        )
    return value


def check_seed(owner: object, value: Any) -> int:
    """``random_state`` must be a non-negative int (predictors are always seeded)."""
    return check_int(owner, "random_state", value, 0)


class ArchPredictor(RegressorMixin, BaseEstimator, metaclass=abc.ABCMeta):
    """Base class of the predictors: shared validation and target scaling.

    Subclasses implement ``fit`` (calling :meth:`_validate_fit` first) and ``_predict``
    (mean, and std when ``has_uncertainty``). ``space`` is a hyper-parameter of every
    subclass, naming the registered search space its architectures come from.
    """

    has_uncertainty: bool = False
    """Whether ``predict(archs, return_std=True)`` is supported."""

    min_fit_archs: int = 2
    """Fewest labelled architectures ``fit`` accepts."""

    space: str

    def _validate_fit(self, archs: Sequence[Any], y: Any) -> tuple[list[Arch], np.ndarray]:
        space = check_space(self.space)
        out = check_archs(archs, space, min_count=self.min_fit_archs)
        return out, check_targets(y, len(out))

    def _validate_predict(self, archs: Sequence[Any]) -> list[Arch]:
        check_is_fitted(self)
        return check_archs(archs, check_space(self.space), min_count=0)

    def _set_target_scale(self, y: np.ndarray) -> np.ndarray:
        """Remember the targets' mean and scale and return the standardised targets."""
        self.y_mean_ = float(np.mean(y))
        std = float(np.std(y))
        self.y_scale_ = std if std > 1e-12 else 1.0
        # Rounding far below any meaningful precision makes the standardised targets, and so
        # the fitted model, identical whatever unit the targets came in (no float noise that
        # could flip a tie between two tree splits).
        return np.round((y - self.y_mean_) / self.y_scale_, 9)

    def _unscale(self, z: np.ndarray, std: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        mean = np.asarray(z, dtype=np.float64) * self.y_scale_ + self.y_mean_
        if std is None:
            return mean, None
        return mean, np.asarray(std, dtype=np.float64) * self.y_scale_

    def predict(self, archs: Sequence[Any], return_std: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Predict the target of every architecture.

        Args:
            archs: Genotypes (or architecture strings) of the predictor's space.
            return_std: Also return the predictive standard deviation; only for models
                with an uncertainty estimate (``has_uncertainty``).

        Returns:
            The predictions, shape ``(len(archs),)``; with ``return_std`` a pair
            ``(mean, std)`` of such arrays.

        Raises:
            ParamError: ``return_std`` is asked of a model without uncertainty.
            ArchError: An architecture is not of the predictor's space.
        """
        if return_std and not self.has_uncertainty:
            raise ParamError(
                f"{type(self).__name__} has no uncertainty estimate: predict(..., return_std=True) is not "
                "available; use an ensemble, a random forest, a Gaussian process or the BANANAS MLP ensemble"
            )
        checked = self._validate_predict(archs)
        if not checked:
            empty = np.zeros(0, dtype=np.float64)
            return (empty, empty.copy()) if return_std else empty
        mean, std = self._predict(checked, return_std)
        if return_std:
            return mean, std
        return mean

    @abc.abstractmethod
    def fit(self, archs: Sequence[Any], y: Any) -> ArchPredictor:
        """Fit to labelled architectures and return ``self``."""

    @abc.abstractmethod
    def _predict(self, archs: list[Arch], return_std: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """Predictions (in target units) for validated ``archs``; std only if asked."""

    def __sklearn_tags__(self):  # type: ignore[no-untyped-def]
        tags = super().__sklearn_tags__()
        # Samples are architectures, not numeric feature rows: sklearn's array checks do not apply.
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        tags.non_deterministic = False
        return tags
