"""The one JSON form of run-directory records: non-finite floats as their repr strings.

JSON has no NaN or infinity; evonas writes them as ``"nan"``, ``"inf"`` and ``"-inf"``
(Python's ``repr``), which :func:`float` reads back. NumPy scalars and arrays become
plain numbers and lists, tuples become lists and mapping keys strings.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np

JsonFloat = float | Literal["nan", "inf", "-inf"]
"""A float as run-directory records hold it (the field type of log record declarations)."""


def json_float(value: float) -> float | str:
    """``value`` as a JSON number, or its repr string when it is not finite."""
    v = float(value)
    return v if math.isfinite(v) else repr(v)


def jsonable(value: Any) -> Any:
    """A JSON-ready copy of ``value`` (see the module docstring)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, (float, np.floating)):
        return json_float(float(value))
    if isinstance(value, np.integer):
        return int(value)
    return value
