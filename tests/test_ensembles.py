"""Units of the ensembles package: members on disk, combiners, metrics, diversity, pruners.

Every expected value is worked out by hand in the comments next to it.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import yaml

import ensembles as E
from evonas.config import ComponentConfig
from evonas.errors import ArchError, ConfigError, DataError, EvonasError, UnknownChoiceError

NB201 = ComponentConfig("nb201", {})


def _confident(pred: list[int] | np.ndarray, num_classes: int, conf: float = 0.8) -> np.ndarray:
    """Distributions putting ``conf`` on the predicted class and the rest evenly elsewhere."""
    pred = np.asarray(pred)
    p = np.full((pred.shape[0], num_classes), (1.0 - conf) / (num_classes - 1))
    p[np.arange(pred.shape[0]), pred] = conf
    return p


def _binary(p0: list[float]) -> np.ndarray:
    """Two-class distributions from the probabilities of class 0."""
    p0 = np.asarray(p0, dtype=np.float64)
    return np.stack([p0, 1.0 - p0], axis=1)


# ================================================================== diversity measures
# Oracle example, N = 10, C = 3:
#   samples 0-3 both correct (N11 = 4); 4, 5 only a correct (N10 = 2);
#   6 only b correct (N01 = 1); 7-9 both wrong (N00 = 3), with a != b on 8 and 9.
Y10 = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])
A10 = np.array([0, 1, 2, 0, 1, 2, 1, 2, 0, 1])
B10 = np.array([0, 1, 2, 0, 2, 0, 0, 2, 1, 2])


def test_oracle_counts_of_hand_made_pair() -> None:
    assert E.oracle_counts(A10, B10, Y10) == (4, 2, 1, 3)


def test_disagreement_with_and_without_labels() -> None:
    # Predictions differ on samples 4, 5, 6, 8, 9.
    assert E.disagreement(A10, B10) == pytest.approx(0.5, abs=1e-15)
    # Oracle disagreement (N01 + N10) / N = 3/10: samples 8, 9 are both wrong, not a disagreement.
    assert E.disagreement(A10, B10, Y10) == pytest.approx(0.3, abs=1e-15)
    assert E.disagreement(A10, A10) == 0.0


def test_q_statistic_exact() -> None:
    # (N11 N00 - N01 N10) / (N11 N00 + N01 N10) = (12 - 2) / (12 + 2) = 5/7
    assert E.q_statistic(A10, B10, Y10) == pytest.approx(5 / 7, abs=1e-15)
    # b is right exactly where a is wrong: N11 = N00 = 0 -> Q = -1.
    y = np.array([0, 0, 1, 1])
    assert E.q_statistic([0, 1, 1, 0], [1, 0, 0, 1], y) == -1.0
    # Identical members with some errors: N01 = N10 = 0 -> Q = 1.
    assert E.q_statistic(A10, A10, Y10) == 1.0
    # Two always-correct members: 0/0, undefined.
    assert math.isnan(E.q_statistic(Y10, Y10, Y10))


def test_error_correlation_exact_and_equal_to_pearson() -> None:
    # 10 / sqrt((4+2)(1+3)(4+1)(2+3)) = 10 / sqrt(600) = 1/sqrt(6)
    rho = E.error_correlation(A10, B10, Y10)
    assert rho == pytest.approx(1 / math.sqrt(6), abs=1e-15)
    errors_a, errors_b = (A10 != Y10).astype(float), (B10 != Y10).astype(float)
    assert rho == pytest.approx(np.corrcoef(errors_a, errors_b)[0, 1], abs=1e-12)
    assert math.isnan(E.error_correlation(Y10, A10, Y10))  # a member that is never wrong


def test_kl_divergence_exact_and_asymmetric() -> None:
    pa = np.array([[0.5, 0.5], [1.0, 0.0]])
    pb = np.array([[0.25, 0.75], [0.5, 0.5]])
    # row 0: .5 ln(.5/.25) + .5 ln(.5/.75) = .5 ln(4/3); row 1: 1 ln(1/.5) = ln 2
    expected = (0.5 * math.log(4 / 3) + math.log(2)) / 2
    assert E.kl_divergence(pa, pb) == pytest.approx(expected, abs=1e-15)
    assert E.kl_divergence(pb, pa) == math.inf  # pb puts mass where pa has none
    assert E.kl_divergence(pa, pa) == 0.0


def test_mutual_information_nmi_and_vi_exact() -> None:
    # Joint counts of (a, b): (0,0) 2, (0,1) 1, (1,0) 1, (1,1) 1, (1,2) 2, (2,0) 1, (2,2) 2.
    h_joint = -3 * 0.2 * math.log(0.2) - 4 * 0.1 * math.log(0.1)
    h_a = -(2 * 0.3 * math.log(0.3) + 0.4 * math.log(0.4))  # a: 3, 4, 3
    h_b = -(2 * 0.4 * math.log(0.4) + 0.2 * math.log(0.2))  # b: 4, 2, 4
    mi = h_a + h_b - h_joint
    assert E.mutual_information(A10, B10) == pytest.approx(mi, abs=1e-12)
    assert E.normalized_mutual_information(A10, B10) == pytest.approx(mi / math.sqrt(h_a * h_b), abs=1e-12)
    assert E.variation_of_information(A10, B10, normalized=False) == pytest.approx(h_joint - mi, abs=1e-12)
    assert E.variation_of_information(A10, B10) == pytest.approx(1 - mi / h_joint, abs=1e-12)


def test_nmi_and_vi_limits() -> None:
    a, independent, relabelled = [0, 0, 1, 1], [0, 1, 0, 1], [1, 1, 0, 0]
    assert E.normalized_mutual_information(a, independent) == pytest.approx(0.0, abs=1e-12)
    assert E.variation_of_information(a, independent) == pytest.approx(1.0, abs=1e-12)
    assert E.variation_of_information(a, independent, normalized=False) == pytest.approx(math.log(4), abs=1e-12)
    # Information measures ignore label names: a consistent relabelling is "identical".
    assert E.normalized_mutual_information(a, relabelled) == pytest.approx(1.0, abs=1e-12)
    assert E.variation_of_information(a, relabelled) == pytest.approx(0.0, abs=1e-12)
    assert E.variation_of_information([2, 2, 2], [1, 1, 1]) == 0.0  # both constant


def test_pairwise_diversity_matrices_match_the_pair_functions() -> None:
    probs = np.stack([_confident(A10, 3), _confident(B10, 3), _confident(Y10, 3, conf=0.6)])
    preds = [A10, B10, Y10]
    pair_fns = {
        "disagreement": lambda i, j: E.disagreement(preds[i], preds[j]),
        "oracle_disagreement": lambda i, j: E.disagreement(preds[i], preds[j], Y10),
        "q_statistic": lambda i, j: E.q_statistic(preds[i], preds[j], Y10),
        "error_correlation": lambda i, j: E.error_correlation(preds[i], preds[j], Y10),
        "kl_divergence": lambda i, j: E.kl_divergence(probs[i], probs[j]),
        "nmi": lambda i, j: E.normalized_mutual_information(preds[i], preds[j]),
        "vi": lambda i, j: E.variation_of_information(preds[i], preds[j]),
    }
    assert sorted(pair_fns) == E.DIVERSITY.names()
    for name, fn in pair_fns.items():
        mat = E.pairwise_diversity(probs, Y10, name)
        assert mat.shape == (3, 3)
        expected = np.array([[fn(i, j) for j in range(3)] for i in range(3)])
        np.testing.assert_allclose(mat, expected, atol=1e-12, equal_nan=True, err_msg=name)
    kl = E.pairwise_diversity(probs, Y10, "kl_divergence")
    assert kl[0, 2] != pytest.approx(kl[2, 0])  # KL is asymmetric, computed both ways
    # Mean over the 6 ordered off-diagonal pairs of the disagreement matrix:
    # d(A,B) = .5, d(A,Y) = .4 (samples 6-9), d(B,Y) = .5 (samples 4, 5, 7, 8, 9) -> 1.4/3
    assert E.ensemble_diversity(probs, Y10, "disagreement") == pytest.approx(1.4 / 3, abs=1e-12)
    assert math.isnan(E.mean_pairwise(np.zeros((1, 1))))
    with pytest.raises(UnknownChoiceError, match="valid choices: disagreement"):
        E.pairwise_diversity(probs, Y10, "entropy")


def test_diversity_bad_inputs() -> None:
    with pytest.raises(DataError, match=r"same length; got shapes \(4,\) and \(3,\)"):
        E.disagreement([0, 1, 0, 1], [0, 1, 0])
    with pytest.raises(DataError, match=r"labels has 3 entries; expected 4"):
        E.q_statistic([0, 1, 0, 1], [0, 1, 0, 1], [0, 1, 0])
    with pytest.raises(DataError, match="must hold integers"):
        E.disagreement([0.0, 1.5], [0, 1])
    with pytest.raises(DataError, match=r"same shape; got \(2, 2\) and \(2, 3\)"):
        E.kl_divergence(np.full((2, 2), 0.5), np.full((2, 3), 1 / 3))


# ========================================================================== combiners
def test_softmax_and_combine_probs() -> None:
    np.testing.assert_allclose(E.softmax_logits([[0.0, math.log(3.0)]]), [[0.25, 0.75]], atol=1e-15)
    p1 = np.array([[1.0, 0.0], [0.5, 0.5]])
    p2 = np.array([[0.0, 1.0], [0.5, 0.5]])
    np.testing.assert_allclose(E.combine_probs([p1, p2]), [[0.5, 0.5], [0.5, 0.5]], atol=1e-15)
    # weights 3:1 are normalised to .75/.25
    np.testing.assert_allclose(E.combine_probs([p1, p2], weights=[3, 1]), [[0.75, 0.25], [0.5, 0.5]], atol=1e-15)
    with pytest.raises(DataError, match=r"weights must have shape \(2,\)"):
        E.combine_probs([p1, p2], weights=[1.0])
    with pytest.raises(DataError, match="non-negative"):
        E.combine_probs([p1, p2], weights=[1.0, -0.5])
    with pytest.raises(DataError, match="NaN"):
        E.softmax_logits([[0.0, float("nan")]])


def test_fit_weights_reaches_the_analytic_optimum() -> None:
    # All labels 0. Member A gives the label probability (1, 1, 0), B gives (0, 0, 1):
    # NLL(w) = -[2 ln w + ln(1 - w)] / 3 is minimised at w_A = 2/3.
    y = np.array([0, 0, 0])
    a = _binary([1.0, 1.0, 0.0])
    b = _binary([0.0, 0.0, 1.0])
    np.testing.assert_allclose(E.fit_weights([a, b], y), [2 / 3, 1 / 3], atol=1e-6)
    # A member that is always wrong gets weight 0: its KKT gradient is 0 < 1.
    never = _binary([0.0, 0.0, 0.0])
    w = E.fit_weights([a, b, never], y)
    np.testing.assert_allclose(w, [2 / 3, 1 / 3, 0.0], atol=1e-6)
    assert (w >= 0).all() and w.sum() == pytest.approx(1.0, abs=1e-12)
    # Deterministic, and one member gets everything.
    np.testing.assert_array_equal(E.fit_weights([a, b, never], y), w)
    np.testing.assert_array_equal(E.fit_weights([a], y), [1.0])


def test_fit_weights_lowers_nll_against_the_uniform_average() -> None:
    rng = np.random.default_rng(3)
    probs = rng.dirichlet(np.ones(4), size=(5, 60))
    y = rng.integers(0, 4, size=60)
    w = E.fit_weights(probs, y)
    assert E.nll(E.combine_probs(probs, w), y) <= E.nll(E.combine_probs(probs), y) + 1e-12


# ============================================================================ metrics
def test_accuracy_nll_ece_exact() -> None:
    probs = np.array([[0.9, 0.1], [0.65, 0.35], [0.3, 0.7], [0.15, 0.85]])
    y = np.array([0, 1, 1, 1])  # predictions 0, 0, 1, 1 -> correct, wrong, correct, correct
    assert E.accuracy(probs, y) == 0.75
    expected_nll = -(math.log(0.9) + math.log(0.35) + math.log(0.7) + math.log(0.85)) / 4
    assert E.nll(probs, y) == pytest.approx(expected_nll, abs=1e-12)
    # 15 bins: every confidence (.9, .65, .7, .85) in its own bin:
    # (|1-.9| + |0-.65| + |1-.7| + |1-.85|) / 4 = 1.2 / 4
    assert E.DEFAULT_ECE_BINS == 15
    assert E.expected_calibration_error(probs, y) == pytest.approx(0.3, abs=1e-12)
    # 5 bins: (.8,1] holds .9, .85 (2 correct): |2 - 1.75|; (.6,.8] holds .65, .7 (1 correct): |1 - 1.35|
    assert E.expected_calibration_error(probs, y, n_bins=5) == pytest.approx((0.25 + 0.35) / 4, abs=1e-12)
    # 1 bin: |accuracy - mean confidence| = |.75 - .775|
    assert E.expected_calibration_error(probs, y, n_bins=1) == pytest.approx(0.025, abs=1e-12)
    assert E.classification_metrics(probs, y) == pytest.approx(
        {"accuracy": 0.75, "nll": expected_nll, "ece": 0.3}, abs=1e-12
    )


def test_ece_bins_are_right_closed() -> None:
    # Confidence .5 falls in (0, .5], not (.5, 1]: bins {.5 wrong} and {.75 right}
    # give (|0 - .5| + |1 - .75|) / 2 = .375 (it would be .125 with both in one bin).
    probs = np.array([[0.5, 0.5], [0.75, 0.25]])
    assert E.expected_calibration_error(probs, [1, 0], n_bins=2) == pytest.approx(0.375, abs=1e-12)


def test_metrics_bad_inputs() -> None:
    probs = np.array([[0.9, 0.1], [0.2, 0.8]])
    with pytest.raises(DataError, match=r"labels\[1\] = 2 is out of range; valid class indices are 0..1"):
        E.accuracy(probs, [0, 2])
    with pytest.raises(DataError, match="not distributions: a row sums to 3"):
        E.nll(np.array([[1.0, 2.0], [0.5, 0.5]]), [0, 1])
    with pytest.raises(DataError, match="NaN"):
        E.accuracy(np.array([[np.nan, 0.5], [0.5, 0.5]]), [0, 1])
    with pytest.raises(ConfigError, match="invalid value 0 for 'n_bins' of expected_calibration_error; "
                                          r"expected an integer in \[1, \d+\]"):
        E.expected_calibration_error(probs, [0, 1], n_bins=0)


# ============================================================================ members
def _member(
    name: str = "m0", n_val: int = 6, n_test: int | None = 4, classes: int = 3, seed: int = 0, **kw
) -> E.Member:
    rng = np.random.default_rng(seed)
    return E.Member(
        name=name,
        val_logits=rng.normal(size=(n_val, classes)).astype(np.float32),
        test_logits=None if n_test is None else rng.normal(size=(n_test, classes)),
        **kw,
    )


def test_member_round_trips_through_disk(tmp_path) -> None:
    m = _member(
        arch=(0, 1, 2, 3, 4, 0),
        num_params=np.int64(123456),
        network=ComponentConfig("nb201", {"channels": 4, "cells_per_stage": 1}),
        in_channels=np.int64(1),
        checkpoint=tmp_path / "ckpt" / "model.pt",
        metadata={"seed": np.int64(3), "lr": 0.1, "tags": ("a", "b"), "train": {"epochs": 12}},
    )
    m.save(tmp_path / "m0")
    record = yaml.safe_load((tmp_path / "m0" / "member.yaml").read_text())
    assert record["arch_str"] == "|none~0|+|skip_connect~0|nor_conv_1x1~1|+|nor_conv_3x3~0|avg_pool_3x3~1|none~2|"
    back = E.Member.load(tmp_path / "m0")
    assert back.val_logits.dtype == np.float32 and back.test_logits.dtype == np.float64
    np.testing.assert_array_equal(back.val_logits, m.val_logits)
    np.testing.assert_array_equal(back.test_logits, m.test_logits)
    assert (back.name, back.arch, back.space, back.num_params) == ("m0", (0, 1, 2, 3, 4, 0), NB201, 123456)
    assert back.network == ComponentConfig("nb201", {"channels": 4, "cells_per_stage": 1}) and back.in_channels == 1
    assert record["space"] == {"name": "nb201", "params": {}}
    assert back.checkpoint == str(tmp_path / "ckpt" / "model.pt")  # recorded, need not exist
    assert back.metadata == {"seed": 3, "lr": 0.1, "tags": ["a", "b"], "train": {"epochs": 12}}
    np.testing.assert_allclose(back.val_probs().sum(axis=1), 1.0, atol=1e-12)
    with pytest.raises(DataError, match="already holds a member; pass overwrite=True"):
        m.save(tmp_path / "m0")
    m.save(tmp_path / "m0", overwrite=True)


def test_member_without_test_logits_round_trips(tmp_path) -> None:
    m = _member(n_test=None)
    back = E.Member.load(m.save(tmp_path / "x"))
    assert back.test_logits is None and back.arch is None and back.num_params is None
    with pytest.raises(DataError, match="member 'm0' has no test logits"):
        back.test_probs()


def test_member_logits_are_read_only_copies() -> None:
    logits = np.zeros((3, 2))
    m = E.Member("a", logits)
    logits[0, 0] = 5.0
    assert m.val_logits[0, 0] == 0.0
    with pytest.raises(ValueError):
        m.val_logits[0, 0] = 1.0


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (
            {"val_logits": np.array([[0.0, np.nan], [1.0, 2.0]])},
            DataError,
            r"member 'bad': val_logits of shape \(2, 2\) contain 1 NaN",
        ),
        ({"val_logits": np.array([[0.0, np.inf]])}, DataError, "contain 1 NaN or infinite"),
        ({"val_logits": np.zeros((4, 3), dtype=np.int64)}, DataError, "must be a float array; got dtype int64"),
        ({"val_logits": np.zeros(4)}, DataError, r"val_logits must have shape .*; got shape \(4,\)"),
        ({"val_logits": np.zeros((4, 1))}, DataError, r"num_classes >= 2\); got shape \(4, 1\)"),
        (
            {"test_logits": np.zeros((2, 5))},
            DataError,
            r"member 'bad': test_logits of shape \(2, 5\) and val_logits of shape \(4, 3\)",
        ),
        ({"arch": (0, 1, 2)}, ArchError, "nb201 architecture must be a tuple of 6"),
        ({"space": ComponentConfig("darts")}, UnknownChoiceError, "unknown search space 'darts'; valid choices: "),
        ({"space": "nb201"}, DataError, "member 'bad': space must be a ComponentConfig"),
        ({"network": {"name": "nb201"}}, DataError, "member 'bad': network must be a ComponentConfig"),
        ({"in_channels": 1.5}, DataError, "invalid value 1.5 for 'in_channels' of member 'bad'; expected an integer >= 0 or null"),
        ({"num_params": -1}, DataError, "invalid value -1 for 'num_params' of member 'bad'; expected an integer >= 0 or null"),
        ({"metadata": {"f": object()}}, DataError, r"metadata.f must hold only"),
        ({"name": "a/b"}, DataError, "member name 'a/b' is invalid"),
        ({"name": ""}, DataError, "member name '' is invalid"),
    ],
)
def test_member_rejects_bad_fields(kwargs, error, message) -> None:
    fields = {"name": "bad", "val_logits": np.zeros((4, 3))} | kwargs
    with pytest.raises(error, match=message):
        E.Member(**fields)


def test_pool_round_trips_and_subsets(tmp_path) -> None:
    members = [_member(f"m{i}", seed=i, arch=(i, 0, 0, 0, 0, 1)) for i in range(3)]
    pool = E.CandidatePool(members, val_labels=[0, 1, 2, 0, 1, 2], test_labels=[2, 1, 0, 0])
    pool.save(tmp_path / "pool")
    back = E.CandidatePool.load(tmp_path / "pool")
    assert back.names == ["m0", "m1", "m2"] and back.num_classes == 3 and back.has_test
    np.testing.assert_array_equal(back.val_labels, [0, 1, 2, 0, 1, 2])
    np.testing.assert_array_equal(back.test_labels, [2, 1, 0, 0])
    np.testing.assert_allclose(back.val_probs(), pool.val_probs(), atol=0)
    np.testing.assert_allclose(back.test_probs(), pool.test_probs(), atol=0)
    assert back.val_probs().shape == (3, 6, 3)
    sub = back.subset([2, 0])
    assert sub.names == ["m2", "m0"] and [m.arch for m in sub] == [(2, 0, 0, 0, 0, 1), (0, 0, 0, 0, 0, 1)]
    with pytest.raises(DataError, match=r"member indices \[5\] are out of range 0..2"):
        back.subset([0, 5])
    with pytest.raises(DataError, match="already holds a candidate pool"):
        pool.save(tmp_path / "pool")


def test_pool_rejects_inconsistent_members() -> None:
    a, b = _member("a"), _member("b", n_val=5, seed=1)
    shapes = r"member 'b' has val_logits of shape \(5, 3\); expected \(6, 3\) like member 'a'"
    with pytest.raises(DataError, match=shapes):
        E.CandidatePool([a, b], val_labels=np.zeros(6, dtype=int))
    with pytest.raises(DataError, match="the candidate list is empty"):
        E.CandidatePool([], val_labels=[0])
    with pytest.raises(DataError, match="member names must be unique; repeated: a"):
        E.CandidatePool([a, _member("a", seed=2)], val_labels=np.zeros(6, dtype=int))
    with pytest.raises(DataError, match="member 'a' has test logits but member 'c' has none"):
        E.CandidatePool([a, _member("c", n_test=None)], val_labels=np.zeros(6, dtype=int))
    with pytest.raises(DataError, match=r"member 'd' has test_logits of shape \(3, 3\); expected \(4, 3\)"):
        E.CandidatePool([a, _member("d", n_test=3)], val_labels=np.zeros(6, dtype=int))
    with pytest.raises(DataError, match=r"val_labels\[2\] = 3 is out of range; valid class indices are 0..2"):
        E.CandidatePool([a], val_labels=[0, 1, 3, 0, 0, 0])
    with pytest.raises(DataError, match="val_labels has 5 entries; expected 6"):
        E.CandidatePool([a], val_labels=[0, 1, 2, 0, 0])
    with pytest.raises(DataError, match="test_labels were given but the members have no test logits"):
        E.CandidatePool([_member("e", n_test=None)], val_labels=np.zeros(6, dtype=int), test_labels=[0])
    with pytest.raises(DataError, match="candidate 1 must be a Member; got str"):
        E.CandidatePool([a, "b"], val_labels=np.zeros(6, dtype=int))


def test_loading_corrupt_member_directories_fails_clearly(tmp_path) -> None:
    with pytest.raises(DataError, match="member.yaml does not exist"):
        E.Member.load(tmp_path / "nothing")
    path = _member().save(tmp_path / "m")
    record = yaml.safe_load((path / "member.yaml").read_text())
    record["val_shape"] = [7, 3]
    (path / "member.yaml").write_text(yaml.safe_dump(record))
    with pytest.raises(DataError, match=r"val logits have shape \[6, 3\], but member.yaml records \[7, 3\]"):
        E.Member.load(path)
    (path / "member.yaml").write_text("format: something-else\n")
    with pytest.raises(DataError, match="is not a 'evonas-ensemble-member/2' file"):
        E.Member.load(path)
    (path / "member.yaml").write_text(yaml.safe_dump(record | {"val_shape": [6, 3]}))
    (path / "logits.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match=r"logits.npz is not a readable \.npz file"):
        E.Member.load(path)


# ===================================================================== pruners: answers
def test_pie_prunes_duplicates_first() -> None:
    y = np.array([0, 1, 2] * 4)
    a = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 0, 0])  # 10/12 right
    b = np.array([0, 1, 2, 0, 1, 2, 1, 2, 0, 0, 1, 2])  # 9/12, errors elsewhere
    c = np.array([1, 2, 2, 0, 1, 2, 0, 1, 2, 1, 1, 2])  # 9/12, errors elsewhere again
    probs = np.stack([_confident(p, 3) for p in (a, b, c, a)])  # member 3 duplicates member 0
    rng = np.random.default_rng(0)
    for lam in (0.25, 0.5, 0.75, 1.0):
        sel = E.prune("pie", probs, y, rng, size=4, lam=lam)
        assert sel.indices[0] == 0  # the most informative member starts the greedy search
        assert sel.indices[-1] == 3, lam  # VI(0, 3) = 0: the duplicate comes last
    assert set(E.prune("pie", probs, y, rng, size=3).indices) == {0, 1, 2}
    # Duplicates of two different members: both copies are the two left out.
    probs5 = np.stack([_confident(p, 3) for p in (a, b, c, b, a)])
    assert set(E.prune("pie", probs5, y, rng, size=3).indices) == {0, 1, 2}
    # With lam = 0 PIE ignores diversity and ranks by relevance alone: the copy of the best
    # member comes second - the direction of the diversity term is what prunes duplicates.
    assert E.prune("pie", probs, y, rng, size=4, lam=0.0).indices[:2] == (0, 3)


def test_tdac_matrix_definition() -> None:
    preds = np.stack([A10, B10, Y10])
    t = E.tdac_matrix(preds, Y10, lam=0.3)
    mi = [E.normalized_mutual_information(p, Y10) for p in preds]
    vi = E.variation_of_information(A10, B10)
    assert t[0, 1] == pytest.approx(0.3 * vi + 0.7 * (mi[0] + mi[1]) / 2, abs=1e-12)
    assert t[2, 2] == pytest.approx(0.7 * 1.0, abs=1e-12)  # VI(i, i) = 0, MI(y, y) = 1
    np.testing.assert_allclose(t, t.T, atol=0)
    with pytest.raises(ConfigError, match=r"invalid value 1.5 for 'lam' of tdac_matrix; expected a finite number in \[0, 1\]"):
        E.tdac_matrix(preds, Y10, lam=1.5)


def test_pap_drops_members_whose_removal_does_not_hurt() -> None:
    y = np.zeros(3, dtype=int)
    # A, B, C are each wrong on a different sample; any two of them average to a wrong
    # answer there (.8 + .1 < 1), all three are always right ((.8 + .8 + .1)/3 > .5).
    a, b, c = _binary([0.8, 0.8, 0.1]), _binary([0.8, 0.1, 0.8]), _binary([0.1, 0.8, 0.8])
    weak = _binary([0.45, 0.45, 0.45])  # wrong but unsure: removing it changes nothing
    harmful = _binary([0.0, 0.0, 0.0])  # wrong and sure: removing it fixes the ensemble
    probs = np.stack([a, b, weak, c, harmful])
    rng = np.random.default_rng(0)
    sel = E.prune("pap", probs, y, rng)
    assert set(sel.indices) == {0, 1, 3}
    assert sel.weights == pytest.approx((1 / 3, 1 / 3, 1 / 3))
    # Removing any of A, B, C from the three would drop accuracy to 2/3: they are kept.
    full = E.combine_probs(probs[[0, 1, 3]])
    assert E.accuracy(full, y) == 1.0
    # A bound forces further (least harmful) removals.
    bounded = E.prune("pap", probs, y, rng, size=2)
    assert len(bounded) == 2 and set(bounded.indices) <= {0, 1, 3}
    # Nothing to drop when every member is needed.
    assert set(E.prune("pap", np.stack([a, b, c]), y, rng).indices) == {0, 1, 2}


def test_pap_removes_one_of_two_duplicates() -> None:
    y = np.array([0, 1, 0, 1])
    good = _binary([0.9, 0.2, 0.7, 0.4])  # always right
    probs = np.stack([good, good])
    # Removing either copy leaves the same ensemble; the higher index goes.
    assert E.prune("pap", probs, y, np.random.default_rng(0)).indices == (0,)


def test_top_k_picks_the_k_most_accurate() -> None:
    y = np.array([0, 1, 2, 0, 1])
    preds = [
        [0, 1, 2, 2, 2],  # 3/5
        [0, 1, 2, 0, 1],  # 5/5
        [1, 1, 2, 2, 2],  # 2/5
        [0, 1, 2, 0, 2],  # 4/5
    ]
    probs = np.stack([_confident(p, 3) for p in preds])
    assert E.prune("top_k", probs, y, np.random.default_rng(0), size=2).indices == (1, 3)
    assert E.prune("top_k", probs, y, np.random.default_rng(0), size=4).indices == (1, 3, 0, 2)
    # Equal accuracy: the lower NLL (more confident when right) ranks first.
    tied = np.stack([_confident(preds[1], 3, conf=0.6), _confident(preds[1], 3, conf=0.9)])
    assert E.prune("top_k", tied, y, np.random.default_rng(0), size=1).indices == (1,)


def test_caruana_repeats_a_member_when_that_helps() -> None:
    # Label 0 everywhere; A gives it (.9, .9, .1), B (.1, .1, .9). Bags by validation NLL:
    # [A] .838 -> [A,B] .693 -> [A,B,A] .6389 -> [A,B,A,A] .6391 (worse): best is A twice, B once.
    y = np.zeros(3, dtype=int)
    a, b = _binary([0.9, 0.9, 0.1]), _binary([0.1, 0.1, 0.9])
    sel = E.prune("caruana", np.stack([a, b]), y, np.random.default_rng(0))
    assert sel.indices == (0, 1)
    assert sel.weights == pytest.approx((2 / 3, 1 / 3), abs=1e-15)
    with_repeats = E.nll(E.combine_probs([a, b], sel.weights), y)
    assert with_repeats == pytest.approx(-(2 * math.log(19 / 30) + math.log(11 / 30)) / 3, abs=1e-12)
    assert with_repeats < E.nll(E.combine_probs([a, b]), y)  # better than without replacement
    # A bound of one distinct member leaves A alone.
    assert E.prune("caruana", np.stack([a, b]), y, np.random.default_rng(0), size=1).indices == (0,)


def test_caruana_sorted_initialisation_and_accuracy_metric() -> None:
    y = np.array([0, 1, 2, 0, 1])
    probs = np.stack([_confident(p, 3) for p in ([0, 1, 2, 2, 2], [0, 1, 2, 0, 1], [1, 1, 2, 2, 2])])
    # The perfect member alone cannot be improved: with n_init = 1 it is the answer.
    assert E.prune("caruana", probs, y, np.random.default_rng(0), metric="accuracy").indices == (1,)
    # n_init = 2 starts from the two best, [1, 0], and returns at least those.
    sel = E.prune("caruana", probs, y, np.random.default_rng(0), n_init=2, iterations=0)
    assert sel.indices == (1, 0) and sel.weights == pytest.approx((0.5, 0.5))
    with pytest.raises(ConfigError, match="invalid value 'auc' for 'metric' of pruner 'caruana'; "
                                          "valid values: 'nll', 'accuracy'"):
        E.prune("caruana", probs, y, np.random.default_rng(0), metric="auc")
    with pytest.raises(ConfigError, match=r"invalid value 3 for 'n_init' of pruner 'caruana'; "
                                          r"expected an integer in \[1, 2\]"):
        E.prune("caruana", probs, y, np.random.default_rng(0), size=2, n_init=3)


def test_prs_draws_from_the_generator() -> None:
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(3), size=(10, 8))
    y = rng.integers(0, 3, size=8)
    draws = {E.prune("prs", probs, y, np.random.default_rng(seed), size=5).indices for seed in range(6)}
    assert len(draws) > 1  # different seeds give different subsets
    assert all(len(d) == 5 for d in draws)


# =================================================================== pruners: contract
RNG_PROBS = np.random.default_rng(11).dirichlet(np.ones(4) * 0.7, size=(7, 40))
RNG_LABELS = np.random.default_rng(12).integers(0, 4, size=40)
FIXED_SIZE = {"prs", "pie", "top_k"}


def test_registry_holds_the_saep_pruners_and_baselines() -> None:
    assert E.PRUNERS.names() == ["caruana", "pap", "pie", "prs", "top_k"]
    with pytest.raises(UnknownChoiceError, match="unknown pruner 'pep'; valid choices: caruana, pap, pie, prs, top_k"):
        E.prune("pep", RNG_PROBS, RNG_LABELS, np.random.default_rng(0))


@pytest.mark.parametrize("name", E.PRUNERS.names())
def test_pruner_contract(name: str) -> None:
    def run(seed: int = 5, **params) -> E.Selection:
        return E.prune(name, RNG_PROBS, RNG_LABELS, np.random.default_rng(seed), **params)

    m = RNG_PROBS.shape[0]
    first = run()
    assert run() == first  # deterministic given the seed
    for sel in (first, run(size=3), run(max_fraction=0.5), run(size=m), run(size=1)):
        assert isinstance(sel, E.Selection)
        assert all(isinstance(i, int) and 0 <= i < m for i in sel.indices)
        assert len(set(sel.indices)) == len(sel.indices) >= 1
        assert min(sel.weights) > 0 and sum(sel.weights) == pytest.approx(1.0, abs=1e-12)
    assert len(run(size=3)) <= 3 and len(run(max_fraction=0.5)) <= 3 and len(run(size=1)) == 1
    if name in FIXED_SIZE:
        assert len(run(size=3)) == 3 and len(first) == 3  # default max_fraction = 0.5 of 7
    # One candidate: nothing to choose.
    assert E.prune(name, RNG_PROBS[:1], RNG_LABELS, np.random.default_rng(0)).indices == (0,)
    # The pruner registered under the name is what prune() runs.
    assert E.PRUNERS.get(name)(RNG_PROBS, RNG_LABELS, np.random.default_rng(5)) == first


@pytest.mark.parametrize("name", E.PRUNERS.names())
def test_pruner_rejects_bad_input(name: str) -> None:
    rng = np.random.default_rng(0)
    owner = f"pruner '{name}'"
    with pytest.raises(ConfigError, match=rf"invalid value 0 for 'size' of {owner}; expected an integer in \[1, 7\]"):
        E.prune(name, RNG_PROBS, RNG_LABELS, rng, size=0)
    with pytest.raises(ConfigError, match=rf"invalid value 8 for 'size' of {owner}; expected an integer in \[1, 7\]"):
        E.prune(name, RNG_PROBS, RNG_LABELS, rng, size=8)
    with pytest.raises(ConfigError, match=rf"invalid value True for 'size' of {owner}"):
        E.prune(name, RNG_PROBS, RNG_LABELS, rng, size=True)
    with pytest.raises(ConfigError, match=rf"invalid value 0.0 for 'max_fraction' of {owner}; "
                                          r"expected a finite number in \(0, 1\]"):
        E.prune(name, RNG_PROBS, RNG_LABELS, rng, max_fraction=0.0)
    with pytest.raises(ConfigError, match=rf"invalid value nan for 'max_fraction' of {owner}"):
        E.prune(name, RNG_PROBS, RNG_LABELS, rng, max_fraction=float("nan"))
    with pytest.raises(ConfigError, match=f"either size or max_fraction of {owner}, not both"):
        E.prune(name, RNG_PROBS, RNG_LABELS, rng, size=2, max_fraction=0.5)
    unknown = rf"pruner '{name}' takes no parameter 'alpha'; valid parameters: size, max_fraction"
    with pytest.raises(ConfigError, match=unknown):
        E.prune(name, RNG_PROBS, RNG_LABELS, rng, alpha=0.5)
    with pytest.raises(DataError, match=r"holds no members \(shape \(0, 40, 4\)\)"):
        E.prune(name, RNG_PROBS[:0], RNG_LABELS, rng)
    nan = RNG_PROBS.copy()
    nan[2, 3, 1] = np.nan
    with pytest.raises(DataError, match=r"shape \(7, 40, 4\) contain NaN"):
        E.prune(name, nan, RNG_LABELS, rng)
    with pytest.raises(DataError, match="pass softmax outputs, not logits"):
        E.prune(name, RNG_PROBS * 3.0, RNG_LABELS, rng)
    with pytest.raises(DataError, match=r"labels\[0\] = 4 is out of range; valid class indices are 0..3"):
        E.prune(name, RNG_PROBS, np.full(40, 4), rng)
    with pytest.raises(DataError, match="labels has 39 entries; expected 40"):
        E.prune(name, RNG_PROBS, RNG_LABELS[:-1], rng)
    with pytest.raises(ConfigError, match="rng must be a numpy.random.Generator"):
        E.prune(name, RNG_PROBS, RNG_LABELS, 0)


def test_errors_are_evonas_errors() -> None:
    # The command line turns these into one line on stderr and exit code 2.
    for exc in (DataError, ConfigError, UnknownChoiceError):
        assert issubclass(exc, EvonasError)


# ========================================================================== pipeline
def test_pool_to_pruned_ensemble_pipeline(tmp_path) -> None:
    rng = np.random.default_rng(7)
    y_val, y_test = rng.integers(0, 3, size=30), rng.integers(0, 3, size=20)
    members = []
    for i in range(6):
        # Logits that favour the true class with member-specific noise.
        val = 2.0 * np.eye(3)[y_val] + rng.normal(size=(30, 3))
        test = 2.0 * np.eye(3)[y_test] + rng.normal(size=(20, 3))
        members.append(E.Member(f"cand{i}", val, test, arch=(i % 5, 1, 2, 3, 4, 0), num_params=1000 * (i + 1)))
    E.CandidatePool(members, y_val, y_test).save(tmp_path / "pool")
    pool = E.CandidatePool.load(tmp_path / "pool")
    sel = E.prune("pie", pool.val_probs(), pool.val_labels, np.random.default_rng(0))
    sub = pool.subset(sel.indices)
    direct = E.combine_probs(pool.test_probs()[list(sel.indices)], sel.weights)
    np.testing.assert_allclose(E.combine_probs(sub.test_probs()), direct, atol=1e-15)
    metrics = E.classification_metrics(direct, pool.test_labels)
    assert set(metrics) == {"accuracy", "nll", "ece"} and 0.0 <= metrics["ece"] <= 1.0
    assert sum(m.num_params for m in sub) == sum(1000 * (i + 1) for i in sel.indices)
