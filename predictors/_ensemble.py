"""An ensemble of any predictors: the mean of their predictions, their spread as uncertainty."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import clone

from evonas.spaces import Arch, SearchSpace
from predictors._base import ArchPredictor, ParamError, SpaceLike, check_seed


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
        space: Search space of the architectures (a registered name or a space value);
            the members are fitted with it, whatever their own ``space``.
    """

    has_uncertainty = True

    def __init__(
        self, estimators: Sequence[ArchPredictor] | None = None, random_state: int = 0, space: SpaceLike = "nb201"
    ) -> None:
        self.estimators = estimators
        self.random_state = random_state
        self.space = space

    def _members(self) -> list[ArchPredictor]:
        """Unfitted copies of the members, each with the ensemble's space."""
        members = _default_members() if self.estimators is None else list(self.estimators)
        if not members:
            raise ParamError("invalid value [] for 'estimators' of EnsemblePredictor; expected at least one predictor")
        out = []
        for m in members:
            if not isinstance(m, ArchPredictor):
                raise ParamError(
                    f"invalid member {m!r} in 'estimators' of EnsemblePredictor; expected predictors of this package"
                )
            out.append(clone(m).set_params(space=self.space))
        return out

    def required_capabilities(self) -> frozenset[str]:
        """Everything any member needs."""
        return frozenset().union(*(m.required_capabilities() for m in self._members()))

    def zero_cost_proxies(self) -> tuple[str, ...]:
        """The proxies any member reads from its scorer."""
        return tuple(dict.fromkeys(p for m in self._members() for p in m.zero_cost_proxies()))

    def fewest_fit_archs(self) -> int:
        return max(m.fewest_fit_archs() for m in self._members())

    def _check_params(self, space: SearchSpace) -> None:
        check_seed(self.random_state, owner=self)
        for member in self._members():
            member.check_params()

    def fit(self, archs: Sequence[Any], y: Any) -> EnsemblePredictor:
        """Fit a copy of every member and return ``self``."""
        checked, targets = self._validate_fit(archs, y)
        seed = int(self.random_state)
        fitted = []
        for i, est in enumerate(self._members()):
            if "random_state" in est.get_params(deep=False):
                est.set_params(random_state=seed + i)
            fitted.append(est.fit(checked, targets))
        self.estimators_ = fitted
        return self

    def _predict(self, archs: list[Arch], return_std: bool) -> tuple[np.ndarray, np.ndarray | None]:
        preds = np.stack([est.predict(archs) for est in self.estimators_])
        return preds.mean(axis=0), (preds.std(axis=0) if return_std else None)
