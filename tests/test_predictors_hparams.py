"""Every hyper-parameter is used: changing it changes the predictions.

One case per (predictor class, hyper-parameter); a coverage test checks that the cases
name every hyper-parameter of every class (``space`` aside: the contract tests fit every
predictor on other spaces, given by name and as values).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from _predictor_fixtures import one_torch_thread, tiny_network, tiny_scorer, toy_data  # noqa: F401
from evonas.config import ComponentConfig
from evonas.errors import CapabilityError, ConfigError, UnknownChoiceError
from predictors import (
    EnsemblePredictor,
    GAEPredictor,
    GaussianProcessPredictor,
    GNNPredictor,
    GradientBoostingPredictor,
    LinearPredictor,
    MLPEnsemblePredictor,
    RandomForestPredictor,
    ZeroCostPredictor,
    ZeroCostScorer,
)
from predictors._base import ParamError

TRAIN_ARCHS, TRAIN_Y = toy_data(30, seed=2)
TEST_ARCHS, _ = toy_data(12, seed=3)
DATA = object()  # placeholder: replaced by a scorer on the shared data

ADJ_HAAP = {"encoding": "adjacency_one_hot", "haap": True, "haap_samples": 2}
NET = {"hidden": 8, "layers": 1, "epochs": 8}
MLP = {**NET, "n_models": 1}
GRAPH = {"hidden": 8, "layers": 2, "epochs": 8}
GAE = {**GRAPH, "latent": 4, "pretrain_archs": 16, "pretrain_epochs": 2}
STOP = {"epochs": 40, "patience": 40, "val_fraction": 0.2, "lr": 1e-2}

# (class, base hyper-parameters, name, other value)
CASES: list[tuple[type, dict[str, Any], str, Any]] = [
    (LinearPredictor, {}, "alpha", 30.0),
    (LinearPredictor, {}, "encoding", "path"),
    (LinearPredictor, {"encoding": "adjacency_one_hot", "haap_samples": 2, "alpha": 1e-3}, "haap", True),
    (LinearPredictor, {**ADJ_HAAP, "alpha": 1e-3}, "haap_samples", 6),
    (LinearPredictor, {**ADJ_HAAP, "alpha": 1e-3}, "random_state", 1),
    (LinearPredictor, {}, "zero_cost", ("naswot",)),
    (LinearPredictor, {"zero_cost": ("naswot",)}, "scorer", DATA),
    (RandomForestPredictor, {"n_estimators": 10}, "n_estimators", 3),
    (RandomForestPredictor, {"n_estimators": 10}, "max_features", 0.3),
    (RandomForestPredictor, {"n_estimators": 10}, "min_samples_leaf", 4),
    (RandomForestPredictor, {"n_estimators": 10}, "encoding", "path"),
    (RandomForestPredictor, {"n_estimators": 10, "encoding": "adjacency_one_hot", "haap_samples": 2}, "haap", True),
    (RandomForestPredictor, {"n_estimators": 10, **ADJ_HAAP}, "haap_samples", 6),
    (RandomForestPredictor, {"n_estimators": 10}, "random_state", 1),
    (RandomForestPredictor, {"n_estimators": 10}, "zero_cost", ("synflow",)),
    (RandomForestPredictor, {"n_estimators": 10, "zero_cost": ("naswot",)}, "scorer", DATA),
    (GradientBoostingPredictor, {"n_estimators": 20}, "n_estimators", 5),
    (GradientBoostingPredictor, {"n_estimators": 20}, "learning_rate", 0.3),
    (GradientBoostingPredictor, {"n_estimators": 20}, "max_depth", 1),
    (GradientBoostingPredictor, {"n_estimators": 20}, "subsample", 0.5),
    (GradientBoostingPredictor, {"n_estimators": 20}, "encoding", "path"),
    (GradientBoostingPredictor, {"n_estimators": 20, "encoding": "adjacency_one_hot", "haap_samples": 2}, "haap", True),
    (GradientBoostingPredictor, {"n_estimators": 20, **ADJ_HAAP}, "haap_samples", 6),
    (GradientBoostingPredictor, {"n_estimators": 20}, "random_state", 1),
    (GradientBoostingPredictor, {"n_estimators": 20}, "zero_cost", ("params",)),
    (GradientBoostingPredictor, {"n_estimators": 20, "zero_cost": ("naswot",)}, "scorer", DATA),
    (GaussianProcessPredictor, {}, "kernel", "rbf"),
    (GaussianProcessPredictor, {}, "length_scale", 0.5),
    (GaussianProcessPredictor, {}, "encoding", "path"),
    (GaussianProcessPredictor, {"encoding": "adjacency_one_hot", "haap_samples": 2}, "haap", True),
    (GaussianProcessPredictor, ADJ_HAAP, "haap_samples", 6),
    (GaussianProcessPredictor, ADJ_HAAP, "random_state", 1),
    (GaussianProcessPredictor, {}, "zero_cost", ("flops",)),
    (GaussianProcessPredictor, {"zero_cost": ("naswot",)}, "scorer", DATA),
    (MLPEnsemblePredictor, MLP, "encoding", "one_hot"),
    (MLPEnsemblePredictor, MLP, "n_models", 3),
    (MLPEnsemblePredictor, MLP, "hidden", 16),
    (MLPEnsemblePredictor, MLP, "layers", 2),
    (MLPEnsemblePredictor, MLP, "dropout", 0.3),
    (MLPEnsemblePredictor, MLP, "epochs", 3),
    (MLPEnsemblePredictor, MLP, "lr", 1e-2),
    (MLPEnsemblePredictor, MLP, "weight_decay", 0.1),
    (MLPEnsemblePredictor, MLP, "batch_size", 8),
    (MLPEnsemblePredictor, MLP, "val_fraction", 0.3),
    (MLPEnsemblePredictor, {**MLP, **STOP}, "patience", 1),
    (MLPEnsemblePredictor, {**MLP, "encoding": "adjacency_one_hot", "haap_samples": 2}, "haap", True),
    (MLPEnsemblePredictor, {**MLP, **ADJ_HAAP}, "haap_samples", 6),
    (MLPEnsemblePredictor, MLP, "random_state", 1),
    (MLPEnsemblePredictor, MLP, "zero_cost", ("naswot",)),
    (MLPEnsemblePredictor, {**MLP, "zero_cost": ("naswot",)}, "scorer", DATA),
    (GNNPredictor, GRAPH, "conv", "gcn"),
    (GNNPredictor, GRAPH, "hidden", 16),
    (GNNPredictor, GRAPH, "layers", 3),
    (GNNPredictor, GRAPH, "dropout", 0.3),
    (GNNPredictor, GRAPH, "epochs", 3),
    (GNNPredictor, GRAPH, "lr", 1e-2),
    (GNNPredictor, GRAPH, "weight_decay", 0.1),
    (GNNPredictor, GRAPH, "batch_size", 8),
    (GNNPredictor, GRAPH, "val_fraction", 0.3),
    (GNNPredictor, {**GRAPH, **STOP}, "patience", 1),
    (GNNPredictor, GRAPH, "random_state", 1),
    (GAEPredictor, GAE, "conv", "gcn"),
    (GAEPredictor, GAE, "hidden", 16),
    (GAEPredictor, GAE, "latent", 8),
    (GAEPredictor, GAE, "layers", 3),
    (GAEPredictor, GAE, "pretrain", False),
    (GAEPredictor, GAE, "pretrain_archs", 8),
    (GAEPredictor, GAE, "pretrain_epochs", 4),
    (GAEPredictor, GAE, "recon_weight", 0.5),
    (GAEPredictor, GAE, "semi_supervised", False),
    (GAEPredictor, GAE, "epochs", 3),
    (GAEPredictor, GAE, "lr", 1e-2),
    (GAEPredictor, GAE, "weight_decay", 0.1),
    (GAEPredictor, GAE, "batch_size", 8),
    (GAEPredictor, GAE, "val_fraction", 0.3),
    (GAEPredictor, {**GAE, **STOP}, "patience", 1),
    (GAEPredictor, GAE, "random_state", 1),
    (EnsemblePredictor, {"estimators": [LinearPredictor()]}, "estimators", [LinearPredictor(alpha=30.0)]),
    (EnsemblePredictor, {"estimators": [RandomForestPredictor(n_estimators=5)]}, "random_state", 1),
    (ZeroCostPredictor, {"proxy": "params", "scorer": DATA}, "proxy", "synflow"),
    (ZeroCostPredictor, {"proxy": "naswot", "scorer": DATA}, "scorer", DATA),
    (ZeroCostPredictor, {"proxy": "params", "scorer": DATA}, "direction", "min"),
]
EXEMPT = {"space"}

# The second scorer of a "scorer" case differs from the default test scorer by its init seed.
_OTHER_SCORER = {"init_seed": 1}


def _resolve(params: dict[str, Any], shared_data: Callable[[], Path], other: bool = False) -> dict[str, Any]:
    out = dict(params)
    needs_data = out.get("scorer") is DATA or out.get("zero_cost") or _is_zero_cost_params(out)
    if needs_data:
        out["scorer"] = tiny_scorer(shared_data(), **(_OTHER_SCORER if other else {}))
    return out


def _is_zero_cost_params(params: dict[str, Any]) -> bool:
    return "proxy" in params


def _predict(cls: type, params: dict[str, Any]) -> np.ndarray:
    return cls(**params).fit(TRAIN_ARCHS, TRAIN_Y).predict(TEST_ARCHS)


def test_cases_cover_every_hyper_parameter() -> None:
    for cls in {c for c, *_ in CASES}:
        names = set(cls().get_params(deep=False)) - EXEMPT
        tested = {name for c, _, name, _ in CASES if c is cls}
        assert names == tested, f"{cls.__name__}: untested {sorted(names - tested)}, unknown {sorted(tested - names)}"


@pytest.mark.parametrize(
    ("cls", "base", "name", "value"), CASES, ids=[f"{c.__name__}-{n}" for c, _, n, _ in CASES]
)
def test_hyper_parameter_changes_predictions(
    cls: type, base: dict[str, Any], name: str, value: Any, request: pytest.FixtureRequest
) -> None:
    def shared_data() -> Path:
        path: Path = request.getfixturevalue("shared_data")
        return path

    base_params = _resolve(base, shared_data)
    if value is DATA:
        changed = {**base_params, name: tiny_scorer(shared_data(), **_OTHER_SCORER)}
    else:
        changed = _resolve({**base, name: value}, shared_data)
    a = _predict(cls, base_params)
    b = _predict(cls, changed)
    assert a.shape == b.shape == (len(TEST_ARCHS),)
    assert not np.allclose(a, b, rtol=0, atol=1e-9), f"{cls.__name__}.{name}={value!r} left the predictions unchanged"


@pytest.mark.parametrize(
    ("name", "value"),
    [("batch_size", 16), ("data_seed", 1), ("init_seed", 1), ("network", tiny_network(channels=8)),
     ("network", tiny_network(cells_per_stage=2))],
)
def test_scorer_settings_change_scores(name: str, value: Any, shared_data: Path) -> None:
    archs = TEST_ARCHS[:6]
    base = tiny_scorer(shared_data).scores(archs, ("naswot", "synflow"))
    other = tiny_scorer(shared_data, **{name: value}).scores(archs, ("naswot", "synflow"))
    assert not np.allclose(base, other)


def test_scorer_cache_dir_and_dataset_settings(shared_data: Path, tmp_path: Path) -> None:
    # cache_dir changes where scores are kept, never their values
    archs = TEST_ARCHS[:3]
    a = tiny_scorer(shared_data).scores(archs, ("naswot",))
    b = tiny_scorer(shared_data, cache_dir=str(tmp_path)).scores(archs, ("naswot",))
    np.testing.assert_array_equal(a, b)
    with pytest.raises(UnknownChoiceError, match="unknown dataset 'cifar11'"):
        tiny_scorer(shared_data, dataset="cifar11").scores([(1, 2, 3, 4, 0, 1)], ("naswot",))
    assert set(ZeroCostScorer().get_params()) == {
        "data_root", "dataset", "batch_size", "data_seed", "init_seed", "network", "cache_dir", "space"
    }


def test_scorer_network_is_checked(shared_data: Path) -> None:
    # The default network is NAS-Bench-201's benchmark size; a decoder of another space,
    # an unknown decoder or a bad size parameter is refused before anything is scored.
    assert ZeroCostScorer().network_config().params == {"channels": 16, "cells_per_stage": 5}
    assert tiny_scorer(shared_data, network=ComponentConfig("nb201", {"channels": 4})).network_config().params == {
        "channels": 4, "cells_per_stage": 5
    }
    arch = [(1, 2, 3, 4, 0, 1)]
    with pytest.raises(CapabilityError, match="zero-cost scores need a network decoder for space 'nb201': decoder "
                                              "'chain' serves space 'chain'"):
        tiny_scorer(shared_data, network=ComponentConfig("chain")).scores(arch, ("params",))
    with pytest.raises(UnknownChoiceError, match="unknown decoder 'resnet'"):
        tiny_scorer(shared_data, network=ComponentConfig("resnet")).scores(arch, ("params",))
    with pytest.raises(ConfigError, match="invalid value 0 for .*channels"):
        tiny_scorer(shared_data, network=ComponentConfig("nb201", {"channels": 0})).scores(arch, ("params",))
    with pytest.raises(ParamError, match="invalid value 'nb201' for 'network' of ZeroCostScorer; expected a ComponentConfig"):
        tiny_scorer(shared_data, network="nb201").scores(arch, ("params",))
