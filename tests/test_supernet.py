"""Supernet: single-path network, weight copy, the supernet and sampler registries, evaluator."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch
from _toys import trained_toy_supernet
from torch import nn

from evonas.config import ComponentConfig
from evonas.data import DatasetConfig
from evonas.errors import CapabilityError, ConfigError, UnknownChoiceError
from evonas.spaces import get_space
from evonas.supernet import (
    SAMPLERS,
    SUPERNETS,
    EvalData,
    NoveltySampler,
    PredictorEvaluator,
    ProxyMemory,
    SuperNet,
    SupernetEvalConfig,
    SupernetEvaluator,
    build_supernet,
    coverage,
    cumulative_bn,
    fit_proxy_predictor,
    lr_at,
    make_sampler,
    num_conv3x3,
    op_balance,
)

SPACE = get_space("nb201")
TOY = ComponentConfig("nb201", {"channels": 4, "cells_per_stage": 1})  # the supernet of _toys.trained_toy_supernet
ARCHS = [
    (3, 3, 3, 3, 3, 3),
    (1, 2, 4, 0, 1, 2),
    (0, 0, 0, 0, 0, 0),  # output always zero
    (3, 0, 0, 1, 0, 0),  # edge (0,1) cannot reach the output
    (2, 4, 1, 0, 3, 4),
]


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny networks; more threads only contend on the shared cores
    yield
    torch.set_num_threads(threads)


def _trained_supernet(C: int = 4, N: int = 2, steps: int = 4) -> tuple[SuperNet, torch.Tensor]:
    torch.manual_seed(0)
    net = SuperNet(C=C, N=N, num_classes=10, in_channels=3)
    x = torch.randn(16, 3, 12, 12, generator=torch.Generator().manual_seed(1))
    y = torch.arange(16) % 10
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    rng = np.random.default_rng(0)
    net.train()
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(net(x, SPACE.sample(rng)), y).backward()
        opt.step()
    return net, x


# ------------------------------------------------------------------------------ network
@pytest.mark.parametrize("arch", ARCHS)
def test_single_path_output_equals_standalone_with_copied_weights(arch):
    net, x = _trained_supernet()
    net.eval()
    standalone = net.standalone(arch).eval()
    assert not standalone.training
    torch.testing.assert_close(net(x, arch), standalone(x), rtol=0, atol=0)
    # the copied weights are the supernet's, not a fresh initialisation
    conv3 = [m for m in net.path_modules(arch) if isinstance(m, nn.Sequential)]
    if conv3:
        w = conv3[0][1].weight
        assert any(torch.equal(w, p) for p in standalone.parameters())


def test_standalone_has_the_benchmark_parameter_count():
    net = SuperNet(C=16, N=5)
    # NAS-Bench-201 index 6111 (the best cell): params_M 1.07347 in the table
    count = sum(p.numel() for p in net.standalone((3, 3, 3, 1, 3, 2)).parameters())
    assert round(count / 1e6, 5) == 1.07347


def _op_modules(net: SuperNet) -> dict[tuple[int, str, int], nn.Module]:
    out = {}
    for k, layer in enumerate(net.cells):
        if hasattr(layer, "edges"):
            for key, ops in layer.edges.items():
                for op, module in enumerate(ops):
                    out[(k, key, op)] = module
    return out


def test_only_sampled_ops_get_gradients_and_bn_updates():
    arch = (3, 0, 0, 1, 0, 4)  # conv3x3 on (0,1) is dead: nodes 1 and 2 never reach the output
    net = SuperNet(C=4, N=1)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    net.train()
    x = torch.randn(8, 3, 8, 8)
    nn.functional.cross_entropy(net(x, arch), torch.arange(8) % 10).backward()
    run = {id(m) for m in net.path_modules(arch)}
    ran_ops = set()
    for (k, key, op), module in _op_modules(net).items():
        params = list(module.parameters())
        buffers = {n: b for n, b in module.named_buffers() if "running" in n}
        if id(module) in run:
            ran_ops.add((key, op))
            assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in params)
        else:
            assert all(p.grad is None for p in params), (k, key, op)
            prefix = f"cells.{k}.edges.{key}.{op}."
            for name, buf in buffers.items():
                assert torch.equal(buf, before[prefix + name]), (k, key, op, name)
    # exactly the live edges ran: skip on (0,3) and the pool on (2,3), which reads the
    # always-zero node 2 (as in the standalone cell); both have no parameters
    assert ran_ops == {("edge03", 1), ("edge23", 4)}
    # the shared stem and head were trained and their statistics updated
    assert net.stem[0].weight.grad is not None and net.classifier.weight.grad is not None
    assert not torch.equal(net.stem[1].running_mean, before["stem.1.running_mean"])


def test_sampled_conv_bn_updates_running_stats():
    net = SuperNet(C=4, N=1)
    arch = (3, 0, 0, 2, 0, 0)  # conv1x1 on (0,3) is the only live edge
    conv1 = net.cells[0].edges["edge03"][2][2]
    conv3 = net.cells[0].edges["edge03"][3][2]
    net.train()
    net(torch.randn(4, 3, 8, 8), arch)
    assert conv1.num_batches_tracked.item() == 1
    assert conv3.num_batches_tracked.item() == 0


def test_supernet_rejects_bad_sizes_and_archs():
    with pytest.raises(ConfigError, match="invalid value 0 for 'C' of SuperNet; expected an integer in \\[1, \\d+\\]"):
        SuperNet(C=0)
    net = SuperNet(C=2, N=1)
    with pytest.raises(ValueError, match="nb201 architecture must be a tuple of 6 op indices"):
        net(torch.randn(1, 3, 8, 8), (5, 0, 0, 0, 0, 0))


def test_supernet_registry_builds_the_configured_size_for_its_space():
    entry = SUPERNETS.get("nb201")
    assert entry.space == "nb201" and entry.Config().cells_per_stage == 1
    net = build_supernet(ComponentConfig("nb201", {"channels": 6, "cells_per_stage": 2}), SPACE, 7, 1)
    assert isinstance(net, SuperNet) and (net.C, net.N, net.num_classes, net.in_channels) == (6, 2, 7, 1)
    assert sum(isinstance(m, nn.Module) and hasattr(m, "edges") for m in net.cells) == 6  # 3 stages x N
    with pytest.raises(UnknownChoiceError, match="unknown supernet 'darts'; valid choices: nb201"):
        build_supernet(ComponentConfig("darts"), SPACE, 10, 3)


def test_cumulative_bn_gives_the_plain_mean_of_batch_statistics():
    bn = nn.BatchNorm2d(2)
    bn.running_mean.fill_(100.0)
    batches = [torch.randn(4, 2, 3, 3) + i for i in range(3)]
    bn.train()
    with cumulative_bn(bn):
        for b in batches:
            bn(b)
    expected = torch.stack([b.mean(dim=(0, 2, 3)) for b in batches]).mean(dim=0)
    torch.testing.assert_close(bn.running_mean, expected)
    assert bn.momentum == 0.1  # restored


def test_lr_schedule():
    assert lr_at(0, 10, 0.1, 0.0, 0) == pytest.approx(0.1)
    assert lr_at(5, 10, 0.1, 0.0, 0) == pytest.approx(0.05)
    assert lr_at(10, 10, 0.1, 0.0, 0) == pytest.approx(0.0)
    assert [lr_at(s, 10, 0.1, 0.0, 4) for s in range(4)] == pytest.approx([0.025, 0.05, 0.075, 0.1])
    assert lr_at(4, 10, 0.1, 0.0, 4) == pytest.approx(0.1)


# ------------------------------------------------------------------------------ samplers
class _ToyPredictor:
    """Predicted loss = minus the number of 3x3 convolutions (conv3x3 looks best everywhere)."""

    def predict(self, archs):
        return np.asarray([-float(num_conv3x3(a)) for a in archs])


@pytest.mark.parametrize("name", SAMPLERS.names())
def test_sampler_contract(name):
    a = make_sampler(name, SPACE)
    b = make_sampler(name, SPACE)
    ra, rb = np.random.default_rng(3), np.random.default_rng(3)
    first = [a.propose(ra) for _ in range(30)]
    assert first == [b.propose(rb) for _ in range(30)]  # seeded reproducibility
    for paths in first:
        assert len(paths) == (5 if name == "fair" else 1)
        assert all(SPACE.validate(p) == p for p in paths)
    memory = [(p[0], float(i)) for i, p in enumerate(first)]
    a.update(_ToyPredictor(), memory, np.random.default_rng(0))
    clone = pickle.loads(pickle.dumps(a))  # checkpointable mid-run
    ra2 = pickle.loads(pickle.dumps(ra))
    assert [a.propose(ra) for _ in range(10)] == [clone.propose(ra2) for _ in range(10)]
    json.dumps(a.summary())


def test_sampler_registry_errors():
    with pytest.raises(UnknownChoiceError, match="unknown sampler 'random'; valid choices: fair, importance, novelty, uniform"):
        make_sampler("random", SPACE)
    with pytest.raises(ConfigError, match="unknown key 'sampler.params.kk'"):
        make_sampler("novelty", SPACE, {"kk": 3})
    with pytest.raises(ConfigError, match="invalid value 0 for 'sampler.params.k'; expected an integer in \\[1, \\d+\\]"):
        make_sampler("novelty", SPACE, {"k": 0})
    with pytest.raises(ConfigError, match="invalid value 'fair' for 'sampler.params.base.name'; the fair sampler does not nest"):
        make_sampler("fair", SPACE, {"base": {"name": "fair"}})
    with pytest.raises(UnknownChoiceError, match="unknown sampler 'unifrom'"):
        make_sampler("fair", SPACE, {"base": {"name": "unifrom"}})
    with pytest.raises(ConfigError, match=r"invalid value 1.5 for 'sampler.params.explore'; expected a finite number in \[0, 1\]"):
        make_sampler("importance", SPACE, {"explore": 1.5})


class _BareSpace:
    """A space with the core protocol only (no capabilities): 4 positions of 0/1."""

    name = "bare"
    capabilities: frozenset = frozenset()

    def sample(self, rng):
        return tuple(int(v) for v in rng.integers(0, 2, size=4))


@pytest.mark.parametrize("name", SAMPLERS.names())
def test_samplers_declare_the_capabilities_they_use(name):
    cls = SAMPLERS.get(name)
    if not cls.requires:  # it only samples: works on any space
        assert all(len(p) == 4 for p in make_sampler(name, _BareSpace()).propose(np.random.default_rng(0)))
        return
    with pytest.raises(CapabilityError, match=f"sampler '{name}' needs a search space with fixed_length; space 'bare'") as info:
        make_sampler(name, _BareSpace())
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("base", ["uniform", "novelty", "importance"])
def test_fair_sampler_covers_every_op_once_per_edge(base):
    sampler = make_sampler("fair", SPACE, {"base": {"name": base}})
    rng = np.random.default_rng(0)
    counts = np.zeros((6, 5), dtype=int)
    for _ in range(20):
        paths = sampler.propose(rng)
        for e in range(6):
            assert sorted(p[e] for p in paths) == [0, 1, 2, 3, 4]
        for p in paths:
            counts[np.arange(6), list(p)] += 1
    assert op_balance(counts) == 1.0


def test_fair_sampler_first_path_comes_from_its_base():
    fair = make_sampler("fair", SPACE, {"base": {"name": "novelty", "params": {"warmup_steps": 0}}})
    rng = np.random.default_rng(5)
    for _ in range(10):
        paths = fair.propose(rng)
        archive = fair.base.archive[(fair.base.written - 1) % fair.base.config.archive_size]
        assert paths[0] == tuple(int(v) for v in archive)


class _SmallSpace:
    """3 edges x 3 ops = 27 architectures, with NB201-style sample and mutate."""

    name = "small"
    capabilities = frozenset({"fixed_length"})
    length, num_choices, size = 3, 3, 27

    def sample(self, rng):
        return tuple(int(v) for v in rng.integers(0, 3, size=3))

    def mutate(self, arch, rng):
        child = list(arch)
        e = int(rng.integers(3))
        child[e] = (child[e] + int(rng.integers(1, 3))) % 3
        return tuple(child)


def test_novelty_archive_coverage_grows_faster_than_uniform_on_a_small_space():
    space = _SmallSpace()
    steps = 27
    uni, nov = [], []
    for seed in range(20):
        rng = np.random.default_rng(seed)
        uni.append(coverage([space.sample(rng) for _ in range(steps)]))
        sampler = NoveltySampler(space, NoveltySampler.Config(k=3, num_candidates=8, warmup_steps=3))
        rng = np.random.default_rng(seed)
        for _ in range(steps):
            sampler.propose(rng)
        nov.append(sampler.summary()["archive_distinct"])
    # uniform: 27 * (1 - (26/27)^27) = 17.2 expected distinct architectures
    assert 15 <= np.mean(uni) <= 19.5
    assert np.mean(nov) >= 24 and min(nov) > max(uni) - 2


def test_novelty_is_mean_distance_to_k_nearest():
    sampler = NoveltySampler(SPACE, NoveltySampler.Config(k=2, warmup_steps=0))
    for arch in [(0,) * 6, (1,) * 6, (0, 0, 0, 0, 0, 1)]:
        sampler._add(arch)
    # distances of (0,0,0,0,1,1) to the archive: 2, 4, 1 -> two nearest 1, 2
    np.testing.assert_array_equal(sampler.novelty([(0, 0, 0, 0, 1, 1), (0,) * 6]), [1.5, 0.5])


def test_importance_sampler_favours_what_the_predictor_favours():
    sampler = make_sampler("importance", SPACE, {"explore": 0.0, "temperature": 0.1, "num_reference": 8})
    rng = np.random.default_rng(0)
    assert np.allclose(sampler.weights, 0.2)  # uniform before any feedback
    memory = [(SPACE.sample(rng), 0.0) for _ in range(16)]
    sampler.update(_ToyPredictor(), memory, rng)
    assert (sampler.weights.argmax(axis=1) == 3).all()
    proposals = [sampler.propose(rng)[0] for _ in range(50)]
    assert np.mean([num_conv3x3(p) for p in proposals]) > 5.5
    explorer = make_sampler("importance", SPACE, {"explore": 1.0})
    explorer.weights = sampler.weights
    assert np.mean([num_conv3x3(explorer.propose(rng)[0]) for _ in range(300)]) < 2.0


# ----------------------------------------------------------------------------- evaluator
DIGITS = DatasetConfig(name="digits", max_train=200, max_val=60, max_test=20)


@pytest.fixture(scope="module")
def digits():
    return DIGITS.load()


def _digits_supernet(splits) -> SuperNet:
    return trained_toy_supernet(splits, steps=5)


def test_evaluator_caches_and_restores_bn_statistics(digits):
    net = _digits_supernet(digits)
    config = SupernetEvalConfig(bn_batches=2, batch_size=32, val_images=40)
    ev = SupernetEvaluator.attached(net, SPACE, TOY, digits, config, dataset=DIGITS)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    first = ev.evaluate((3, 3, 3, 1, 3, 3), seed=1)
    assert set(first.metrics) == set(ev.metric_names) == {"val_loss", "val_acc"}
    assert first.info == {"bn_recalibrated": True, "images": 40}
    assert (ev.hits, ev.misses) == (0, 1)
    again = ev.evaluate((3, 3, 3, 1, 3, 3), seed=2)
    assert again is first and (ev.hits, ev.misses) == (1, 1)
    for k, v in net.state_dict().items():  # re-estimation left the supernet as it was
        assert torch.equal(v, before[k]), k
    for arch in [(1, 1, 1, 1, 1, 1), (3, 3, 3, 1, 3, 3)]:
        ev.evaluate(arch)
    assert (ev.hits, ev.misses) == (2, 2)


def test_bn_reestimation_makes_results_independent_of_stored_statistics(digits):
    arch = (3, 2, 3, 1, 3, 2)
    config = SupernetEvalConfig(bn_batches=2, batch_size=32, val_images=40)
    plain = SupernetEvalConfig(bn_recalibration=False, batch_size=32, val_images=40)
    clean = _digits_supernet(digits)
    spoiled = _digits_supernet(digits)
    for m in spoiled.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.fill_(3.0)
            m.running_var.fill_(50.0)
    recal = [SupernetEvaluator.attached(n, SPACE, TOY, digits, config).evaluate(arch).metrics for n in (clean, spoiled)]
    assert recal[0] == recal[1]
    raw = [SupernetEvaluator.attached(n, SPACE, TOY, digits, plain).evaluate(arch).metrics for n in (clean, spoiled)]
    assert raw[0] != raw[1]
    # the recalibrated statistics are those of the fixed training batches: the standalone
    # network of the arch, recalibrated the same way, gives the same loss
    data = EvalData.build(digits, config, 0)
    net = clean.standalone(arch)
    net.train()
    with torch.no_grad(), cumulative_bn(net):
        for x, _ in data.bn_batches:
            net(x)
    net.eval()
    with torch.no_grad():
        losses = [nn.functional.cross_entropy(net(x), y, reduction="sum") for x, y in data.val_batches]
    assert float(sum(losses)) / 40 == pytest.approx(recal[0]["val_loss"], rel=1e-5)


def test_evaluators_follow_the_memory_format(digits, monkeypatch):
    from evonas.training import prefers_channels_last

    net = _digits_supernet(digits)
    config = SupernetEvalConfig(bn_batches=1, batch_size=32, val_images=40)
    arch = (3, 2, 3, 1, 3, 2)
    plain = SupernetEvaluator.attached(net, SPACE, TOY, digits, config)
    assert plain.channels_last is False
    expected = plain.evaluate(arch).metrics
    net.to(memory_format=torch.channels_last)
    nhwc = SupernetEvaluator.attached(net, SPACE, TOY, digits, config)
    assert nhwc.channels_last is True
    got = nhwc.evaluate(arch).metrics
    assert got["val_loss"] == pytest.approx(expected["val_loss"], rel=1e-5)
    assert got["val_acc"] == expected["val_acc"]
    # from weights: "auto" resolves on the device when the supernet is built
    for available in (True, False):
        monkeypatch.setattr(torch.backends.mkldnn, "is_available", lambda available=available: available)
        ev = SupernetEvaluator(net.state_dict(), SPACE, TOY, DIGITS, config, num_classes=10, in_channels=1)
        assert ev.channels_last == "auto"
        ev.model()
        assert ev.channels_last is prefers_channels_last(torch.device("cpu")) is available


def test_evaluator_pickles_with_its_weights(digits):
    net = _digits_supernet(digits)
    config = SupernetEvalConfig(bn_batches=1, batch_size=32, val_images=30)
    ev = SupernetEvaluator.attached(net, SPACE, TOY, digits, config, dataset=DIGITS)
    copy = pickle.loads(pickle.dumps(ev))
    assert copy._model is None and copy.weights
    arch = (1, 3, 4, 2, 0, 3)
    assert copy.evaluate(arch).metrics == ev.evaluate(arch).metrics
    # the memory format of the live supernet (contiguous): another one rounds differently
    standalone = SupernetEvaluator(
        net.state_dict(), SPACE, TOY, DIGITS, config, num_classes=10, in_channels=1, channels_last=False
    )
    assert standalone.evaluate(arch).metrics == ev.evaluate(arch).metrics


# ------------------------------------------------------------------------------ proxy
def test_proxy_memory_normalises_rounds_and_keeps_latest_values():
    memory = ProxyMemory()
    assert memory.add_round([(0,) * 6, (1,) * 6, (2,) * 6], [1.0, 2.0, 3.0], step=10, normalize=True) == pytest.approx(
        [-1.224745, 0.0, 1.224745], rel=1e-5
    )
    memory.add_round([(1,) * 6, (3,) * 6], [5.0, float("nan")], step=20, normalize=False)
    assert memory.pairs() == [((0,) * 6, pytest.approx(-1.224745, rel=1e-5)), ((2,) * 6, pytest.approx(1.224745, rel=1e-5)),
                              ((1,) * 6, 5.0), ((3,) * 6, 5.0)]
    assert memory.pairs(memory_size=2) == [((1,) * 6, 5.0), ((3,) * 6, 5.0)]
    assert len(memory) == 5 and memory.rounds == 2


def test_predictor_evaluator_batches_and_caches():
    class Counting(_ToyPredictor):
        calls = 0

        def predict(self, archs):
            Counting.calls += 1
            return super().predict(archs)

    ev = PredictorEvaluator(Counting(), SPACE)
    many = ev.evaluate_many([(3,) * 6, (0,) * 6, (3,) * 6])
    assert [e.metrics["proxy_val_loss"] for e in many] == [-6.0, 0.0, -6.0]
    assert Counting.calls == 1
    assert ev.evaluate((0,) * 6).metrics == {"proxy_val_loss": 0.0} and Counting.calls == 1
    assert ev.metric_names == ("proxy_val_loss",)
    with pytest.raises(ConfigError, match="needs an estimator with predict"):
        PredictorEvaluator(object(), SPACE)


def test_proxy_predictor_ensemble_averages_differently_seeded_fits():
    rng = np.random.default_rng(0)
    archs = [SPACE.sample(rng) for _ in range(40)]
    memory = [(a, float(num_conv3x3(a)) + rng.normal(0, 0.3)) for a in archs]
    params = {"n_estimators": 5, "max_features": 0.5}
    single = fit_proxy_predictor(memory, "rf", params, seed=3)
    assert single.get_params()["random_state"] == 3
    ens = fit_proxy_predictor(memory, "rf", params, seed=3, ensemble=3)
    assert [m.random_state for m in ens.estimators_] == [3, 4, 5]
    test = [SPACE.sample(rng) for _ in range(10)]
    members = np.stack([m.predict(test) for m in ens.estimators_])
    assert not np.allclose(members[0], members[1])  # the seeds differ, so do the fits
    mean, std = ens.predict(test, return_std=True)
    np.testing.assert_allclose(mean, members.mean(axis=0))
    np.testing.assert_allclose(std, members.std(axis=0))
    np.testing.assert_allclose(ens.estimators_[0].predict(test), single.predict(test))
    with pytest.raises(ConfigError, match="invalid value 0 for 'proxy.ensemble'; expected an integer >= 1"):
        fit_proxy_predictor(memory, "rf", params, ensemble=0)


def test_tau_bootstrap_interval_covers_the_estimate_and_pairs_the_difference():
    from evonas.supernet._rank import tau, tau_ci

    rng = np.random.default_rng(0)
    truth = rng.normal(size=150)
    good = truth + rng.normal(0, 0.5, size=150)
    bad = truth + rng.normal(0, 3.0, size=150)
    low, high = tau_ci(truth, good, resamples=400)
    assert low < tau(good, truth) < high and high - low < 0.3
    d_low, d_high = tau_ci(truth, good, bad, resamples=400)
    assert 0 < d_low < tau(good, truth) - tau(bad, truth) < d_high  # clearly better: the interval excludes 0
    same_low, same_high = tau_ci(truth, good, good, resamples=50)
    assert same_low == same_high == 0.0
    with pytest.raises(ValueError, match="one entry per architecture"):
        tau_ci(truth, good[:10])
