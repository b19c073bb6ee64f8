from __future__ import annotations

import gzip
import json

import numpy as np
import pytest

from evonas.errors import ConfigError, DataError, UnknownChoiceError
from evonas.config import ComponentConfig
from evonas.evaluation import TabularEvaluator, TabularEvaluatorConfig
from evonas.spaces import get_space
from evonas.tabular import FileTable, FileTableConfig, JoinedTable, NB201Table

SPACE = get_space("nb201")


def test_known_facts(nb201_table):
    t = nb201_table
    best = t.arch_at(6111)
    assert t.query(best, "cifar10_test_acc") == pytest.approx(94.3733)
    assert t.query(best, "cifar10-valid_valid_acc") == pytest.approx(91.6067)
    assert t.column("cifar10_test_acc").max() == pytest.approx(94.3733)
    assert t.column("cifar10-valid_valid_acc").max() == pytest.approx(91.6067)
    assert t.column("cifar100_test_acc").max() == pytest.approx(73.5133)
    assert t.column("ImageNet16-120_test_acc").max() == pytest.approx(47.3111)
    assert t.index_of(best) == 6111
    for i in (0, 1, 15624):
        assert t.index_of(t.arch_at(i)) == i


def test_cost_scales_with_epochs(nb201_table):
    a = nb201_table.arch_at(0)
    full = nb201_table.train_time(a, "cifar10-valid", 200)
    assert full == pytest.approx(1444.22)
    assert nb201_table.train_time(a, "cifar10-valid", 12) == pytest.approx(1444.22 * 12 / 200)
    with pytest.raises(UnknownChoiceError, match="valid choices: cifar10-valid, cifar100, ImageNet16-120"):
        nb201_table.train_time(a, "svhn")


def test_seed_draws_come_from_the_seed_columns(nb201_table):
    a = nb201_table.arch_at(0)
    draws = {nb201_table.query_seed(a, "cifar10-valid_valid_acc", np.random.default_rng(s)) for s in range(50)}
    assert draws == {82.092, 81.616, 82.24}
    with pytest.raises(UnknownChoiceError, match="per-seed values"):
        nb201_table.query_seed(a, "cifar10_test_acc", np.random.default_rng(0))


def test_unknown_metric_lists_choices(nb201_table):
    with pytest.raises(UnknownChoiceError, match=r"unknown NAS-Bench-201 metric 'acc'; valid choices: .*cifar10_test_acc"):
        nb201_table.query((0,) * 6, "acc")


def test_missing_and_corrupt_tables(tmp_path, nb201_path, monkeypatch):
    with pytest.raises(DataError, match="does not exist"):
        NB201Table.load(tmp_path / "nope.csv.gz")
    bad = tmp_path / "bad.csv.gz"
    bad.write_bytes(b"this is not gzip")
    with pytest.raises(DataError, match="not a readable CSV"):
        NB201Table.load(bad)
    lines = gzip.open(nb201_path, "rt").read().splitlines()
    short = tmp_path / "short.csv"
    short.write_text("\n".join(lines[:100]) + "\n")
    with pytest.raises(DataError, match="has 99 rows; expected 15625"):
        NB201Table.load(short)
    nocol = tmp_path / "nocol.csv"
    nocol.write_text("index,arch\n0,x\n")
    with pytest.raises(DataError, match="lacks required columns"):
        NB201Table.load(nocol)
    badarch = tmp_path / "badarch.csv"
    badarch.write_text("\n".join([lines[0], lines[1].replace("avg_pool_3x3", "max_pool"), *lines[2:]]) + "\n")
    with pytest.raises(DataError, match="line 2: unknown nb201 operation 'max_pool'"):
        NB201Table.load(badarch)
    monkeypatch.delenv("EVONAS_NB201", raising=False)
    with pytest.raises(DataError, match="EVONAS_NB201"):
        NB201Table.load()


def _nb201(path, **params):
    return (ComponentConfig("nb201", {"path": str(path), **params}),)


