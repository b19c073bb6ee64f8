"""Typed configs: frozen dataclasses loaded from YAML with every key checked.

An unknown key is an error naming the key and listing the valid ones; a value of the
wrong type is an error quoting it and naming the expected type. Field constraints
(:mod:`evonas.config._checks`: ranges, paths, registered components) are read from the
field types. Command-line overrides ``a.b=value`` (``a.0.b=value`` indexes a list) are
parsed with YAML (never ``eval``) and go through the same checks.

The path rule: a relative path in a config file is relative to the file's folder; a
relative path given as an override is relative to the current directory. Both are stored
absolute, so a run directory's ``config.yaml`` means the same from anywhere.
"""

from __future__ import annotations

import dataclasses
import os
import re
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

import yaml

from evonas.config._checks import IsPath, Range, Registered, field_markers, is_int_type, is_optional_type
from evonas.errors import ConfigError, EvonasError

C = TypeVar("C")


@dataclass(frozen=True)
class ComponentConfig:
    """A registered component and its parameters: ``{name: ..., params: {...}}``.

    Attributes:
        name: The registered name (e.g. ``rea``, ``tabular``, ``ray``).
        params: Its parameters; checked against the entry's ``Config`` dataclass by the
            loader, which stores them with every default filled in.
    """

    name: str
    params: dict[str, Any] = field(default_factory=dict)

    def typed(self, kind: str) -> Any:
        """The entry's ``Config`` instance built from :attr:`params` (already checked)."""
        from evonas._registry import registry

        entry = registry(kind).get(self.name)
        return _entry_config(entry, self.params, f"{kind} {self.name!r} params", None)

    def build(self, kind: str, **context: Any) -> Any:
        """Call the registered entry with its typed config and ``context`` (see ``KINDS``)."""
        from evonas._registry import registry

        entry = registry(kind).get(self.name)
        return entry(self.typed(kind), **context)


class CliStr(str):
    """A string that came from the command line (its paths resolve against the cwd)."""


# ------------------------------------------------------------------------------ YAML
MAX_YAML_DEPTH = 64
"""Deepest nesting of mappings and lists that evonas reads from a YAML file or value."""


class YAMLAliasError(yaml.YAMLError):
    """A YAML text uses an alias (``*name``), which evonas never expands.

    A few hundred bytes of nested aliases expand to gigabytes ("billion laughs"), and no
    config or run-directory file needs them: write the value out instead.
    """

    def __init__(self, alias: str, line: int) -> None:
        self.alias = alias
        self.line = line
        super().__init__(f"alias *{alias} at line {line}")


class YAMLDepthError(yaml.YAMLError):
    """A YAML text nests mappings or lists deeper than :data:`MAX_YAML_DEPTH`."""

    def __init__(self, line: int) -> None:
        self.line = line
        super().__init__(f"nested deeper than {MAX_YAML_DEPTH} levels at line {line}")


