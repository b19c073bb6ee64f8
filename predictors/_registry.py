"""The predictor registry: every name the harness, the configs and the contract tests know.

Entries are factories ``factory(**hyper_parameters) -> predictor``: a class, or a named
variant of one with other defaults. Registering a name here enrols it in the contract
tests and in ``benchmarks/predictors_nb201.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from evonas._registry import Registry
from predictors._base import ArchPredictor
from predictors._ensemble import EnsemblePredictor
from predictors._neural import GAEPredictor, GNNPredictor, MLPEnsemblePredictor
from predictors._tabular import GaussianProcessPredictor, GradientBoostingPredictor, LinearPredictor, RandomForestPredictor
from predictors._zc_predictor import ZeroCostPredictor
from predictors._zc_scorer import PROXIES

PREDICTORS: Registry[Callable[..., ArchPredictor]] = Registry("predictor")

HYBRID_PROXIES: tuple[str, ...] = ("naswot", "jacob_cov", "synflow", "snip", "grad_norm", "params", "flops")
"""Zero-cost features of the hybrid predictors (NAS-Bench-Suite-Zero style)."""

HAAP_SAMPLES = 5
"""Homogeneous representations added per architecture by the registered HAAP variants."""


def _variant(name: str, cls: type[ArchPredictor], doc: str, **defaults: Any) -> None:
    def factory(**params: Any) -> ArchPredictor:
        return cls(**{**defaults, **params})

    factory.__name__ = factory.__qualname__ = f"make_{name}"
    factory.__doc__ = f"{doc} ({cls.__name__} with {defaults})."
    PREDICTORS.register(name)(factory)


PREDICTORS.register("linear")(LinearPredictor)
PREDICTORS.register("rf")(RandomForestPredictor)
PREDICTORS.register("gbdt")(GradientBoostingPredictor)
PREDICTORS.register("gp")(GaussianProcessPredictor)
PREDICTORS.register("bananas")(MLPEnsemblePredictor)
PREDICTORS.register("gin")(GNNPredictor)
PREDICTORS.register("gae")(GAEPredictor)
PREDICTORS.register("ensemble")(EnsemblePredictor)
_variant("gcn", GNNPredictor, "A supervised GCN regressor", conv="gcn")
_variant("gae_scratch", GAEPredictor, "The GAE estimator without unsupervised pre-training", pretrain=False)
_variant("mlp", MLPEnsemblePredictor, "MLPs on the adjacency one-hot encoding", encoding="adjacency_one_hot", n_models=3)
_variant(
    "mlp_haap", MLPEnsemblePredictor, "MLPs on adjacency one-hot with HAAP augmentation",
    encoding="adjacency_one_hot", n_models=3, haap=True, haap_samples=HAAP_SAMPLES,
)
_variant(
    "rf_haap", RandomForestPredictor, "A random forest on adjacency one-hot with HAAP augmentation",
    encoding="adjacency_one_hot", haap=True, haap_samples=HAAP_SAMPLES,
)
_variant("gbdt_zc", GradientBoostingPredictor, "Boosted trees on one-hot plus zero-cost scores", zero_cost=HYBRID_PROXIES)
_variant("rf_zc", RandomForestPredictor, "A random forest on one-hot plus zero-cost scores", zero_cost=HYBRID_PROXIES)
for _proxy in PROXIES:
    _variant(f"zc_{_proxy}", ZeroCostPredictor, f"The {_proxy} zero-cost proxy", proxy=_proxy)


def make_predictor(name: str, **params: Any) -> ArchPredictor:
    """Instantiate the registered predictor ``name`` with hyper-parameter overrides.

    Raises:
        UnknownChoiceError: ``name`` is not registered.
        ParamError: A hyper-parameter name is not one of the predictor's.
    """
    from predictors._base import ParamError

    est: ArchPredictor = PREDICTORS.get(name)()
    valid = est.get_params(deep=False)
    unknown = [k for k in params if k not in valid]
    if unknown:
        raise ParamError(
            f"unknown hyper-parameter(s) {', '.join(map(repr, unknown))} for predictor {name!r}; "
            f"valid: {', '.join(sorted(valid))}"
        )
    est.set_params(**params)
    return est
