"""Contract tests driven by the registries: registering a component enrols it here.

Every registered space, strategy, evaluator, executor, dataset, decoder and table is
checked against its kind's protocol (predictors, pruners and samplers have their own
contract modules: test_predictors_contract.py, test_ensembles.py, test_supernet.py). The
test plugin ``tests/plugins/chain_nas`` is loaded by conftest, so a second space and
decoder are enrolled next to NAS-Bench-201's.
"""

from __future__ import annotations

import dataclasses
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

import evonas
from evonas._registry import KINDS, registry
from evonas.config import ComponentConfig, from_dict
from evonas.data import DATASETS, load_dataset
from evonas.errors import CapabilityError, ConfigError, DataError, EvonasError, PluginError, UnknownChoiceError
from evonas.evaluation import EVALUATORS, Evaluation
from evonas.executors import EXECUTORS, Task
from evonas.models import DECODERS, build_network
from evonas.spaces import CAPABILITIES, SPACES, ArchGraph, build_space, require
from evonas.strategies import STRATEGIES
from evonas.tabular import TABLES
from evonas.training import seeded_model

from _toys import CoreOnlySpace

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = ROOT / "tests" / "plugins" / "chain_nas"


def _space(name: str):
    return build_space(name)


# ------------------------------------------------------------------------- registries
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_extension_point_has_a_registry_that_rejects_clashes_and_unknown_names(kind):
    reg = registry(kind)
    assert len(reg) >= 1
    name = reg.names()[0]
    with pytest.raises(PluginError, match=f"{reg.kind} {name!r} is already registered by"):
        evonas.register(kind, name, reg.get(name))
    with pytest.raises(UnknownChoiceError, match=f"unknown {reg.kind} 'no-such-thing'; valid choices: "):
        reg.get("no-such-thing")


def test_unknown_extension_point():
    with pytest.raises(UnknownChoiceError, match="unknown extension point 'gizmo'; valid choices: dataset, decoder"):
        evonas.register("gizmo", "x", object())


# ----------------------------------------------------------------------------- spaces
@pytest.mark.parametrize("name", SPACES.names())
def test_space_contract(name):
    space = _space(name)
    assert space.name == name and space.capabilities <= set(CAPABILITIES)
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(20)]
    again = np.random.default_rng(0)
    assert archs == [space.sample(again) for _ in range(20)]  # all randomness from the rng
    assert len(set(archs)) > 1
    for arch in archs:
        assert isinstance(arch, tuple) and hash(arch) is not None
        assert space.validate(arch) == arch
        assert space.parse(space.format(arch)) == arch
        assert space.validate(space.format(arch)) == arch
        neighbours = space.neighbors(arch)
        assert arch not in neighbours and len(set(neighbours)) == len(neighbours) > 0
        child = space.mutate(arch, np.random.default_rng(1))
        assert child in neighbours
        assert space.canonical_key(arch) == space.canonical_key(space.validate(list(arch)))
    with pytest.raises(EvonasError):
        space.parse("certainly not an architecture")
    with pytest.raises(EvonasError):
        space.validate(("x",))
    clone = pickle.loads(pickle.dumps(space))
    assert clone == space and hash(clone) == hash(space)
    assert [clone.format(a) for a in archs] == [space.format(a) for a in archs]


