from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pytest

from evonas.config import apply_overrides, from_dict, load_config, to_dict
from evonas.errors import ConfigError


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
        ({"name": "x", "sizes": "12"}, "expected a list of int"),
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
    with pytest.raises(ConfigError, match="'name' is not a mapping"):
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
