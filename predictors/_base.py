"""The contract every predictor follows, and the input checks they share.

Predictors are scikit-learn estimators whose samples are architectures (genotypes of one
search space) instead of feature rows: ``__init__`` only stores hyper-parameters,
``fit(archs, y)`` validates its inputs and returns ``self``, fitted state ends in ``_``,
and ``predict(archs)`` returns a 1-d array. Models with an uncertainty estimate also
accept ``predict(archs, return_std=True)`` and return ``(mean, std)``.

The ``space`` hyper-parameter of every predictor is a registered space name (built with
its default parameters) or a :class:`~evonas.spaces.SearchSpace` value. A predictor
states the capabilities it needs of that space (:meth:`ArchPredictor.required_capabilities`,
e.g. ``graph`` for graph networks, ``fixed_length`` for one-hot rows); ``fit`` checks them
with :func:`evonas.spaces.require`.

Targets may be accuracies or losses: models standardise them internally, so nothing in a
predictor assumes a direction or a scale.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any, ClassVar, Literal, cast, overload

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted

from evonas import config as _config
from evonas.errors import ArchError, EvonasError
from evonas.spaces import Arch, SearchSpace, build_space, require

SpaceLike = str | SearchSpace
"""What the ``space`` hyper-parameter accepts: a registered space name or a space value."""


class TargetError(EvonasError):
    """Training targets are not finite numbers or do not match the architectures."""


class ParamError(EvonasError):
    """A predictor hyper-parameter has an invalid value."""


# The one check vocabulary of evonas.config, with the owner named and ParamError raised:
# "invalid value 0 for 'epochs' of GAEPredictor; expected an integer >= 1".
def check_int(value: Any, where: str, low: int | None = None, high: int | None = None, *, owner: object) -> int:
    """:func:`evonas.config.check_int` for the hyper-parameter ``where`` of ``owner``."""
    return cast(int, _config.check_int(value, where, low, high, owner=type(owner).__name__, error=ParamError))


def check_number(
    value: Any,
    where: str,
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
    owner: object,
) -> float:
    """:func:`evonas.config.check_number` for the hyper-parameter ``where`` of ``owner``."""
    return cast(
        float,
        _config.check_number(
            value, where, low, high, low_open=low_open, high_open=high_open, owner=type(owner).__name__, error=ParamError
        ),
    )


def check_choice(value: Any, where: str, choices: Sequence[Any], *, owner: object) -> Any:
    """:func:`evonas.config.check_choice` for the hyper-parameter ``where`` of ``owner``."""
    return _config.check_choice(value, where, choices, owner=type(owner).__name__, error=ParamError)


def check_seed(value: Any, *, owner: object) -> int:
    """``random_state`` must be a non-negative int (predictors are always seeded)."""
    return check_int(value, "random_state", 0, owner=owner)


MAX_WIDTH = 4096
"""Largest hidden or latent width of a neural predictor."""
MAX_DEPTH = 64
"""Most layers of a neural predictor."""
MAX_MODELS = 100
"""Most models of an ensemble predictor (fitted one after another)."""


def resolve_space(space: Any, *, owner: object) -> SearchSpace:
    """The search space of a ``space`` hyper-parameter.

    Args:
        space: A registered space name (built with its default parameters) or a space value.
        owner: Whose hyper-parameter it is (for the message).

    Raises:
        UnknownChoiceError: An unknown name; the message lists the registered spaces.
        ParamError: Neither a name nor a search space.
    """
    if isinstance(space, str):
        return build_space(space)
    if isinstance(space, SearchSpace):
        return space
    raise ParamError(
        f"invalid value {space!r} for 'space' of {type(owner).__name__}; expected a registered space name "
        "or a SearchSpace"
    )


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


def float32_resolution(values: Any) -> np.ndarray:
    """``values`` rounded to float32 precision (as float64).

    Model outputs are computed in float64 and rounded so: the last bits of a float64 sum
    depend on how many rows a call holds, and after this rounding an architecture's
    prediction is the same whatever it is predicted beside (the search loop predicts a
    candidate's whole fitness plan in one call).
    """
    return np.asarray(values, dtype=np.float64).astype(np.float32).astype(np.float64)


class ArchPredictor(RegressorMixin, BaseEstimator, metaclass=abc.ABCMeta):
    """Base class of the predictors: shared validation and target scaling.

    Subclasses implement ``_check_params`` (every hyper-parameter), ``fit`` (calling
    :meth:`_validate_fit` first) and ``_predict`` (mean, and std when
    ``has_uncertainty``), and override :meth:`required_capabilities` and
    :meth:`zero_cost_proxies` where they need a capability or read zero-cost scores.
    ``space`` is a hyper-parameter of every subclass (see the module docstring).
    """

    has_uncertainty: ClassVar[bool] = False
    """Whether ``predict(archs, return_std=True)`` is supported."""

    min_fit_archs: ClassVar[int] = 2
    """Fewest labelled architectures ``fit`` accepts."""

    space: SpaceLike

    def search_space(self) -> SearchSpace:
        """The search space of the ``space`` hyper-parameter (see :func:`resolve_space`)."""
        return resolve_space(self.space, owner=self)

    def required_capabilities(self) -> frozenset[str]:
        """The search-space capabilities this predictor needs with its hyper-parameters."""
        return frozenset()

    def zero_cost_proxies(self) -> tuple[str, ...]:
        """The zero-cost proxies this predictor reads from its ``scorer`` (empty: none)."""
        return ()

    def fewest_fit_archs(self) -> int:
        """Fewest labelled architectures ``fit`` accepts (``min_fit_archs`` unless a
        predictor's members ask for more)."""
        return self.min_fit_archs

    def check_params(self) -> SearchSpace:
        """Validate every hyper-parameter and the space's capabilities; return the space.

        ``fit`` calls this first; configs call it before any work starts.

        Raises:
            ParamError: A hyper-parameter has an invalid value.
            UnknownChoiceError: An unknown space, encoding or proxy name.
            CapabilityError: The space lacks a capability the predictor needs (or a network
                decoder, for zero-cost scores).
        """
        space = self.search_space()
        self._check_params(space)
        require(space, self.required_capabilities(), type(self).__name__)
        return space

    @abc.abstractmethod
    def _check_params(self, space: SearchSpace) -> None:
        """Raise for an invalid hyper-parameter (``space`` is already resolved)."""

    def _validate_fit(self, archs: Sequence[Any], y: Any) -> tuple[list[Arch], np.ndarray]:
        space = self.check_params()
        out = check_archs(archs, space, min_count=self.fewest_fit_archs())
        targets = check_targets(y, len(out))
        self.space_ = space
        return out, targets

    def _validate_predict(self, archs: Sequence[Any]) -> list[Arch]:
        check_is_fitted(self)
        return check_archs(archs, self.space_, min_count=0)

    def _set_target_scale(self, y: np.ndarray) -> np.ndarray:
        """Remember the targets' mean and scale and return the standardised targets."""
        self.y_mean_ = float(np.mean(y))
        std = float(np.std(y))
        self.y_scale_ = std if std > 1e-12 else 1.0
        # Rounding far below any meaningful precision makes the standardised targets, and so
        # the fitted model, identical whatever unit the targets came in (no float noise that
        # could flip a tie between two tree splits).
        return np.asarray(np.round((y - self.y_mean_) / self.y_scale_, 9))

    def _unscale(self, z: Any, std: Any = None) -> tuple[np.ndarray, np.ndarray | None]:
        mean = np.asarray(z, dtype=np.float64) * self.y_scale_ + self.y_mean_
        if std is None:
            return mean, None
        return mean, np.asarray(std, dtype=np.float64) * self.y_scale_

    @overload
    def predict(self, archs: Sequence[Any], return_std: Literal[False] = ...) -> np.ndarray: ...

    @overload
    def predict(self, archs: Sequence[Any], return_std: Literal[True]) -> tuple[np.ndarray, np.ndarray]: ...

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
        if not return_std:
            return mean
        if std is None:
            raise RuntimeError(f"{type(self).__name__}._predict returned no std although it was asked for")
        return mean, std

    @abc.abstractmethod
    def fit(self, archs: Sequence[Any], y: Any) -> ArchPredictor:
        """Fit to labelled architectures and return ``self``."""

    @abc.abstractmethod
    def _predict(self, archs: list[Arch], return_std: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """Predictions (in target units) for validated ``archs``; std only if asked."""

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        # Samples are architectures, not numeric feature rows: sklearn's array checks do not apply.
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        tags.non_deterministic = False
        return tags
