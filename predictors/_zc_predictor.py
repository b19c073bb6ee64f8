"""Zero-cost proxies as predictors: a score per architecture, no training.

``fit`` only validates its inputs (so the harness and searches can treat proxies like any
other predictor) and ``predict`` returns the proxy's score, oriented so that a higher
prediction means a better architecture when ``greater_is_better`` (targets are
accuracies) and negated otherwise (targets are losses). Only the order of the predictions
is meaningful.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from evonas.errors import UnknownChoiceError
from evonas.spaces import Arch
from predictors._base import ArchPredictor, ParamError
from predictors._zc_scorer import PROXIES, ZeroCostScorer


class ZeroCostPredictor(ArchPredictor):
    """One zero-cost proxy as a predictor.

    Args:
        proxy: Name among ``naswot`` (Mellor et al., ICML 2021), ``jacob_cov``,
            ``synflow`` (Tanaka et al., NeurIPS 2020), ``snip`` (Lee et al., ICLR 2019),
            ``grad_norm``, ``params``, ``flops`` (as compared by Abdelfattah et al.,
            "Zero-Cost Proxies for Lightweight NAS", ICLR 2021).
        scorer: Computes and caches the scores (``None``: a default
            :class:`ZeroCostScorer`, which needs ``data_root``).
        greater_is_better: The targets grow with quality (accuracies). Set False for
            losses: the scores are then negated.
        space: Search space of the architectures.
    """

    min_fit_archs = 0

    def __init__(
        self,
        proxy: str = "naswot",
        scorer: ZeroCostScorer | None = None,
        greater_is_better: bool = True,
        space: str = "nb201",
    ) -> None:
        self.proxy = proxy
        self.scorer = scorer
        self.greater_is_better = greater_is_better
        self.space = space

    def _check_params(self) -> None:
        if self.proxy not in PROXIES:
            raise UnknownChoiceError("zero-cost proxy", self.proxy, PROXIES)
        if self.scorer is not None and not isinstance(self.scorer, ZeroCostScorer):
            raise ParamError(f"the 'scorer' parameter of ZeroCostPredictor must be a ZeroCostScorer or None; got {self.scorer!r}")
        if not isinstance(self.greater_is_better, bool):
            raise ParamError(
                f"the 'greater_is_better' parameter of ZeroCostPredictor must be true or false; got {self.greater_is_better!r}"
            )

    def fit(self, archs: Sequence[Any], y: Any) -> ZeroCostPredictor:
        """Validate ``archs`` and ``y`` (nothing is learned) and return ``self``."""
        self._check_params()
        checked, _ = self._validate_fit(archs, y)
        self.n_train_archs_ = len(checked)
        return self

    def _predict(self, archs: list[Arch], return_std: bool) -> tuple[np.ndarray, None]:
        self._check_params()
        scorer = self.scorer if self.scorer is not None else ZeroCostScorer()
        scores = scorer.scores(archs, (self.proxy,))[:, 0]
        return (scores if self.greater_is_better else -scores), None
