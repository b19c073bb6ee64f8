"""Zero-cost proxies: exact answers on tiny networks, the scorer's caches, real-data checks."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from _predictor_fixtures import one_torch_thread, tiny_network, tiny_scorer  # noqa: F401
from evonas.errors import DataError, UnknownChoiceError
from predictors import PROXIES, ParamError, ZeroCostPredictor, ZeroCostScorer, _zc_scorer
from predictors import _proxies as proxies


# ------------------------------------------------------------------ tiny networks, exact values
def test_naswot_exact_kernel() -> None:
    relu = nn.Sequential(nn.Flatten(), nn.ReLU())
    # codes (1,0) and (0,1): they agree on no unit -> K = [[2,0],[0,2]], log det = log 4
    x = torch.tensor([[1.0, -1.0], [-1.0, 1.0]]).view(2, 2, 1, 1)
    assert proxies.naswot(relu, x) == pytest.approx(math.log(4.0), abs=1e-12)
    # codes (1,1), (1,0), (0,0): K_ij = 2 - Hamming = [[2,1,0],[1,2,1],[0,1,2]], det = 4
    x = torch.tensor([[1.0, 2.0], [3.0, -1.0], [-2.0, -5.0]]).view(3, 2, 1, 1)
    assert proxies.naswot(relu, x) == pytest.approx(math.log(4.0), abs=1e-12)
    # two ReLU layers add their kernels: each gives the same K, the sum 2K has det 2^3 * 4
    two = nn.Sequential(nn.Flatten(), nn.ReLU(), nn.Identity(), nn.ReLU())
    assert proxies.naswot(two, x) == pytest.approx(math.log(32.0), abs=1e-12)


def test_naswot_identical_codes_is_minus_infinity() -> None:
    relu = nn.Sequential(nn.Flatten(), nn.ReLU())
    x = torch.ones(3, 2, 1, 1)
    assert proxies.naswot(relu, x) == -math.inf


def test_jacob_cov_of_a_linear_network() -> None:
    # For f(x) = W x every input has the same Jacobian: the correlation matrix is all ones,
    # with eigenvalues (B, 0, ..., 0).
    torch.manual_seed(0)  # the test's own weights; the proxy draws nothing at random
    net = nn.Sequential(nn.Flatten(), nn.Linear(12, 3))
    x = torch.randn(4, 3, 2, 2)
    eps = 1e-5
    expected = -((math.log(4 + eps) + 1 / (4 + eps)) + 3 * (math.log(eps) + 1 / eps))
    assert proxies.jacob_cov(net, x) == pytest.approx(expected, rel=1e-6)


def test_snip_and_grad_norm_exact() -> None:
    linear = nn.Linear(2, 2, bias=False)
    net = nn.Sequential(nn.Flatten(), linear)
    with torch.no_grad():
        linear.weight.copy_(torch.eye(2))
    x = torch.tensor([[1.0, 2.0]]).view(1, 2, 1, 1)
    # logits (1, 2), softmax (1 - p1, p1) with p1 = e / (1 + e); target 0:
    # dL/dW = (softmax - e_0) x^T = (-p1, p1)^T (1, 2) = [[-p1, -2 p1], [p1, 2 p1]]
    p1 = math.e / (1 + math.e)
    scores = proxies.gradient_scores(net, x, torch.tensor([0]))
    assert scores["snip"] == pytest.approx(3 * p1, abs=1e-6)  # |W * g| keeps the diagonal: p1 + 2 p1
    assert scores["grad_norm"] == pytest.approx(p1 * math.sqrt(10), abs=1e-6)
    assert linear.weight.grad is None  # the proxy leaves no gradients behind


def test_synflow_conservation_on_a_linear_network() -> None:
    # Bias-free linear net on an all-ones input: each layer's total saliency equals the
    # output R = 1^T |W2| |W1| 1, so the score is 2 R (Tanaka et al., 2020, conservation).
    first, second = nn.Linear(2, 3, bias=False), nn.Linear(3, 1, bias=False)
    net = nn.Sequential(nn.Flatten(), first, second)
    w1 = torch.tensor([[1.0, -2.0], [0.5, 0.0], [-1.0, 3.0]])
    w2 = torch.tensor([[2.0, -1.0, 0.5]])
    with torch.no_grad():
        first.weight.copy_(w1)
        second.weight.copy_(w2)
    r = float(w2.abs().sum(0) @ w1.abs().sum(1))  # = 2*3 + 1*0.5 + 0.5*4 = 8.5
    assert r == 8.5
    assert proxies.synflow(net, (2, 1, 1)) == pytest.approx(2 * r, abs=1e-12)
    torch.testing.assert_close(first.weight, w1)  # the network itself is untouched


def test_params_and_flops_exact() -> None:
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.Flatten(), nn.Linear(4 * 8 * 8, 5))
    assert proxies.num_params(net) == pytest.approx((3 * 4 * 9 + 256 * 5 + 5) / 1e6)
    # multiply-adds: conv 4*3*9 per pixel * 64 pixels, linear 256*5; two operations each
    assert proxies.flops(net, (3, 8, 8)) == pytest.approx(2 * (4 * 3 * 9 * 64 + 256 * 5) / 1e6)


def test_minibatch_scores_equal_the_single_proxies() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 16, 3))
    x = torch.randn(5, 3, 4, 4)
    t = torch.tensor([0, 1, 2, 0, 1])
    together = proxies.minibatch_scores(net, x, t)
    assert together["naswot"] == pytest.approx(proxies.naswot(net, x), rel=1e-9)
    assert together["jacob_cov"] == pytest.approx(proxies.jacob_cov(net, x), rel=1e-9)
    single = proxies.gradient_scores(net, x, t)
    assert together["snip"] == pytest.approx(single["snip"], rel=1e-9)
    assert together["grad_norm"] == pytest.approx(single["grad_norm"], rel=1e-9)


def test_dead_nb201_cell_scores() -> None:
    from evonas.models import NB201Network

    net = NB201Network((0,) * 6, C=4, N=1)
    x = torch.randn(6, 3, 8, 8)
    s = proxies.minibatch_scores(net, x, torch.zeros(6, dtype=torch.long))
    assert s["naswot"] == -math.inf and s["jacob_cov"] == -math.inf
    assert s["snip"] == 0.0 and s["grad_norm"] == 0.0
    assert proxies.synflow(net, (3, 8, 8)) == 0.0


# ----------------------------------------------------------------------------- the scorer
def test_scorer_caches_in_memory_and_on_disk(shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archs = [(3, 3, 1, 2, 0, 4), (1, 2, 3, 4, 0, 1)]
    scorer = tiny_scorer(shared_data, cache_dir=str(tmp_path), init_seed=7)
    first = scorer.scores(archs, ("naswot", "params"))
    assert first.shape == (2, 2)
    files = list(tmp_path.glob("zc-nb201-*.json"))
    assert [f.name for f in files] == [f"zc-nb201-{scorer.cache_key}.json"]
    stored = json.loads(files[0].read_text())
    assert stored["settings"]["init_seed"] == 7
    assert stored["settings"]["space"] == {"name": "nb201", "params": {}}
    assert stored["settings"]["network"] == {"name": "nb201", "params": {"channels": 4, "cells_per_stage": 1}}
    assert set(stored["scores"]) == {"3,3,1,2,0,4", "1,2,3,4,0,1"}

    def fail(*args: object, **kwargs: object) -> dict[str, float]:
        raise AssertionError("cached scores were recomputed")

    monkeypatch.setattr(_zc_scorer, "score_architecture", fail)
    np.testing.assert_array_equal(scorer.scores(archs[::-1], ("params", "naswot")), first[::-1, ::-1])
    _zc_scorer._MEMORY.clear()  # a new process: only the disk cache is left
    np.testing.assert_array_equal(tiny_scorer(shared_data, cache_dir=str(tmp_path), init_seed=7).scores(archs, ("naswot", "params")), first)
    monkeypatch.undo()
    # other settings -> another key, computed afresh
    assert tiny_scorer(shared_data, cache_dir=str(tmp_path), init_seed=8).cache_key != scorer.cache_key


def test_scorer_rejects_bad_input(tmp_path: Path) -> None:
    with pytest.raises(UnknownChoiceError, match="unknown zero-cost proxy 'zen'; valid choices: naswot"):
        ZeroCostScorer().scores([(0,) * 6], ("zen",))
    with pytest.raises(DataError, match="does not exist"):
        ZeroCostScorer(data_root=str(tmp_path / "missing.tar.gz"), cache_dir=None).scores([(1, 2, 3, 4, 0, 3)], ("naswot",))
    with pytest.raises(ParamError, match="invalid value 1 for 'batch_size' of ZeroCostScorer; expected an integer in \\[2, \\d+\\]"):
        ZeroCostScorer(batch_size=1).scores([(0,) * 6], ("params",))


def test_zero_cost_predictor_orientation(shared_data: Path) -> None:
    archs = [(3,) * 6, (1,) * 6, (0, 0, 0, 3, 0, 0)]
    up = ZeroCostPredictor("params", scorer=tiny_scorer(shared_data)).fit([], []).predict(archs)
    down = ZeroCostPredictor("params", scorer=tiny_scorer(shared_data), direction="min").fit([], []).predict(archs)
    np.testing.assert_array_equal(down, -up)
    assert up[0] > up[2] > up[1]  # all conv3x3 > one conv3x3 per cell > skips only
    with pytest.raises(UnknownChoiceError, match="unknown zero-cost proxy 'zen'"):
        ZeroCostPredictor("zen").fit([], [])
    with pytest.raises(ParamError, match="invalid value 'up' for 'direction' of ZeroCostPredictor; valid values: 'max', 'min'"):
        ZeroCostPredictor("params", scorer=tiny_scorer(shared_data), direction="up").fit([], [])


def test_scorer_space_must_match_the_predictor(shared_data: Path) -> None:
    from evonas.spaces import build_space

    chain_scorer = tiny_scorer(shared_data, space=build_space("chain"))
    with pytest.raises(ParamError, match="the scorer of ZeroCostPredictor scores space 'chain' .*, not the predictor's space 'nb201'"):
        ZeroCostPredictor("params", scorer=chain_scorer).fit([], [])


# ----------------------------------------------------------------- real data: NASLib and table
def _naslib_archs(shared_data: Path, proxy: str, count: int) -> tuple[list[tuple[int, ...]], np.ndarray]:
    """``count`` architectures of NASLib's file spread over the range of its ``proxy`` scores."""
    data = json.loads((shared_data / "zero-cost" / "zc_nasbench201.json").read_text())["cifar10"]
    # NASLib: edges (1,2),(1,3),(1,4),(2,3),(2,4),(3,4), ops [skip, none, conv3, conv1, avg]
    op_map = {0: 1, 1: 0, 2: 3, 3: 2, 4: 4}
    position = [0, 1, 3, 2, 4, 5]
    rows = []
    for key, value in data.items():
        naslib = [int(t) for t in key.strip("()").split(",")]
        arch = tuple(op_map[naslib[p]] for p in position)
        score = value[proxy]["score"]
        if math.isfinite(score):
            rows.append((score, arch))
    rows.sort()
    picks = np.linspace(0, len(rows) - 1, count).round().astype(int)
    return [rows[i][1] for i in picks], np.array([rows[i][0] for i in picks])


def test_params_equal_naslib(shared_data: Path) -> None:
    archs, naslib = _naslib_archs(shared_data, "params", 12)
    ours = tiny_scorer(shared_data, network=tiny_network(16, 5)).scores(archs, ("params",))[:, 0]
    np.testing.assert_allclose(ours, naslib, atol=1e-5)  # NASLib rounds to 6 significant digits


@pytest.mark.slow
def test_synflow_and_naswot_agree_with_naslib(shared_data: Path) -> None:
    from scipy.stats import spearmanr

    scorer = tiny_scorer(shared_data, network=tiny_network(16, 5), batch_size=64)
    archs, naslib = _naslib_archs(shared_data, "synflow", 12)
    assert spearmanr(scorer.scores(archs, ("synflow",))[:, 0], naslib).statistic > 0.95
    # NASLib's minibatch differs from ours, so NASWOT agrees less tightly than synflow
    archs, naslib = _naslib_archs(shared_data, "nwot", 10)
    assert spearmanr(scorer.scores(archs, ("naswot",))[:, 0], naslib).statistic > 0.7


def test_proxy_names() -> None:
    assert PROXIES == ("naswot", "jacob_cov", "synflow", "snip", "grad_norm", "params", "flops")
