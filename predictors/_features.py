"""Feature rows for the vector-input predictors: an encoding, zero-cost scores, HAAP.

A predictor mixing in :class:`FeatureMixin` turns architectures into rows of
``[encoding | zero-cost scores]``. Zero-cost scores as extra features follow
NAS-Bench-Suite-Zero (Krishnakumar et al., NeurIPS 2022 Datasets and Benchmarks), where
they lift tree models markedly; HAAP (Liu et al., ICCV 2021) adds the homogeneous
representations of the labelled architectures to the training rows.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from evonas.config import MAX_ARCHS
from evonas.errors import UnknownChoiceError
from evonas.spaces import Arch, SearchSpace
from predictors._base import ParamError, SpaceLike, check_choice, check_int
from predictors._encodings import ENCODINGS, encode, encoding_capabilities, graph_adjacency_one_hot
from predictors._haap import HAAP_ENCODINGS, haap_augment
from predictors._zc_scorer import PROXIES, ZeroCostScorer


def _signed_log(x: np.ndarray) -> np.ndarray:
    # Proxies span many orders of magnitude; a signed log keeps their order and makes
    # them usable by distance- and gradient-based models.
    return np.asarray(np.sign(x) * np.log1p(np.abs(x)))


class FeatureMixin:
    """Shared hyper-parameters and feature building of the vector-input predictors.

    Hyper-parameters (set by the subclass ``__init__``):
        encoding: Registered encoding name (``adjacency_one_hot``, ``one_hot``, ``path``).
        zero_cost: Names of zero-cost proxies appended as features (empty: none).
        scorer: The :class:`ZeroCostScorer` computing them (``None``: a default scorer of
            the predictor's space); used only when ``zero_cost`` is not empty.
        haap: Add HAAP's homogeneous representations of every labelled architecture to
            the training rows; needs an order-dependent encoding (``adjacency_one_hot``).
        haap_samples: Extra representations per architecture (``None``: all of them).
    """

    encoding: str
    zero_cost: Sequence[str]
    scorer: ZeroCostScorer | None
    haap: bool
    haap_samples: int | None
    space: SpaceLike

    def _check_feature_params(self, space: SearchSpace) -> None:
        check_choice(self.encoding, "encoding", ENCODINGS.names(), owner=self)
        if isinstance(self.zero_cost, str) or not isinstance(self.zero_cost, (Sequence, np.ndarray)):
            raise ParamError(
                f"invalid value {self.zero_cost!r} for 'zero_cost' of {type(self).__name__}; expected a list of "
                f"proxy names among {', '.join(PROXIES)}"
            )
        for name in self.zero_cost:
            if name not in PROXIES:
                raise UnknownChoiceError("zero-cost proxy", name, PROXIES)
        if self.scorer is not None and not isinstance(self.scorer, ZeroCostScorer):
            raise ParamError(
                f"invalid value {self.scorer!r} for 'scorer' of {type(self).__name__}; expected a ZeroCostScorer or None"
            )
        check_choice(self.haap, "haap", (True, False), owner=self)
        if self.haap and self.encoding not in HAAP_ENCODINGS:
            raise ParamError(
                f"HAAP needs an encoding that depends on the node order ({', '.join(HAAP_ENCODINGS)}); "
                f"{type(self).__name__} has encoding={self.encoding!r}, which gains nothing from it"
            )
        if self.haap_samples is not None:
            check_int(self.haap_samples, "haap_samples", 1, MAX_ARCHS, owner=self)
        if self.zero_cost:
            self._zero_cost_scorer(space).check_for(space, self)

    def required_capabilities(self) -> frozenset[str]:
        """What the encoding (and HAAP, which relabels op-node graphs) needs of the space."""
        needed = encoding_capabilities(self.encoding) if self.encoding in ENCODINGS else frozenset()
        return needed | (frozenset({"graph"}) if self.haap else frozenset())

    def zero_cost_proxies(self) -> tuple[str, ...]:
        """The proxies appended as features (read from ``scorer``)."""
        return tuple(self.zero_cost)

    def _zero_cost_scorer(self, space: SearchSpace) -> ZeroCostScorer:
        return self.scorer if self.scorer is not None else ZeroCostScorer(space=space)

    def _raw_zero_cost(self, archs: Sequence[Arch], space: SearchSpace) -> np.ndarray:
        return _signed_log(self._zero_cost_scorer(space).scores(archs, tuple(self.zero_cost)))

    def _zc_columns(self, archs: Sequence[Arch], space: SearchSpace, fit: bool) -> np.ndarray:
        raw = self._raw_zero_cost(archs, space)
        if fit:
            finite = np.where(np.isfinite(raw), raw, np.nan)
            low = np.nanmin(finite, axis=0) if raw.shape[0] else np.zeros(raw.shape[1])
            # A proxy that cannot score an architecture (a dead network) ranks it below all others.
            self.zc_fill_ = np.where(np.isfinite(low), low - 1.0, 0.0)
        filled = np.where(np.isfinite(raw), raw, self.zc_fill_)
        if fit:
            self.zc_mean_ = filled.mean(axis=0)
            scale = filled.std(axis=0)
            self.zc_scale_ = np.where(scale > 1e-12, scale, 1.0)
        return np.asarray((filled - self.zc_mean_) / self.zc_scale_)

    def _fit_rows(
        self, archs: Sequence[Arch], y: np.ndarray, space: SearchSpace, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """Training rows and targets (HAAP-augmented when asked)."""
        if self.haap:
            x, y_out, source = haap_augment(archs, y, space, graph_adjacency_one_hot, self.haap_samples, rng)
        else:
            x, y_out, source = encode(archs, space, self.encoding), np.asarray(y, np.float64), np.arange(len(archs))
        if self.zero_cost:
            x = np.hstack([x, self._zc_columns(archs, space, fit=True)[source]])
        self.n_features_in_ = x.shape[1]
        return x.astype(np.float64), y_out

    def _rows(self, archs: Sequence[Arch], space: SearchSpace) -> np.ndarray:
        """Rows of ``archs`` for prediction."""
        x = encode(archs, space, self.encoding)
        if self.zero_cost:
            x = np.hstack([x, self._zc_columns(archs, space, fit=False)])
        return x.astype(np.float64)
