"""Performance predictors over architectures, zero-cost proxies, HAAP and the evaluation harness.

Every predictor is a scikit-learn estimator whose samples are architectures of a search
space (its ``space`` hyper-parameter: a registered name or a space value):
``PREDICTORS.get("gbdt_zc")(scorer=...).fit(archs, y).predict(archs)``.
The ``predictors`` run kind (``evonas predictors evaluate``; :func:`run_harness` from
Python) ranks them following White et al., "How Powerful are Performance Predictors in
Neural Architecture Search?", NeurIPS 2021.
"""

from __future__ import annotations

from predictors._base import ArchPredictor, ParamError, SpaceLike, TargetError, check_archs, check_targets, resolve_space
from predictors._encodings import (
    ENCODING_CAPABILITIES,
    ENCODINGS,
    adjacency_one_hot,
    encode,
    encoding_capabilities,
    graph_adjacency_one_hot,
    graph_path_encoding,
    graph_to_pyg,
    one_hot,
    path_encoding,
    to_pyg,
)
from predictors._ensemble import EnsemblePredictor
from predictors._haap import HAAP_ENCODINGS, haap_augment, homogeneous_graphs, relabel, topological_relabellings
from predictors._harness import PREDICTORS_RUN, HarnessConfig, HarnessResult, PredictorsRun, ZeroCostConfig, run_harness
from predictors._metrics import kendall_tau, pearson_r, precision_at_top, spearman_rho
from predictors._neural import GAEPredictor, GNNPredictor, MLPEnsemblePredictor
from predictors._registry import HAAP_SAMPLES, HYBRID_PROXIES, PREDICTORS, make_predictor
from predictors._tabular import GaussianProcessPredictor, GradientBoostingPredictor, LinearPredictor, RandomForestPredictor
from predictors._trials import TrialResult, TrialRunner, TrialSpec
from predictors._zc_predictor import ZeroCostPredictor
from predictors._zc_scorer import DEFAULT_NETWORK, PROXIES, ZeroCostScorer

__all__ = [
    "DEFAULT_NETWORK",
    "ENCODINGS",
    "ENCODING_CAPABILITIES",
    "HAAP_ENCODINGS",
    "HAAP_SAMPLES",
    "HYBRID_PROXIES",
    "PREDICTORS",
    "PREDICTORS_RUN",
    "PROXIES",
    "ArchPredictor",
    "EnsemblePredictor",
    "GAEPredictor",
    "GNNPredictor",
    "GaussianProcessPredictor",
    "GradientBoostingPredictor",
    "HarnessConfig",
    "HarnessResult",
    "LinearPredictor",
    "MLPEnsemblePredictor",
    "ParamError",
    "PredictorsRun",
    "RandomForestPredictor",
    "SpaceLike",
    "TargetError",
    "TrialResult",
    "TrialRunner",
    "TrialSpec",
    "ZeroCostConfig",
    "ZeroCostPredictor",
    "ZeroCostScorer",
    "adjacency_one_hot",
    "check_archs",
    "check_targets",
    "encode",
    "encoding_capabilities",
    "graph_adjacency_one_hot",
    "graph_path_encoding",
    "graph_to_pyg",
    "haap_augment",
    "homogeneous_graphs",
    "kendall_tau",
    "make_predictor",
    "one_hot",
    "path_encoding",
    "pearson_r",
    "precision_at_top",
    "relabel",
    "resolve_space",
    "run_harness",
    "spearman_rho",
    "to_pyg",
    "topological_relabellings",
]
