"""The harness metrics on hand-made inputs with exact values."""

from __future__ import annotations

import math

import pytest

from evonas.errors import EvonasError
from predictors import kendall_tau, pearson_r, precision_at_top, spearman_rho

Y = [1.0, 2.0, 3.0, 4.0]
P = [1.0, 3.0, 2.0, 4.0]  # one swapped pair


def test_kendall_tau_exact() -> None:
    # 6 pairs: 5 concordant, 1 discordant -> (5 - 1) / 6
    assert kendall_tau(Y, P) == pytest.approx(2 / 3, abs=1e-12)
    assert kendall_tau(Y, Y[::-1]) == pytest.approx(-1.0)
    # tau-b with a tie in the predictions: 5 concordant, 0 discordant, 1 tied pair ->
    # (5 - 0) / sqrt(6 * (6 - 1))
    assert kendall_tau(Y, [1.0, 2.0, 2.0, 4.0]) == pytest.approx(5 / math.sqrt(30), abs=1e-12)


def test_spearman_rho_exact() -> None:
    # rank differences (0, 1, -1, 0): 1 - 6 * 2 / (4 * 15)
    assert spearman_rho(Y, P) == pytest.approx(0.8, abs=1e-12)


def test_pearson_r_exact() -> None:
    # covariance sum 4, variance sums 5 and 5 -> 4 / 5
    assert pearson_r(Y, P) == pytest.approx(0.8, abs=1e-12)
    assert math.isnan(pearson_r(Y, [2.0, 2.0, 2.0, 2.0]))


def test_precision_at_top_exact() -> None:
    y = [10, 9, 8, 7, 6, 5, 4, 3, 2, 1]
    p = [10, 1, 9, 8, 7, 6, 5, 4, 3, 2]  # the 2nd best is predicted worst
    # k = ceil(0.2 * 10) = 2: true top {0, 1}, predicted top {0, 2}
    assert precision_at_top(y, p, 0.2) == 0.5
    # k = 3: true {0, 1, 2}, predicted {0, 2, 3}
    assert precision_at_top(y, p, 0.3) == pytest.approx(2 / 3)
    # k = ceil(0.25 * 10) = 3 as well
    assert precision_at_top(y, p, 0.25) == pytest.approx(2 / 3)
    # losses: the top are the smallest values; reversing both keeps the answer
    assert precision_at_top([-v for v in y], [-v for v in p], 0.2, direction="min") == 0.5
    assert precision_at_top(y, p, 1.0) == 1.0


def test_infinite_predictions_keep_their_order() -> None:
    # a proxy that cannot score an architecture gives -inf: ranked below every other
    assert kendall_tau(Y, [-math.inf, 1.0, 2.0, 3.0]) == pytest.approx(1.0)
    assert pearson_r(Y, [-math.inf, 1.0, 2.0, 3.0]) > 0.8
    assert precision_at_top(Y, [1.0, 2.0, 3.0, math.inf], 0.25) == 1.0


def test_bad_inputs_rejected() -> None:
    with pytest.raises(EvonasError, match="same length"):
        kendall_tau([1, 2, 3], [1, 2])
    with pytest.raises(EvonasError, match="at least 2"):
        spearman_rho([1], [1])
    with pytest.raises(EvonasError, match="NaN"):
        pearson_r([1, 2, math.nan], [1, 2, 3])
    with pytest.raises(EvonasError, match=r"invalid value 0 for 'fraction'; expected a finite number in \(0, 1\]"):
        precision_at_top(Y, P, 0)
    with pytest.raises(EvonasError, match=r"invalid value 'up' for 'direction'; valid values: 'max', 'min'"):
        precision_at_top(Y, P, 0.5, direction="up")
