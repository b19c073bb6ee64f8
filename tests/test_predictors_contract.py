"""The contract every registered predictor keeps (registering a predictor enrols it here).

Shapes, fit returning self, clone, pickling, seed reproducibility, uncertainty where
claimed, invariance to the targets' scale (accuracies or losses), the space as a value
(a name or a SearchSpace), the capabilities each predictor states, and clear errors for
non-finite or mismatched targets and for architectures of another space.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from _predictor_fixtures import FAST, SPACE, FlatSpace, one_torch_thread, tiny_scorer, toy_data  # noqa: F401
from evonas.config import ComponentConfig
from evonas.errors import ArchError, CapabilityError, EvonasError
from evonas.spaces import CAPABILITIES, build_space
from predictors import PREDICTORS, ArchPredictor, ParamError, TargetError, ZeroCostPredictor, ZeroCostScorer, make_predictor

Make = Callable[[str], ArchPredictor]

NAMES = PREDICTORS.names()
TRAIN_ARCHS, TRAIN_Y = toy_data(24, seed=0)
TEST_ARCHS, _ = toy_data(8, seed=1)
_FITTED: dict[str, ArchPredictor] = {}


def _needs_data(est: ArchPredictor) -> bool:
    return bool(est.zero_cost_proxies())


@pytest.fixture
def make(request: pytest.FixtureRequest) -> Make:
    """``make(name)``: the registered predictor with test-size settings (data-backed if needed)."""

    def factory(name: str) -> ArchPredictor:
        est = make_predictor(name, **FAST.get(name, {}))
        if _needs_data(est):
            est.set_params(scorer=tiny_scorer(request.getfixturevalue("shared_data")))
        if name == "ensemble":
            est.set_params(estimators=[make_predictor("linear"), make_predictor("rf", n_estimators=5)])
        return est

    return factory


def _fitted(name: str, make: Make) -> ArchPredictor:
    if name not in _FITTED:
        _FITTED[name] = make(name).fit(TRAIN_ARCHS, TRAIN_Y)
    return _FITTED[name]


def test_registry_lists_every_family() -> None:
    expected = {"linear", "rf", "gbdt", "gp", "bananas", "gin", "gcn", "gae", "gae_scratch", "ensemble",
                "mlp_haap", "rf_haap", "gbdt_zc", "zc_naswot", "zc_synflow", "zc_jacob_cov", "zc_snip",
                "zc_grad_norm", "zc_params", "zc_flops"}
    assert expected <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_fit_predict_clone_pickle_and_seed(name: str, make: Make) -> None:
    est = make(name)
    assert isinstance(est, ArchPredictor)
    before = est.get_params(deep=False)
    fitted = est.fit(TRAIN_ARCHS, TRAIN_Y)
    assert fitted is est
    assert est.get_params(deep=False).keys() == before.keys()  # fit does not add hyper-parameters
    pred = est.predict(TEST_ARCHS)
    assert isinstance(pred, np.ndarray) and pred.shape == (len(TEST_ARCHS),) and pred.dtype == np.float64
    assert np.all(np.isfinite(pred)) or isinstance(est, ZeroCostPredictor)
    assert est.predict([]).shape == (0,)
    # genotypes and NAS-Bench-201 strings are the same architectures
    as_text = [SPACE.format(a) for a in TEST_ARCHS]
    np.testing.assert_array_equal(est.predict(as_text), pred)

    if est.has_uncertainty:
        mean, std = est.predict(TEST_ARCHS, return_std=True)
        np.testing.assert_allclose(mean, pred)
        assert std.shape == pred.shape and np.all(std >= 0)
    else:
        with pytest.raises(ParamError, match="no uncertainty"):
            est.predict(TEST_ARCHS, return_std=True)

    fresh = clone(est)
    assert not any(k.endswith("_") and not k.startswith("_") for k in vars(fresh))
    with pytest.raises(NotFittedError):
        fresh.predict(TEST_ARCHS)
    # same hyper-parameters and seed -> the same predictions
    np.testing.assert_array_equal(fresh.fit(TRAIN_ARCHS, TRAIN_Y).predict(TEST_ARCHS), pred)
    restored = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(restored.predict(TEST_ARCHS), pred)
    _FITTED.setdefault(name, est)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_targets_rejected(name: str, bad: float, make: Make) -> None:
    y = TRAIN_Y.copy()
    y[3] = bad
    with pytest.raises(TargetError, match=r"finite numbers; got .* at position 3"):
        make(name).fit(TRAIN_ARCHS, y)


@pytest.mark.parametrize("name", NAMES)
def test_mismatched_targets_rejected(name: str, make: Make) -> None:
    with pytest.raises(TargetError, match="24 architectures but 23 targets"):
        make(name).fit(TRAIN_ARCHS, TRAIN_Y[:-1])
    with pytest.raises(TargetError, match="1-d"):
        make(name).fit(TRAIN_ARCHS, TRAIN_Y.reshape(-1, 1))


OTHER_SPACE = [
    (0, 1, 2),  # too short (e.g. a smaller cell space)
    (0, 1, 2, 3, 4, 0, 1),  # too long
    (5, 0, 0, 0, 0, 0),  # op index outside nb201's five ops
    ("conv3x3-bn-relu", "maxpool3x3", "output"),  # a NAS-Bench-101 op list
    "|conv~0|+|conv~0|conv~1|+|conv~0|conv~1|conv~2|",  # a string with an unknown op
]


@pytest.mark.parametrize("name", NAMES)
def test_archs_of_another_space_rejected(name: str, make: Make) -> None:
    for bad in OTHER_SPACE:
        with pytest.raises(ArchError, match="position 2"):
            make(name).fit([*TRAIN_ARCHS[:2], bad, *TRAIN_ARCHS[3:]], TRAIN_Y)
    est = _fitted(name, make)
    for bad in OTHER_SPACE:
        with pytest.raises(ArchError, match="position 1 is not of the nb201 space"):
            est.predict([TEST_ARCHS[0], bad])
    with pytest.raises(ArchError, match="sequence"):
        est.predict("not a list of architectures")


@pytest.mark.parametrize("name", NAMES)
def test_unknown_space_rejected(name: str, make: Make) -> None:
    est = make(name)
    est.set_params(space="nb101")
    with pytest.raises(EvonasError, match="unknown search space 'nb101'; valid choices: .*nb201"):
        est.fit(TRAIN_ARCHS, TRAIN_Y)
    est.set_params(space=42)
    with pytest.raises(ParamError, match="invalid value 42 for 'space' of .*; expected a registered space name"):
        est.fit(TRAIN_ARCHS, TRAIN_Y)


@pytest.mark.parametrize("name", NAMES)
def test_space_value_equals_space_name(name: str, make: Make) -> None:
    # A SearchSpace value and the registered name it was built from are the same space:
    # same predictions, and the value survives get_params, clone and pickling.
    by_name = _fitted(name, make).predict(TEST_ARCHS)
    space = build_space("nb201")
    est = make(name).set_params(space=space)
    assert est.get_params(deep=False)["space"] is space
    cloned = clone(est)
    assert cloned.get_params(deep=False)["space"] == space
    np.testing.assert_array_equal(cloned.fit(TRAIN_ARCHS, TRAIN_Y).predict(TEST_ARCHS), by_name)
    restored = pickle.loads(pickle.dumps(cloned))
    assert restored.space == space
    np.testing.assert_array_equal(restored.predict(TEST_ARCHS), by_name)


@pytest.mark.parametrize("name", NAMES)
def test_capabilities_are_stated_and_checked(name: str, make: Make) -> None:
    # The toy flat space is enumerable and fixed-length but has no op-node graph and no
    # network decoder: predictors needing a graph refuse it at fit, naming the capability;
    # zero-cost ones refuse it for want of a decoder; the rest fit and predict on it.
    est = make(name)
    needed = est.required_capabilities()
    assert isinstance(needed, frozenset) and needed <= set(CAPABILITIES)
    flat = FlatSpace()
    archs = [flat.from_ordinal(o) for o in range(0, flat.size, 3)]
    y = np.array([float(sum(a)) + 0.1 * a[0] for a in archs])
    est.set_params(space=flat)
    if isinstance(est, ZeroCostPredictor) or est.zero_cost_proxies():
        est.set_params(scorer=est.get_params(deep=False)["scorer"].set_params(space=flat))
    missing = needed - flat.capabilities
    if missing:
        with pytest.raises(CapabilityError, match=rf"{type(est).__name__} needs a search space with {sorted(missing)[0]}"):
            est.fit(archs, y)
    elif est.zero_cost_proxies():
        with pytest.raises(CapabilityError, match="zero-cost scores need a network decoder for space 'toy_flat'"):
            est.fit(archs, y)
    else:
        pred = est.fit(archs, y).predict([flat.from_ordinal(1), flat.from_ordinal(2)])
        assert pred.shape == (2,) and np.all(np.isfinite(pred))
        with pytest.raises(ArchError, match="not of the toy_flat space"):
            est.predict([TEST_ARCHS[0]])


@pytest.mark.parametrize("name", NAMES)
def test_every_predictor_works_on_the_plugin_space(name: str, make: Make) -> None:
    # The test plugin's chain space (graph, fixed-length, its own decoder), given as a
    # value with parameters: nothing in a predictor is specific to NAS-Bench-201.
    chain = build_space("chain", {"length": 3})
    archs = chain.all_archs()
    train, test = archs[::2][:24], archs[1::2][:8]
    y = np.array([float(a.count(1) + 2 * a.count(2) - a.count(3)) for a in train])
    est = make(name).set_params(space=chain)
    if est.zero_cost_proxies():
        est.set_params(scorer=ZeroCostScorer(dataset="digits", batch_size=8, network=ComponentConfig("chain", {"width": 4}),
                                             space=chain))
    pred = est.fit(train, y).predict(test)
    assert pred.shape == (len(test),) and pred.dtype == np.float64
    assert np.all(np.isfinite(pred)) or isinstance(est, ZeroCostPredictor)
    assert len(set(pred.tolist())) > 1  # it tells architectures apart
    np.testing.assert_array_equal(est.predict([chain.format(a) for a in test]), pred)
    with pytest.raises(ArchError, match="position 0 is not of the chain space"):
        est.predict([TEST_ARCHS[0]])


@pytest.mark.parametrize("name", [n for n in NAMES if not n.startswith("zc_")])
def test_targets_accuracies_or_losses(name: str, make: Make) -> None:
    # Targets are standardised inside: another unit (a fraction instead of a percentage,
    # shifted) gives the same model, so the same predictions in that unit.
    base = _fitted(name, make).predict(TEST_ARCHS)
    fraction = make(name).fit(TRAIN_ARCHS, TRAIN_Y / 100.0 + 5.0).predict(TEST_ARCHS)
    np.testing.assert_allclose(fraction, base / 100.0 + 5.0, rtol=1e-9, atol=0)
    # Losses (falling as accuracy rises, on a scale of ~0.1) come back on the loss scale.
    loss = 1.0 - TRAIN_Y / 100.0
    pred = make(name).fit(TRAIN_ARCHS, loss).predict(TEST_ARCHS)
    assert loss.min() - np.ptp(loss) <= pred.min() and pred.max() <= loss.max() + np.ptp(loss)


def test_zero_cost_fit_validates_but_learns_nothing(make: Make) -> None:
    est = make("zc_params")
    assert est.fit([], []) is est
    a = est.predict(TEST_ARCHS)
    b = make("zc_params").fit(TRAIN_ARCHS, -TRAIN_Y).predict(TEST_ARCHS)
    np.testing.assert_array_equal(a, b)


def test_unknown_hyper_parameter_rejected() -> None:
    with pytest.raises(ParamError, match=r"unknown hyper-parameter\(s\) 'n_trees' for predictor 'rf'; valid: .*n_estimators"):
        make_predictor("rf", n_trees=3)
    with pytest.raises(EvonasError, match="unknown predictor 'xgboost'; valid choices: .*gbdt"):
        make_predictor("xgboost")


@pytest.mark.parametrize("name", NAMES)
def test_a_prediction_does_not_depend_on_the_rest_of_the_batch(name: str, make: Make) -> None:
    """What a search scores an architecture with may not change with what it is scored beside
    (the search loop scores a candidate's fitness plan in one call)."""
    est = _fitted(name, make)
    together = np.asarray(est.predict(TEST_ARCHS), dtype=np.float64)
    alone = np.array([est.predict([a])[0] for a in TEST_ARCHS], dtype=np.float64)
    reordered = np.asarray(est.predict(TEST_ARCHS[::-1]), dtype=np.float64)[::-1]
    assert np.array_equal(together, alone) and np.array_equal(together, reordered)
