from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Annotated, Literal

import pytest

from evonas.config import (
    Checked,
    ComponentConfig,
    IsPath,
    Range,
    Registered,
    apply_overrides,
    check_int,
    check_number,
    from_dict,
    load_config,
    to_dict,
)
from evonas.errors import ConfigError, UnknownChoiceError


@dataclass(frozen=True)
class Inner:
    lr: float = 0.1
    mode: Literal["a", "b"] = "a"


@dataclass(frozen=True)
class Outer:
    name: str
    inner: Inner = field(default_factory=Inner)
    sizes: tuple[int, ...] = (1, 2)
    limit: int | None = None
    flag: bool = False


def test_builds_nested_with_defaults():
    cfg = from_dict(Outer, {"name": "x", "inner": {"lr": 1}, "sizes": [3, 4]})
    assert cfg == Outer("x", Inner(1.0, "a"), (3, 4), None, False)
    assert to_dict(cfg) == {"name": "x", "inner": {"lr": 1.0, "mode": "a"}, "sizes": [3, 4], "limit": None, "flag": False}


@pytest.mark.parametrize(
    "data, message",
    [
        ({"name": "x", "nmae": 1}, "unknown key 'nmae'; valid keys: flag, inner, limit, name, sizes"),
        ({"name": "x", "inner": {"rate": 1}}, "unknown key 'inner.rate'; valid keys: lr, mode"),
        ({}, "missing required key 'name'"),
        ({"name": 3}, "invalid value 3 for 'name'; expected a string"),
        ({"name": "x", "inner": {"mode": "c"}}, "invalid value 'c' for 'inner.mode'; valid values: 'a', 'b'"),
        ({"name": "x", "sizes": "12"}, "expected a list of integers"),
        ({"name": "x", "sizes": [1, "a"]}, "invalid value 'a' for 'sizes[1]'"),
        ({"name": "x", "limit": 1.5}, "invalid value 1.5 for 'limit'"),
        ({"name": "x", "flag": "yes"}, "expected true or false"),
        ({"name": "x", "inner": 5}, "inner must be a mapping"),
        ({"name": "x", "limit": True}, "invalid value True for 'limit'"),
    ],
)
def test_bad_values_name_the_key_and_the_valid_choices(data, message):
    with pytest.raises(ConfigError) as info:
        from_dict(Outer, data)
    assert message in str(info.value)