class _Loader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that also reads ``1e-3`` and ``1e6`` as floats (YAML 1.2 style),
    refuses aliases (:class:`YAMLAliasError`) and bounds the nesting depth
    (:class:`YAMLDepthError`), so the parsed value is never larger than the text."""

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            raise YAMLAliasError(str(event.anchor), event.start_mark.line + 1)
        if self._depth >= MAX_YAML_DEPTH:
            raise YAMLDepthError(event.start_mark.line + 1)
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


class YAMLValueError(yaml.YAMLError):
    """A YAML scalar that Python cannot hold (an integer of thousands of digits)."""


def parse_yaml(text: str) -> Any:
    """``yaml.safe_load`` with exponent floats, without aliases and nested at most
    :data:`MAX_YAML_DEPTH` levels; raises ``yaml.YAMLError`` (:class:`YAMLAliasError`,
    :class:`YAMLDepthError`, :class:`YAMLValueError`) on bad input."""
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 -- _Loader is a SafeLoader subclass
    except ValueError as exc:  # raised by int() for numbers beyond sys.get_int_max_str_digits()
        raise YAMLValueError(str(exc)) from None


def yaml_problem(exc: yaml.YAMLError) -> str:
    """What is wrong with a YAML text, for a message that names the text first."""
    if isinstance(exc, YAMLAliasError):
        return f"uses the YAML alias *{exc.alias} at line {exc.line}; evonas does not expand aliases, write the value out"
    if isinstance(exc, YAMLDepthError):
        return f"nests mappings or lists deeper than {MAX_YAML_DEPTH} levels (line {exc.line})"
    if isinstance(exc, YAMLValueError):
        return f"holds a value Python cannot read ({exc})"
    mark = getattr(exc, "problem_mark", None)
    return "is not valid YAML" + (f" at line {mark.line + 1}" if mark is not None else "")


def yaml_mapping(data: bytes, what: str, error: type[EvonasError] = ConfigError) -> dict[str, Any]:
    """The mapping a YAML file holds, read from its bytes (an empty file is an error: write ``{}``).

    Args:
        data: The file's bytes (UTF-8).
        what: The file in messages, e.g. ``"config file '/x/a.yaml'"``.
        error: The exception class to raise.

    Raises:
        EvonasError: ``error`` when the bytes are not UTF-8, not YAML (or use aliases or
            nest too deep) or not a mapping.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{what} is not UTF-8 text (byte {exc.start})") from None
    try:
        value = parse_yaml(text)
    except yaml.YAMLError as exc:
        raise error(f"{what} {yaml_problem(exc)}") from None
    if value is None:
        raise error(f"{what} is empty (or null); it must hold a mapping of keys to values")
    if not isinstance(value, dict):
        held = {list: "a list", str: "a string", int: "an integer", float: "a number", bool: "a boolean"}.get(
            type(value), type(value).__name__
        )
        raise error(f"{what} must hold a mapping of keys to values; it holds {held} ({value!r:.60})")
    return value


def read_yaml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a YAML mapping; a missing, unreadable or malformed file raises ConfigError."""
    p = Path(path)
    if p.is_dir():
        raise ConfigError(f"config file {str(p)!r} is a directory; give the path of a YAML file")
    if not p.exists():
        raise ConfigError(f"config file {str(p)!r} does not exist")
    if not p.is_file():
        raise ConfigError(f"config file {str(p)!r} is not a regular file; give the path of a YAML file")
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise ConfigError(f"config file {str(p)!r} cannot be read: {exc.strerror}") from None
    return yaml_mapping(data, f"config file {str(p)!r}")


# ------------------------------------------------------------------------- overrides
def _mark_cli(value: Any) -> Any:
    if isinstance(value, str):
        return CliStr(value)
    if isinstance(value, dict):
        return {k: _mark_cli(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_mark_cli(v) for v in value]
    return value


def apply_overrides(data: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Apply ``key.sub=value`` overrides to a raw config mapping (a new dict is returned).

    Values are parsed as YAML, so ``lr=0.1`` and ``lr=1e-3`` are floats, ``name=rea`` a
    string and ``sizes=[1,2]`` a list; an integer key part indexes a list
    (``tables.1.params.path=...``). Strings from overrides are marked so that paths among
    them resolve against the current directory.
    """
    out = _deep_copy(data)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must have the form key.sub=value")
        key, _, raw = item.partition("=")
        parts = key.strip().split(".")
        if not all(parts):
            raise ConfigError(f"override {item!r} has an empty key part")
        try:
            value = parse_yaml(raw) if raw.strip() else ""
        except yaml.YAMLError as exc:
            raise ConfigError(f"override {item!r:.200}: value {raw!r:.100} {yaml_problem(exc)}") from None
        node: Any = out
        for p in parts[:-1]:
            node = _child(node, p, item)
        _assign(node, parts[-1], _mark_cli(value), item)
    return out


def _child(node: Any, part: str, item: str) -> Any:
    if isinstance(node, list):
        index = _index(node, part, item)
        if not isinstance(node[index], (dict, list)):
            node[index] = {}
        return node[index]
    child = node.get(part)
    if child is None:
        child = node[part] = {}
    if not isinstance(child, (dict, list)):
        raise ConfigError(f"override {item!r}: {part!r} is not a mapping or a list")
    return child


def _assign(node: Any, part: str, value: Any, item: str) -> None:
    if isinstance(node, list):
        node[_index(node, part, item)] = value
    else:
        node[part] = value


def _index(node: list[Any], part: str, item: str) -> int:
    if not part.isdigit() or int(part) >= len(node):
        raise ConfigError(f"override {item!r}: {part!r} is not an index of a list of {len(node)} item(s)")
    return int(part)