def test_tabular_evaluator(nb201_path):
    ev = TabularEvaluator(TabularEvaluatorConfig(tables=_nb201(nb201_path)), SPACE)
    a = SPACE.parse("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|")
    out = ev.evaluate(a, seed=0)
    assert out.metrics["cifar10_test_acc"] == pytest.approx(94.3733)
    assert set(out.metrics) == set(ev.metric_names)
    assert out.cost == pytest.approx(ev.table.owner("params_M").train_time(a, "cifar10-valid", 12))
    noisy = TabularEvaluator(TabularEvaluatorConfig(tables=_nb201(nb201_path), metric="cifar10-valid_valid_acc", noisy=True), SPACE)
    values = {noisy.evaluate(a, seed=s).metrics["cifar10-valid_valid_acc"] for s in range(40)}
    assert len(values) > 1
    assert noisy.evaluate(a, 5).metrics == noisy.evaluate(a, 5).metrics
    import pickle

    clone = pickle.loads(pickle.dumps(ev))
    assert clone.evaluate(a, 0) == out
    with pytest.raises(Exception, match="per-seed"):
        TabularEvaluator(TabularEvaluatorConfig(tables=_nb201(nb201_path), noisy=True), SPACE)
    with pytest.raises(UnknownChoiceError):
        TabularEvaluator(TabularEvaluatorConfig(tables=_nb201(nb201_path), report=("nope",)), SPACE)
    cheap = TabularEvaluator(TabularEvaluatorConfig(tables=_nb201(nb201_path, cost_epochs=200)), SPACE)
    assert cheap.evaluate(a, 0).cost == pytest.approx(out.cost * 200 / 12)


def _write_latency(path, archs, column="latency_ms"):
    lines = [f"arch,{column},energy"]
    lines += [f"{SPACE.format(a)},{1.5 + sum(a) / 10},{len(a)}" for a in archs]
    path.write_text("\n".join(lines) + "\n")


def test_a_second_table_joins_by_architecture(nb201_path, tmp_path):
    archs = get_space("nb201").all_archs()
    lat = tmp_path / "latency.csv"
    _write_latency(lat, archs)
    config = TabularEvaluatorConfig(
        tables=(*_nb201(nb201_path), ComponentConfig("file", {"path": str(lat), "metrics": ("latency_ms",)})),
        report=("cifar10_test_acc", "latency_ms"),
    )
    ev = TabularEvaluator(config, SPACE)
    a = (3, 3, 3, 1, 3, 2)
    out = ev.evaluate(a, 0)
    assert out.metrics["latency_ms"] == pytest.approx(1.5 + 15 / 10)
    assert out.metrics["cifar10_test_acc"] == pytest.approx(ev.table.query(a, "cifar10_test_acc"))
    # JSON tables join the same way, and the cost of a query sums the tables' costs
    js = tmp_path / "latency.json"
    js.write_text(json.dumps({SPACE.format(b): {"lat": 2.0, "secs": 10.0} for b in archs[:5]}))
    partial = TabularEvaluator(TabularEvaluatorConfig(
        tables=(*_nb201(nb201_path), ComponentConfig("file", {"path": str(js), "cost": "secs", "cost_scale": 0.5})),
        report=("lat",)), SPACE)
    inside = partial.evaluate(archs[0], 0)
    assert inside.metrics["lat"] == 2.0
    assert inside.cost == pytest.approx(ev.evaluate(archs[0], 0).cost + 5.0)
    with pytest.raises(DataError, match="is not in table"):
        partial.evaluate(archs[-1], 0)


def test_bad_tables_are_one_line_errors(tmp_path):
    archs = get_space("nb201").all_archs()[:3]
    good = tmp_path / "good.csv"
    _write_latency(good, archs)

    def load(path, **params):
        return FileTable(FileTableConfig(path=str(path), **params), SPACE)

    assert len(load(good)) == 3 and load(good).metrics == ("latency_ms", "energy")
    with pytest.raises(DataError, match="has no key column 'cell'; its columns: arch, latency_ms, energy"):
        load(good, key="cell")
    with pytest.raises(DataError, match="has no column 'power'"):
        load(good, metrics=("power",))
    dup = tmp_path / "dup.csv"
    dup.write_text(good.read_text() + f"{SPACE.format(archs[1])},9,9\n")
    with pytest.raises(DataError, match="line 5 repeats architecture .* \\(first at line 3\\)"):
        load(dup)
    text = tmp_path / "text.csv"
    text.write_text(f"arch,latency_ms\n{SPACE.format(archs[0])},fast\n")
    with pytest.raises(DataError, match="line 2: column 'latency_ms' has a non-numeric value 'fast'"):
        load(text)
    foreign = tmp_path / "foreign.csv"
    foreign.write_text("arch,latency_ms\nconv-pool-skip,1\n")
    with pytest.raises(DataError, match="line 2: malformed nb201 architecture 'conv-pool-skip'"):
        load(foreign)
    with pytest.raises(DataError, match="does not exist"):
        load(tmp_path / "missing.csv")
    clash = tmp_path / "clash.csv"
    _write_latency(clash, archs)
    with pytest.raises(ConfigError, match="metric 'latency_ms' is served by two tables"):
        JoinedTable([load(good), load(clash)], SPACE)
