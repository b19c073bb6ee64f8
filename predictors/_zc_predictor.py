"""Zero-cost proxies as predictors: a score per architecture, no training.

``fit`` only validates its inputs (so the harness and searches can treat proxies like any
other predictor) and ``predict`` returns the proxy's score, oriented so that a higher
prediction means a better architecture when ``direction`` is ``"max"`` (targets are
accuracies) and negated for ``"min"`` (targets are losses). Only the order of the
predictions is meaningful.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from evonas.errors import UnknownChoiceError
from evonas.spaces import Arch, SearchSpace
from predictors._base import ArchPredictor, ParamError, SpaceLike, check_choice
from predictors._zc_scorer import PROXIES, ZeroCostScorer


class ZeroCostPredictor(ArchPredictor):
    """One zero-cost proxy as a predictor.

    The space needs no capability, but a network decoder (the scorer's ``network``).

    Args:
        proxy: Name among ``naswot`` (Mellor et al., ICML 2021), ``jacob_cov``,
            ``synflow`` (Tanaka et al., NeurIPS 2020), ``snip`` (Lee et al., ICLR 2019),
            ``grad_norm``, ``params``, ``flops`` (as compared by Abdelfattah et al.,
            "Zero-Cost Proxies for Lightweight NAS", ICLR 2021).
        scorer: Computes and caches the scores (``None``: a default
            :class:`ZeroCostScorer` of the predictor's space, which needs ``data_root``).
        direction: ``"max"``: the targets grow with quality (accuracies); ``"min"``: they
            fall with it (losses), and the scores are negated.
        space: Search space of the architectures: a registered name or a space value.
    """

    min_fit_archs = 0

    def __init__(
        self,
        proxy: str = "naswot",
        scorer: ZeroCostScorer | None = None,
        direction: str = "max",
        space: SpaceLike = "nb201",
    ) -> None:
        self.proxy = proxy
        self.scorer = scorer
        self.direction = direction
        self.space = space

    def zero_cost_proxies(self) -> tuple[str, ...]:
        return (self.proxy,)

    def _scorer(self, space: SearchSpace) -> ZeroCostScorer:
        return self.scorer if self.scorer is not None else ZeroCostScorer(space=space)

    def _check_params(self, space: SearchSpace) -> None:
        if self.proxy not in PROXIES:
            raise UnknownChoiceError("zero-cost proxy", self.proxy, PROXIES)
        if self.scorer is not None and not isinstance(self.scorer, ZeroCostScorer):
            raise ParamError(
                f"invalid value {self.scorer!r} for 'scorer' of ZeroCostPredictor; expected a ZeroCostScorer or None"
            )
        check_choice(self.direction, "direction", ("max", "min"), owner=self)
        self._scorer(space).check_for(space, self)

    def fit(self, archs: Sequence[Any], y: Any) -> ZeroCostPredictor:
        """Validate ``archs`` and ``y`` (nothing is learned) and return ``self``."""
        checked, _ = self._validate_fit(archs, y)
        self.n_train_archs_ = len(checked)
        return self

    def _predict(self, archs: list[Arch], return_std: bool) -> tuple[np.ndarray, None]:
        self._check_params(self.space_)
        scores = self._scorer(self.space_).scores(archs, (self.proxy,))[:, 0]
        return (scores if self.direction == "max" else -scores), None
