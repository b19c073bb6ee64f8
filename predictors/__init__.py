"""Performance predictors over architectures, zero-cost proxies, HAAP and the evaluation harness.

Every predictor is a scikit-learn estimator whose samples are architectures:
``PREDICTORS.get("gbdt_zc")(scorer=...).fit(archs, y).predict(archs)``.
:func:`run_harness` ranks them following White et al., "How Powerful are Performance
Predictors in Neural Architecture Search?", NeurIPS 2021.
"""

from __future__ import annotations

from predictors._base import ArchPredictor, ParamError, TargetError, check_archs, check_targets
from predictors._encodings import (
    ENCODINGS,
    adjacency_one_hot,
    encode,
    graph_adjacency_one_hot,
    graph_path_encoding,
    graph_to_pyg,
    one_hot,
    path_encoding,
    to_pyg,
)
from predictors._ensemble import EnsemblePredictor
from predictors._haap import HAAP_ENCODINGS, haap_augment, homogeneous_graphs, relabel, topological_relabellings
from predictors._harness import HarnessConfig, HarnessResult, ZeroCostSettings, resolve_paths, run_harness
from predictors._metrics import kendall_tau, pearson_r, precision_at_top, spearman_rho
from predictors._neural import GAEPredictor, GNNPredictor, MLPEnsemblePredictor
from predictors._registry import HAAP_SAMPLES, HYBRID_PROXIES, PREDICTORS, make_predictor
from predictors._tabular import GaussianProcessPredictor, GradientBoostingPredictor, LinearPredictor, RandomForestPredictor
from predictors._zc_predictor import ZeroCostPredictor
from predictors._zc_scorer import PROXIES, ZeroCostScorer

__all__ = [
    "ENCODINGS",
    "HAAP_ENCODINGS",
    "HAAP_SAMPLES",
    "HYBRID_PROXIES",
    "PREDICTORS",
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
    "RandomForestPredictor",
    "TargetError",
    "ZeroCostPredictor",
    "ZeroCostScorer",
    "ZeroCostSettings",
    "adjacency_one_hot",
    "check_archs",
    "check_targets",
    "encode",
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
    "resolve_paths",
    "run_harness",
    "spearman_rho",
    "to_pyg",
    "topological_relabellings",
]
