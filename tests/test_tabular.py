from __future__ import annotations

import gzip

import numpy as np
import pytest

from evonas.errors import DataError, UnknownChoiceError
from evonas.evaluation import TabularEvaluator, TabularEvaluatorConfig
from evonas.spaces import NB201Space
from evonas.tabular import NB201Table

SPACE = NB201Space()


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


def test_tabular_evaluator(nb201_path):
    ev = TabularEvaluator(TabularEvaluatorConfig(path=str(nb201_path)))
    a = SPACE.parse("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|")
    out = ev.evaluate(a, seed=0)
    assert out.metrics["cifar10_test_acc"] == pytest.approx(94.3733)
    assert set(out.metrics) == set(ev.metric_names)
    noisy = TabularEvaluator(TabularEvaluatorConfig(path=str(nb201_path), metric="cifar10-valid_valid_acc", noisy=True))
    values = {noisy.evaluate(a, seed=s).metrics["cifar10-valid_valid_acc"] for s in range(40)}
    assert len(values) > 1
    assert noisy.evaluate(a, 5).metrics == noisy.evaluate(a, 5).metrics
    import pickle

    clone = pickle.loads(pickle.dumps(ev))
    assert clone.evaluate(a, 0) == out
    with pytest.raises(Exception, match="per-seed"):
        TabularEvaluator(TabularEvaluatorConfig(path=str(nb201_path), noisy=True))
    with pytest.raises(UnknownChoiceError):
        TabularEvaluator(TabularEvaluatorConfig(path=str(nb201_path), report=("nope",)))
