"""The fields of log records, checked whenever a log is read.

A run kind declares the record types it reads back and the fields it relies on
(:func:`declare_records`); :class:`~evonas.runs.RunDir` checks every record of a declared
type as it reads the log, so a malformed record (a hand-edited log, even one whose
checksums were recomputed, or a log from another version) is one
:class:`~evonas.errors.RunDirError` naming the line and the field, before any of it is
used. Records may carry more fields than declared.

Field types are written like config field types: ``int``, ``float``, ``str``, ``bool``,
``list[int]``, ``dict[str, JsonFloat]``, ``X | None``, ``Literal[...]``, ``Any``
(:data:`evonas._json.JsonFloat` is a number as the logs write it: non-finite ones as their
repr strings). A mapping of field names is a nested record, and a list holding one such
mapping a list of them.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any

from evonas.errors import RunDirError

_Node = tuple[Any, ...]
"""A compiled field type: ``(tag, describe, *args)``."""

_DECLARED: dict[tuple[str, str], dict[str, _Node]] = {}


def declare_records(kind: str, **record_types: Mapping[str, Any]) -> None:
    """Declare the fields of the record types that runs of ``kind`` read back.

    Args:
        kind: The run kind (``search``, ``supernet``, ...).
        **record_types: Record type (the ``type`` field) -> field name -> field type.

    Example::

        declare_records("search", eval={"eval_id": int, "arch": list[int], "evaluation": {"cost": JsonFloat}})
    """
    for record_type, fields in record_types.items():
        _DECLARED[(kind, record_type)] = {name: _compile(tp) for name, tp in fields.items()}


def check_records(kind: str | None, records: Iterable[tuple[int, dict[str, Any]]], log: str) -> None:
    """Check ``(line number, record)`` pairs of a log of a run of ``kind`` against the declarations.

    Raises:
        RunDirError: A record of a declared type lacks a field or has one of another type.
    """
    if not kind:
        return
    for number, record in records:
        fields = _DECLARED.get((kind, str(record.get("type"))))
        if fields is None:
            continue
        problem = _record_problem(record, fields, "")
        if problem is not None:
            raise RunDirError(
                f"log {log} is malformed at line {number}: its {record.get('type')!r} record {problem}; "
                "restore the log or start a new run"
            )


def _record_problem(record: Mapping[str, Any], fields: Mapping[str, _Node], prefix: str) -> str | None:
    for name, node in fields.items():
        if name not in record:
            return f"lacks the field {prefix + name!r}"
        problem = _problem(record[name], node, prefix + name)
        if problem is not None:
            return problem
    return None


def _problem(value: Any, node: _Node, path: str) -> str | None:
    """Why ``value`` (at ``path``) is not of the compiled type ``node``, or None."""
    tag = node[0]
    ok: bool
    if tag == "any":
        return None
    if tag == "int":
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif tag == "float":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif tag == "str":
        ok = isinstance(value, str)
    elif tag == "bool":
        ok = isinstance(value, bool)
    elif tag == "none":
        ok = value is None
    elif tag == "literal":
        ok = any(value == v and type(value) is type(v) for v in node[2])
    elif tag == "union":
        ok = any(_problem(value, option, path) is None for option in node[2])
    elif tag == "list":
        if not isinstance(value, list):
            ok = False
        else:
            for i, item in enumerate(value):
                problem = _problem(item, node[2], f"{path}[{i}]")
                if problem is not None:
                    return problem
            return None
    elif tag == "dict":
        if not isinstance(value, dict):
            ok = False
        else:
            for key, item in value.items():
                problem = _problem(item, node[2], f"{path}.{key}")
                if problem is not None:
                    return problem
            return None
    else:  # "record"
        if not isinstance(value, dict):
            ok = False
        else:
            return _record_problem(value, node[2], f"{path}.")
    return None if ok else f"has {path}={value!r:.80}; expected {node[1]}"


def _compile(tp: Any) -> _Node:
    from evonas.config import type_name

    if isinstance(tp, Mapping):
        return ("record", "a mapping", {name: _compile(sub) for name, sub in tp.items()})
    if isinstance(tp, list):
        (item,) = tp
        return ("list", "a list of mappings", _compile(item))
    if tp is Any:
        return ("any", "anything")
    simple = {int: "int", float: "float", str: "str", bool: "bool", type(None): "none"}
    if tp in simple:
        return (simple[tp], type_name(tp))
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Literal:
        return ("literal", type_name(tp), args)
    if origin in (typing.Union, types.UnionType):
        return ("union", type_name(tp), tuple(_compile(a) for a in args))
    if origin is list:
        return ("list", type_name(tp), _compile(args[0]))
    if origin is dict:
        return ("dict", type_name(tp), _compile(args[1]))
    raise TypeError(f"unsupported log record field type {tp!r}")


def step_history(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records of a step-counting run's actual history.

    Each ``resume`` record (``from_step``: the step of the checkpoint it resumed from)
    supersedes the records before it of later steps: they describe work the kill lost,
    which the records after it describe again. Records without a ``step`` count as step 0.
    """
    out: list[dict[str, Any]] = []
    for rec in records:
        if rec.get("type") == "resume":
            out = [r for r in out if r.get("step", 0) <= rec["from_step"] or r.get("type") == "resume"]
        out.append(rec)
    return out