@pytest.mark.parametrize("name", SPACES.names())
def test_space_capabilities_do_what_they_declare(name):
    space = _space(name)
    arch = space.sample(np.random.default_rng(3))
    if "enumerable" in space.capabilities:
        every = space.all_archs()
        assert len(every) == space.size == len(set(every))
        for i in (0, space.size // 2, space.size - 1):
            assert space.ordinal(space.from_ordinal(i)) == i
        assert space.from_ordinal(space.ordinal(arch)) == arch
    if "crossover" in space.capabilities:
        a, b = space.crossover(arch, space.sample(np.random.default_rng(4)), np.random.default_rng(5))
        assert space.validate(a) == a and space.validate(b) == b
    if "graph" in space.capabilities:
        g = space.graph(arch)
        assert isinstance(g, ArchGraph) and g.num_nodes >= 2 and all(s < t for s, t in g.edges)
    if "fixed_length" in space.capabilities:
        assert len(arch) == space.length and all(0 <= v < space.num_choices for v in arch)


class _BareSpace(CoreOnlySpace):
    """A space with the core only (no optional capability)."""

    name = "bare"


def test_registering_a_space_checks_its_protocol():
    class Broken:
        name = "broken"
        capabilities = frozenset({"crossover"})

    with pytest.raises(PluginError, match="lacks the core attribute"):
        SPACES.register("broken")(Broken)

    class Liar(_BareSpace):
        capabilities = frozenset({"crossover"})

    with pytest.raises(PluginError, match="declares 'crossover' but lacks crossover"):
        SPACES.register("liar")(Liar)
    assert "broken" not in SPACES and "liar" not in SPACES


@pytest.mark.parametrize("name", STRATEGIES.names())
def test_strategies_state_the_capabilities_they_need(name):
    cls = STRATEGIES.get(name)
    space = _BareSpace()
    if cls.requires:
        with pytest.raises(CapabilityError, match=f"needs a search space with {', '.join(sorted(cls.requires))}"):
            cls(space, 1, np.random.default_rng(0))
        return
    strategy = cls(space, 1, np.random.default_rng(0))
    for _ in range(12):
        arch = strategy.ask()
        if arch is not None:
            strategy.tell(arch, (float(sum(arch)),))


def test_require_names_what_is_missing():
    with pytest.raises(CapabilityError, match="needs a search space with enumerable, graph; space 'bare' does not declare them"):
        require(_BareSpace(), {"graph", "enumerable"}, "predictor 'gin'")
    require(_space("nb201"), {"graph", "enumerable"}, "predictor 'gin'")


# ------------------------------------------------------------------------- evaluators
def _config_cls(entry):
    cls = entry.Config
    assert dataclasses.is_dataclass(cls)
    return cls


@pytest.mark.parametrize("kind, name", [(k, n) for k in ("evaluator", "executor", "decoder", "table", "space", "strategy")
                                        for n in registry(k).names()])
def test_configurable_entries_reject_unknown_parameters(kind, name):
    cls = _config_cls(registry(kind).get(name))
    with pytest.raises(ConfigError, match="unknown key 'x.params.surely_not_a_key'"):
        from_dict(cls, {"surely_not_a_key": 1}, "x.params")


def _evaluator_cases(nb201_path: Path, space_name: str):
    """Parameters that build each registered evaluator on cheap, local data (None: needs a run)."""
    tables = {"nb201": [{"name": "nb201", "params": {"path": str(nb201_path)}}],
              "chain": [{"name": "file", "params": {"path": str(PLUGIN / "chain-digits.csv")}}]}[space_name]
    metric = {"nb201": "cifar10-valid_valid_acc_12ep", "chain": "val_acc"}[space_name]
    network = {"nb201": {"name": "nb201", "params": {"channels": 4, "cells_per_stage": 1}},
               "chain": {"name": "chain", "params": {"width": 4}}}[space_name]
    return {
        "tabular": {"tables": tables, "metric": metric, "report": []},
        "training": {"dataset": {"name": "digits", "max_train": 128, "max_val": 32, "max_test": 32},
                     "train": {"epochs": 1, "batch_size": 32}, "network": network},
    }


@pytest.mark.parametrize("space_name", ["nb201", "chain"])
@pytest.mark.parametrize("name", EVALUATORS.names())
def test_evaluator_contract(name, space_name, nb201_path):
    entry = EVALUATORS.get(name)
    params = _evaluator_cases(nb201_path, space_name).get(name)
    if params is None:
        # Evaluators of a finished supernet run: their config names the run, which is required.
        with pytest.raises(ConfigError, match="missing required key 'evaluator.params.run_dir'"):
            from_dict(_config_cls(entry), {}, "evaluator.params")
        return  # built and exercised on a trained supernet in test_supernet.py
    space = _space(space_name)
    cc = from_dict(ComponentConfig, {"name": name, "params": params})
    evaluator = cc.build("evaluator", space=space)
    arch = space.sample(np.random.default_rng(0))
    a, b = evaluator.evaluate(arch, 7), pickle.loads(pickle.dumps(evaluator)).evaluate(arch, 7)
    assert isinstance(a, Evaluation) and not a.failed and set(a.metrics) >= set(evaluator.metric_names)
    assert a.metrics == b.metrics and a.cost >= 0
    a.to_json()  # JSON-able


# -------------------------------------------------------------------------- executors
class _Work:
    def run(self, payload, seed):
        if payload < 0:
            raise ValueError(f"negative payload {payload}")
        return payload * 10 + seed


@pytest.mark.parametrize("name", EXECUTORS.names())
def test_executor_contract(name):
    params = {"ray": {"num_cpus": 2, "max_in_flight": 2}}.get(name, {})
    if name == "ray":
        import sys

        import ray

        ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers do not import test modules
    executor = ComponentConfig(name, from_dict(ComponentConfig, {"name": name, "params": params}).params).build("executor")
    tasks = [Task(i, p, seed=i) for i, p in enumerate([3, -1, 5, 2])]
    outcomes = executor.run_all(_Work(), tasks)
    assert [o.task.task_id for o in outcomes] == [0, 1, 2, 3]
    assert [o.value for o in outcomes] == [30, None, 52, 23]
    assert outcomes[1].failed and outcomes[1].error == "ValueError: negative payload -1"
    assert not any(o.failed for o in outcomes if o.task.task_id != 1)


# --------------------------------------------------------------------------- datasets
@pytest.mark.parametrize("name", DATASETS.names())
def test_dataset_contract(name, shared_data, tmp_path):
    roots = {
        "digits": None,
        "mnist": shared_data / "images" / "mnist-idx",
        "fashion-mnist": Path("/usr/share/datasets/fashion-mnist"),
        "imagefolder": shared_data / "images" / "cifar10-jpg-small.tar.gz",
    }
    with pytest.raises(ConfigError, match=f"dataset {name!r} does not take option 'bogus'"):
        load_dataset(name, roots.get(name), bogus=1)
    if name not in roots:
        # No local copy (downloadable only): a missing root is a one-line DataError naming it.
        with pytest.raises(DataError, match=str(tmp_path)):
            load_dataset(name, tmp_path)
        return
    splits = load_dataset(name, roots[name], max_train=64, max_val=16, max_test=16)
    x, y = splits.train.batch(range(4))
    assert x.shape == (4, *splits.input_shape) and x.dtype == torch.float32
    assert int(y.max()) < splits.num_classes == len(splits.classes)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (64, 16, 16)


# --------------------------------------------------------------------------- decoders
@pytest.mark.parametrize("name", DECODERS.names())
def test_decoder_contract(name):
    entry = DECODERS.get(name)
    space = _space(entry.space)
    network = from_dict(ComponentConfig, {"name": name, "params": {}})
    arch = space.sample(np.random.default_rng(0))
    a = seeded_model(lambda: build_network(network, space, arch, num_classes=3, in_channels=1), seed=4)
    b = seeded_model(lambda: build_network(network, space, arch, num_classes=3, in_channels=1), seed=4)
    assert isinstance(a, torch.nn.Module)
    out = a.eval()(torch.randn(2, 1, 8, 8))
    assert out.shape == (2, 3)
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(va, vb), k
    other = next(s for s in SPACES.names() if s != entry.space)
    with pytest.raises(CapabilityError, match=f"decoder {name!r} serves space {entry.space!r}, not the configured space {other!r}"):
        build_network(network, _space(other), _space(other).sample(np.random.default_rng(0)), 3, 1)


# ----------------------------------------------------------------------------- tables
@pytest.mark.parametrize("name", TABLES.names())
def test_table_contract(name, nb201_path):
    entry = TABLES.get(name)
    space = _space(entry.space or "chain")
    params = {"nb201": {"path": str(nb201_path)}, "file": {"path": str(PLUGIN / "chain-digits.csv")}}[name]
    table = ComponentConfig(name, from_dict(ComponentConfig, {"name": name, "params": params}).params).build("table", space=space)
    arch = space.sample(np.random.default_rng(0))
    assert table.has(arch) and table.metrics
    value = table.query(arch, table.metrics[0])
    assert np.isfinite(value) and table.cost(arch) >= 0
    with pytest.raises(UnknownChoiceError):
        table.query(arch, "no-such-metric")