def _deep_copy(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _deep_copy(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_deep_copy(v) for v in data]
    return data


# --------------------------------------------------------------------------- checking
def from_dict(cls: type[C], data: Any, where: str = "config", base: str | os.PathLike[str] | None = None) -> C:
    """Build the dataclass ``cls`` from a mapping, checking keys, types and constraints.

    Args:
        cls: A dataclass type; nested dataclass fields are built recursively.
        data: The mapping (e.g. from YAML); ``None`` means ``{}``.
        where: Dotted path of ``data`` in the whole config, for error messages.
        base: Folder that relative paths of the file are relative to (None: leave them).

    Raises:
        ConfigError: Unknown or missing key, a value of the wrong type or out of range.
        UnknownChoiceError: A registered component's name is unknown.
    """
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where} must be a mapping of keys to values; got {data!r}")
    fields = {f.name: f for f in dataclasses.fields(cast(Any, cls)) if f.init}
    markers = field_markers(cls)
    for key in data:
        if key not in fields:
            valid = f"valid keys: {', '.join(sorted(fields))}" if fields else f"{where!r} takes no keys"
            raise ConfigError(f"unknown key {_join(where, str(key))!r}; {valid}")
    kwargs = {}
    for name, f in fields.items():
        path = _join(where, name)
        tp, marks = markers[name]
        if name in data:
            kwargs[name] = _checked(_over_default(f, data[name]), tp, marks, path, base)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"missing required key {path!r}")
        elif _has_registered(tp, marks):
            # Fill in a default component's parameters too, so resolved configs show them.
            factory = cast(Callable[[], Any], f.default_factory)
            default = f.default if f.default is not dataclasses.MISSING else factory()
            kwargs[name] = _checked(to_dict(default), tp, marks, path, base)
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"invalid {where}: {exc}") from None


def _over_default(f: dataclasses.Field[Any], value: Any) -> Any:
    """A partial section over the field's default: keys it leaves out keep the default's values.

    ``train: {optim: {lr: 0.01}}`` in a config whose default optimiser clips gradients keeps
    the clipping; a ``{name, params}`` section without a name keeps the default component
    (and its parameters) and one naming another component starts from that one's defaults.
    """
    if not isinstance(value, Mapping):
        return value
    if f.default is not dataclasses.MISSING:
        default = f.default
    elif f.default_factory is not dataclasses.MISSING:
        default = f.default_factory()
    else:
        return value
    if not dataclasses.is_dataclass(default) or isinstance(default, type):
        return value
    return _overlay(to_dict(default), value)


def _overlay(base: Any, value: Any) -> Any:
    if not isinstance(base, dict) or not isinstance(value, Mapping):
        return value
    if "name" in base and "name" in value and value["name"] != base["name"]:
        return value  # another component: its own defaults, not the default one's
    out = dict(base)
    for key, item in value.items():
        out[key] = _overlay(base.get(key), item)
    return out


def _has_registered(tp: Any, marks: tuple[Any, ...]) -> bool:
    if any(isinstance(m, Registered) for m in marks):
        return True
    return any(typing.get_origin(a) is typing.Annotated and _has_registered(a, typing.get_args(a)[1:])
               for a in typing.get_args(tp))


def _join(where: str, key: str) -> str:
    return key if where in ("", "config") else f"{where}.{key}"


def _checked(value: Any, tp: Any, marks: tuple[Any, ...], path: str, base: Any) -> Any:
    out = _coerce(value, tp, path, base)
    for mark in marks:
        if isinstance(mark, Range):
            mark.check(out, path, is_int_type(tp), is_optional_type(tp))
        elif isinstance(mark, IsPath):
            out = _resolve_path(value, out, path, base)
        elif isinstance(mark, Registered) and out is not None:
            out = _registered(out, mark.kind, path, base)
    return str(out) if isinstance(out, CliStr) else out


def _resolve_path(raw: Any, value: Any, path: str, base: Any) -> Any:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"invalid value {value!r} for {path!r}; expected a path")
    p = Path(value).expanduser()
    if p.is_absolute():
        return str(p)
    if isinstance(raw, CliStr):
        return os.path.abspath(p)
    return str(p) if base is None else os.path.abspath(Path(base) / p)