def test_overrides(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("name: x\ninner: {lr: 0.5}\n")
    cfg = load_config(Outer, p, ["inner.lr=0.25", "sizes=[7]", "limit=3", "inner.mode=b"])
    assert cfg == Outer("x", Inner(0.25, "b"), (7,), 3, False)
    with pytest.raises(ConfigError, match="unknown key 'inner.nope'"):
        load_config(Outer, p, ["inner.nope=1"])
    with pytest.raises(ConfigError, match="must have the form key.sub=value"):
        apply_overrides({}, ["novalue"])
    with pytest.raises(ConfigError, match="'name' is not a mapping or a list"):
        apply_overrides({"name": "x"}, ["name.sub=1"])


def test_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(Outer, tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="is not valid YAML at line"):
        load_config(Outer, bad)
    lst = tmp_path / "list.yaml"
    lst.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        load_config(Outer, lst)


@dataclass(frozen=True)
class Constrained(Checked):
    epochs: Annotated[int, Range(1)] = 3
    rate: Annotated[float, Range(0, 1, low_open=True)] = 0.5
    limit: Annotated[int | None, Range(2, 9)] = None
    data: Annotated[str | None, IsPath()] = None
    executor: Annotated[ComponentConfig, Registered("executor")] = field(default_factory=lambda: ComponentConfig("serial"))
    tables: tuple[Annotated[ComponentConfig, Registered("table")], ...] = ()


@pytest.mark.parametrize(
    "data, message",
    [
        ({"epochs": 0}, "invalid value 0 for 'epochs'; expected an integer >= 1"),
        ({"rate": 0}, "invalid value 0.0 for 'rate'; expected a finite number in (0, 1]"),
        ({"rate": 1.5}, "invalid value 1.5 for 'rate'; expected a finite number in (0, 1]"),
        ({"limit": 10}, "invalid value 10 for 'limit'; expected an integer in [2, 9]"),
        ({"executor": {"name": "dask"}}, "unknown executor 'dask'; valid choices: ray, serial"),
        ({"executor": {"name": "serial", "params": {"timeout": 1}}}, "unknown key 'executor.params.timeout'; valid keys: timeout_s"),
        ({"executor": {"name": "serial", "params": {"timeout_s": -1}}}, "invalid value -1.0 for 'executor.params.timeout_s'"),
        ({"tables": [{"name": "file", "params": {}}]}, "missing required key 'tables[0].params.path'"),
    ],
)
def test_declared_constraints_have_one_message_form(data, message):
    with pytest.raises((ConfigError, UnknownChoiceError)) as info:
        from_dict(Constrained, data)
    assert message in str(info.value)


def test_constraints_hold_for_configs_built_in_python_too():
    with pytest.raises(ConfigError, match="invalid value 0 for 'epochs'; expected an integer >= 1"):
        Constrained(epochs=0)
    with pytest.raises(ConfigError, match=r"invalid value 7 for 'k' of Owner; expected an integer in \[1, 3\]"):
        check_int(7, "k", 1, 3, owner="Owner")
    assert check_number(None, "x", 0, optional=True) is None
    with pytest.raises(ConfigError, match="expected a finite number >= 0 or null"):
        check_number(float("nan"), "x", 0, optional=True)


def test_registered_components_get_their_defaults_filled_in():
    cfg = from_dict(Constrained, {})
    assert cfg.executor == ComponentConfig("serial", {"timeout_s": None})
    cfg = from_dict(Constrained, {"executor": {"name": "ray", "params": {"num_cpus": 2}}})
    assert cfg.executor.params["num_cpus"] == 2 and cfg.executor.params["max_retries"] == 3
    assert cfg.executor.typed("executor").num_cpus == 2


def test_paths_in_a_file_resolve_against_the_file_and_overrides_against_the_cwd(tmp_path, monkeypatch):
    (tmp_path / "conf").mkdir()
    cfg_file = tmp_path / "conf" / "c.yaml"
    cfg_file.write_text("data: ../data/x.csv\ntables: [{name: file, params: {path: t.csv}}]\n")
    monkeypatch.chdir(tmp_path)
    cfg = load_config(Constrained, cfg_file)
    assert cfg.data == str(tmp_path / "data" / "x.csv")
    assert cfg.tables[0].params["path"] == str(tmp_path / "conf" / "t.csv")
    elsewhere = tmp_path / "work"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    cfg = load_config(Constrained, cfg_file, ["data=mine.csv", "tables.0.params.path=other.csv"])
    assert cfg.data == str(elsewhere / "mine.csv")
    assert cfg.tables[0].params["path"] == str(elsewhere / "other.csv")
    assert load_config(Constrained, cfg_file, ["data=/abs/y.csv"]).data == "/abs/y.csv"
    assert os.path.isabs(load_config(Constrained, cfg_file).data)


def test_overrides_index_lists_and_read_exponent_floats(tmp_path):
    data = apply_overrides({"a": [{"b": 1}, {"b": 2}]}, ["a.1.b=3", "lr=1e-3", "big=1.0e6", "neg=-2E-2"])
    assert data == {"a": [{"b": 1}, {"b": 3}], "lr": 0.001, "big": 1e6, "neg": -0.02}
    with pytest.raises(ConfigError, match="'5' is not an index of a list of 2 item"):
        apply_overrides({"a": [1, 2]}, ["a.5=0"])
    p = tmp_path / "c.yaml"
    p.write_text("name: x\ninner: {lr: 5e-4}\n")
    assert load_config(Outer, p).inner.lr == 5e-4


def test_unreadable_config_files_are_one_line_errors(tmp_path):
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"name: \xff\xfe\n")
    with pytest.raises(ConfigError, match="is not UTF-8 text"):
        load_config(Outer, binary)
    with pytest.raises(ConfigError, match="is a directory"):
        load_config(Outer, tmp_path)


@dataclass(frozen=True)
class WithDefaults(Checked):
    inner: Inner = field(default_factory=lambda: Inner(lr=0.05, mode="b"))
    executor: Annotated[ComponentConfig, Registered("executor")] = field(
        default_factory=lambda: ComponentConfig("ray", {"num_cpus": 2}))


def test_partial_sections_keep_the_defaults_they_leave_out():
    cfg = from_dict(WithDefaults, {"inner": {"lr": 0.5}, "executor": {"params": {"max_in_flight": 1}}})
    assert cfg.inner == Inner(lr=0.5, mode="b")  # the field's default, not Inner's own
    assert cfg.executor.name == "ray" and cfg.executor.params["num_cpus"] == 2 and cfg.executor.params["max_in_flight"] == 1
    other = from_dict(WithDefaults, {"executor": {"name": "serial"}})
    assert other.executor == ComponentConfig("serial", {"timeout_s": None})  # another component starts afresh
