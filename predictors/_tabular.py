"""scikit-learn regressors on architecture encodings: linear, random forest, boosted trees, GP.

Each wraps one scikit-learn model behind the architecture interface: rows come from
:class:`~predictors._features.FeatureMixin` (encoding, optional zero-cost features and
HAAP), targets are standardised, and predictions are mapped back to target units. These
are the tree and GP baselines compared by White et al., "How Powerful are Performance
Predictors in Neural Architecture Search?", NeurIPS 2021.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any

import numpy as np

from evonas.spaces import Arch, SearchSpace
from evonas.config import MAX_ARCHS
from predictors._base import (
    MAX_DEPTH,
    ArchPredictor,
    SpaceLike,
    check_choice,
    check_int,
    check_number,
    check_seed,
    float32_resolution,
)
from predictors._features import FeatureMixin
from predictors._zc_scorer import ZeroCostScorer

MAX_ESTIMATORS = 100_000
"""Most trees of a forest or boosting predictor."""


class _SklearnPredictor(FeatureMixin, ArchPredictor):
    """Fit/predict plumbing shared by the scikit-learn wrappers."""

    random_state: int

    def _check_params(self, space: SearchSpace) -> None:
        check_seed(self.random_state, owner=self)
        self._check_model_params()
        self._check_feature_params(space)

    @abc.abstractmethod
    def _check_model_params(self) -> None:
        """Raise for an invalid hyper-parameter of the scikit-learn model."""

    @abc.abstractmethod
    def _make_model(self) -> Any:
        """A fresh, unfitted scikit-learn regressor with this predictor's (checked) hyper-parameters."""

    def fit(self, archs: Sequence[Any], y: Any) -> _SklearnPredictor:
        """Fit the scikit-learn model to the encoded architectures; return ``self``."""
        checked, targets = self._validate_fit(archs, y)
        ys = self._set_target_scale(targets)
        x, y_rows = self._fit_rows(checked, ys, self.space_, np.random.default_rng(self.random_state))
        self.model_ = self._make_model().fit(x, y_rows)
        return self

    def _predict(self, archs: list[Arch], return_std: bool) -> tuple[np.ndarray, np.ndarray | None]:
        x = self._rows(archs, self.space_)
        if return_std:
            mean, std = self._predict_with_std(x)
            return self._unscale(float32_resolution(mean), float32_resolution(std))
        return self._unscale(float32_resolution(self.model_.predict(x)))[0], None

    def _predict_with_std(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mean, std = self.model_.predict(x, return_std=True)
        return np.asarray(mean), np.asarray(std)


class LinearPredictor(_SklearnPredictor):
    """Ridge regression on an encoding: the linear baseline.

    Args:
        alpha: L2 penalty of :class:`sklearn.linear_model.Ridge`.
        encoding: Registered encoding (default ``one_hot``).
        zero_cost: Zero-cost proxies appended as features.
        scorer: Computes them (``None``: default scorer).
        haap: HAAP augmentation (needs ``adjacency_one_hot``).
        haap_samples: Extra representations per architecture (``None``: all).
        random_state: Seed of the HAAP draws (Ridge itself is deterministic).
        space: Search space of the architectures: a registered name or a space value.
    """

    def __init__(
        self,
        alpha: float = 1.0,
        encoding: str = "one_hot",
        zero_cost: Sequence[str] = (),
        scorer: ZeroCostScorer | None = None,
        haap: bool = False,
        haap_samples: int | None = None,
        random_state: int = 0,
        space: SpaceLike = "nb201",
    ) -> None:
        self.alpha = alpha
        self.encoding = encoding
        self.zero_cost = zero_cost
        self.scorer = scorer
        self.haap = haap
        self.haap_samples = haap_samples
        self.random_state = random_state
        self.space = space

    def _check_model_params(self) -> None:
        check_number(self.alpha, "alpha", 0.0, owner=self)

    def _make_model(self) -> Any:
        from sklearn.linear_model import Ridge

        return Ridge(alpha=float(self.alpha))


class RandomForestPredictor(_SklearnPredictor):
    """Random forest (:class:`sklearn.ensemble.RandomForestRegressor`); std across trees.

    Args:
        n_estimators: Trees.
        max_features: Share of features tried per split (1.0: all, as for regression).
        min_samples_leaf: Fewest samples in a leaf.
        encoding: Registered encoding (default ``one_hot``).
        zero_cost: Zero-cost proxies appended as features.
        scorer: Computes them (``None``: default scorer).
        haap: HAAP augmentation (needs ``adjacency_one_hot``).
        haap_samples: Extra representations per architecture (``None``: all).
        random_state: Seed of bootstrap, feature draws and HAAP draws.
        space: Search space of the architectures: a registered name or a space value.
    """

    has_uncertainty = True

    def __init__(
        self,
        n_estimators: int = 200,
        max_features: float = 1.0,
        min_samples_leaf: int = 1,
        encoding: str = "one_hot",
        zero_cost: Sequence[str] = (),
        scorer: ZeroCostScorer | None = None,
        haap: bool = False,
        haap_samples: int | None = None,
        random_state: int = 0,
        space: SpaceLike = "nb201",
    ) -> None:
        self.n_estimators = n_estimators
        self.max_features = max_features
        self.min_samples_leaf = min_samples_leaf
        self.encoding = encoding
        self.zero_cost = zero_cost
        self.scorer = scorer
        self.haap = haap
        self.haap_samples = haap_samples
        self.random_state = random_state
        self.space = space

    def _check_model_params(self) -> None:
        check_int(self.n_estimators, "n_estimators", 1, MAX_ESTIMATORS, owner=self)
        check_number(self.max_features, "max_features", 0.0, 1.0, low_open=True, owner=self)
        check_int(self.min_samples_leaf, "min_samples_leaf", 1, MAX_ARCHS, owner=self)

    def _make_model(self) -> Any:
        from sklearn.ensemble import RandomForestRegressor

        return RandomForestRegressor(
            n_estimators=int(self.n_estimators),
            max_features=float(self.max_features),
            min_samples_leaf=int(self.min_samples_leaf),
            random_state=self.random_state,
            n_jobs=1,
        )

    def _predict_with_std(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        per_tree = np.stack([tree.predict(x) for tree in self.model_.estimators_])
        return per_tree.mean(axis=0), per_tree.std(axis=0)


class GradientBoostingPredictor(_SklearnPredictor):
    """Gradient-boosted regression trees (:class:`sklearn.ensemble.GradientBoostingRegressor`).

    Args:
        n_estimators: Boosting stages.
        learning_rate: Shrinkage of every stage.
        max_depth: Depth of every tree.
        subsample: Share of the rows each stage sees (stochastic gradient boosting).
        encoding: Registered encoding (default ``one_hot``).
        zero_cost: Zero-cost proxies appended as features (NAS-Bench-Suite-Zero's hybrid).
        scorer: Computes them (``None``: default scorer).
        haap: HAAP augmentation (needs ``adjacency_one_hot``).
        haap_samples: Extra representations per architecture (``None``: all).
        random_state: Seed of the row subsampling and HAAP draws.
        space: Search space of the architectures: a registered name or a space value.
    """

    def __init__(
        self,
        n_estimators: int = 300,
        learning_rate: float = 0.05,
        max_depth: int = 3,
        subsample: float = 0.8,
        encoding: str = "one_hot",
        zero_cost: Sequence[str] = (),
        scorer: ZeroCostScorer | None = None,
        haap: bool = False,
        haap_samples: int | None = None,
        random_state: int = 0,
        space: SpaceLike = "nb201",
    ) -> None:
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.subsample = subsample
        self.encoding = encoding
        self.zero_cost = zero_cost
        self.scorer = scorer
        self.haap = haap
        self.haap_samples = haap_samples
        self.random_state = random_state
        self.space = space

    def _check_model_params(self) -> None:
        check_int(self.n_estimators, "n_estimators", 1, MAX_ESTIMATORS, owner=self)
        check_number(self.learning_rate, "learning_rate", 0.0, low_open=True, owner=self)
        check_int(self.max_depth, "max_depth", 1, MAX_DEPTH, owner=self)
        check_number(self.subsample, "subsample", 0.0, 1.0, low_open=True, owner=self)

    def _make_model(self) -> Any:
        from sklearn.ensemble import GradientBoostingRegressor

        return GradientBoostingRegressor(
            n_estimators=int(self.n_estimators),
            learning_rate=float(self.learning_rate),
            max_depth=int(self.max_depth),
            subsample=float(self.subsample),
            random_state=self.random_state,
        )


class GaussianProcessPredictor(_SklearnPredictor):
    """Gaussian-process regression (:class:`sklearn.gaussian_process.GaussianProcessRegressor`).

    The kernel is ``Constant * k + White`` with ``k`` an RBF or a Matérn-5/2 kernel whose
    hyper-parameters are fitted by marginal likelihood (one L-BFGS run from the initial
    values); the predictive std is the GP's.

    Args:
        kernel: ``"rbf"`` or ``"matern"``.
        length_scale: Initial length scale of ``k``.
        encoding: Registered encoding (default ``one_hot``).
        zero_cost: Zero-cost proxies appended as features.
        scorer: Computes them (``None``: default scorer).
        haap: HAAP augmentation (needs ``adjacency_one_hot``).
        haap_samples: Extra representations per architecture (``None``: all).
        random_state: Seed of the HAAP draws (the GP fit itself is deterministic).
        space: Search space of the architectures: a registered name or a space value.
    """

    has_uncertainty = True

    def __init__(
        self,
        kernel: str = "matern",
        length_scale: float = 3.0,
        encoding: str = "one_hot",
        zero_cost: Sequence[str] = (),
        scorer: ZeroCostScorer | None = None,
        haap: bool = False,
        haap_samples: int | None = None,
        random_state: int = 0,
        space: SpaceLike = "nb201",
    ) -> None:
        self.kernel = kernel
        self.length_scale = length_scale
        self.encoding = encoding
        self.zero_cost = zero_cost
        self.scorer = scorer
        self.haap = haap
        self.haap_samples = haap_samples
        self.random_state = random_state
        self.space = space

    def _check_model_params(self) -> None:
        check_choice(self.kernel, "kernel", ("rbf", "matern"), owner=self)
        check_number(self.length_scale, "length_scale", 0.0, low_open=True, owner=self)

    def _make_model(self) -> Any:
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import RBF, ConstantKernel, Matern, WhiteKernel

        scale = float(self.length_scale)
        base = RBF(scale, (1e-2, 1e3)) if self.kernel == "rbf" else Matern(scale, (1e-2, 1e3), nu=2.5)
        kernel = ConstantKernel(1.0, (1e-3, 1e3)) * base + WhiteKernel(0.1, (1e-6, 1e1))
        return GaussianProcessRegressor(kernel=kernel, n_restarts_optimizer=0, random_state=self.random_state)