def _registered(value: ComponentConfig, kind: str, path: str, base: Any) -> ComponentConfig:
    from evonas._registry import registry

    entry = registry(kind).get(value.name)
    typed = _entry_config(entry, value.params, f"{path}.params", base)
    return ComponentConfig(str(value.name), {} if typed is None else to_dict(typed))


def _entry_config(entry: Any, params: Any, where: str, base: Any) -> Any:
    config_cls = getattr(entry, "Config", None)
    if config_cls is None:
        if params:
            raise ConfigError(f"{where!r} must be empty: this component takes no parameters; got {params!r}")
        return None
    return from_dict(config_cls, params, where, base)


def type_name(tp: Any) -> str:
    """How a field type is named in error messages (``an integer``, ``a list of numbers``, ...)."""
    return _type_name(tp)


def _type_name(tp: Any) -> str:
    if tp is type(None):
        return "null"
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _type_name(typing.get_args(tp)[0])
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        names: list[str] = []
        for a in typing.get_args(tp):
            if typing.get_origin(a) is typing.Literal:
                names.extend(repr(v) for v in typing.get_args(a))
            elif a is bool:
                names.extend(("true", "false"))
            else:
                names.append(_type_name(a))
        return ", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else names[0]
    if origin in (tuple, list):
        item = typing.get_args(tp)[0]
        plural = {int: "integers", float: "numbers", str: "strings", bool: "booleans"}.get(item)
        return f"a list of {plural or _type_name(item)}"
    if origin is dict or dataclasses.is_dataclass(tp):
        return "a mapping"
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(
        tp, getattr(tp, "__name__", str(tp))
    )


def _coerce(value: Any, tp: Any, path: str, base: Any) -> Any:
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin is typing.Annotated:
        args = typing.get_args(tp)
        return _checked(value, args[0], tuple(args[1:]), path, base)
    if origin is typing.Literal:
        choices = typing.get_args(tp)
        if not any(value == c and isinstance(value, bool) == isinstance(c, bool) for c in choices):
            raise ConfigError(
                f"invalid value {value!r} for {path!r}; valid values: {', '.join(repr(c) for c in choices)}"
            )
        return str(value) if isinstance(value, str) else value
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, path, base)
            except ConfigError as exc:
                errors.append(exc)
        if len(errors) == 1:
            raise errors[0]
        raise ConfigError(f"invalid value {value!r} for {path!r}; expected {_type_name(tp)}")
    if dataclasses.is_dataclass(tp):
        return from_dict(cast(type, tp), value, path, base)
    if origin in (tuple, list):
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
            raise ConfigError(f"invalid value {value!r} for {path!r}; expected {_type_name(tp)}")
        item_tp = typing.get_args(tp)[0]
        items = [_coerce(v, item_tp, f"{path}[{i}]", base) for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"invalid value {value!r} for {path!r}; expected a mapping")
        key_tp, item_tp = typing.get_args(tp) or (Any, Any)
        return {_coerce(k, key_tp, path, base): _coerce(v, item_tp, _join(path, str(k)), base) for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"invalid value {value!r} for {path!r}; expected true or false")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"invalid value {value!r} for {path!r}; expected an integer")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"invalid value {value!r} for {path!r}; expected a number")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"invalid value {value!r} for {path!r}; expected a string")
        return value  # a CliStr stays marked until a path marker has seen it; to_dict unmarks
    raise TypeError(f"config field {path!r} has an unsupported type {tp!r}")


def to_dict(cfg: Any) -> Any:
    """A plain (YAML-ready) form of a config dataclass: tuples become lists."""
    if dataclasses.is_dataclass(cfg) and not isinstance(cfg, type):
        return {f.name: to_dict(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}
    if isinstance(cfg, (tuple, list)):
        return [to_dict(v) for v in cfg]
    if isinstance(cfg, dict):
        return {str(k): to_dict(v) for k, v in cfg.items()}
    if isinstance(cfg, str):
        return str(cfg)
    return cfg


def load_config(
    cls: type[C], path: str | os.PathLike[str] | None = None, overrides: Sequence[str] = ()
) -> C:
    """Load ``cls`` from a YAML file (optional) plus overrides, all validated.

    Relative paths in the file resolve against its folder, those in overrides against
    the current directory (see the module docstring).
    """
    data = read_yaml(path) if path is not None else {}
    base = Path(path).resolve().parent if path is not None else None
    return from_dict(cls, apply_overrides(data, overrides), base=base)
