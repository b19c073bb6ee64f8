"""An ensemble of any predictors: the mean of their predictions, their spread as uncertainty."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import clone

from evonas.spaces import Arch
from predictors._base import ArchPredictor, ParamError, check_seed


def _default_members() -> list[ArchPredictor]:
    from predictors._neural import MLPEnsemblePredictor
    from predictors._tabular import GradientBoostingPredictor, RandomForestPredictor

    return [RandomForestPredictor(encoding="path"), GradientBoostingPredictor(), MLPEnsemblePredictor(n_models=1)]


class EnsemblePredictor(ArchPredictor):
    """Mean and standard deviation over independently fitted predictors.

    Ensembling different model families is a simple, strong way to get both better
    rankings and an uncertainty estimate (as for the BANANAS ensemble, White et al., AAAI
    2021; ensembles of predictors are compared by White et al., NeurIPS 2021).

    Args:
        estimators: The member predictors (any from :data:`PREDICTORS`); each is cloned
            before fitting. ``None``: a random forest on paths, boosted trees on one-hot
            and an MLP on paths.
        random_state: Member ``i`` with a ``random_state`` hyper-parameter is fitted with
            ``random_state + i``.
        space: Search space of the architectures; members must use the same.
    """

    has_uncertainty = True

    def __init__(
        self, estimators: Sequence[ArchPredictor] | None = None, random_state: int = 0, space: str = "nb201"
    ) -> None:
        self.estimators = estimators
        self.random_state = random_state
        self.space = space

    def _members(self) -> list[ArchPredictor]:
        members = _default_members() if self.estimators is None else list(self.estimators)
        if not members:
            raise ParamError("the 'estimators' parameter of EnsemblePredictor must hold at least one predictor; got []")
        for m in members:
            if not isinstance(m, ArchPredictor):
                raise ParamError(f"EnsemblePredictor members must be predictors of this package; got {m!r}")
            if getattr(m, "space", self.space) != self.space:
                raise ParamError(
                    f"EnsemblePredictor has space={self.space!r} but member {type(m).__name__} has space={m.space!r}"
                )
        return members

    @property
    def min_fit_archs(self) -> int:  # type: ignore[override]
        return max(m.min_fit_archs for m in self._members())

    def fit(self, archs: Sequence[Any], y: Any) -> EnsemblePredictor:
        """Fit a clone of every member and return ``self``."""
        seed = check_seed(self, self.random_state)
        archs, y = self._validate_fit(archs, y)
        fitted = []
        for i, member in enumerate(self._members()):
            est = clone(member)
            if "random_state" in est.get_params(deep=False):
                est.set_params(random_state=seed + i)
            fitted.append(est.fit(archs, y))
        self.estimators_ = fitted
        return self

    def _predict(self, archs: list[Arch], return_std: bool) -> tuple[np.ndarray, np.ndarray | None]:
        preds = np.stack([est.predict(archs) for est in self.estimators_])
        return preds.mean(axis=0), (preds.std(axis=0) if return_std else None)
