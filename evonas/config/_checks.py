"""The one vocabulary of value checks: numbers in ranges, paths, registered components.

Config dataclasses declare their constraints on the field type::

    epochs: Annotated[int, Range(1)] = 10
    lr: Annotated[float, Range(0, low_open=True)] = 0.1
    root: Annotated[str | None, IsPath()] = None
    executor: Annotated[ComponentConfig, Registered("executor")] = ...

The loader (:func:`evonas.config.from_dict`) reads these markers and checks a value with
its full dotted key in the message; :class:`Checked` makes a dataclass check the same
constraints when it is built directly in Python. :func:`check_int` and
:func:`check_number` are the same checks for code that validates arguments itself
(predictor hyper-parameters, pruner parameters), so every message has one form::

    invalid value 0 for 'train.epochs'; expected an integer >= 1
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import typing
from collections.abc import Sequence
from typing import Any

from evonas.errors import ConfigError, EvonasError

# Upper bounds of values that size work or memory. A value beyond them is a typo or an
# attack (``channels: 100000000000000000000``), refused with the valid range before anything
# is allocated; each is far above what any run of this package needs.
MAX_SEED = 2**32 - 1
"""Largest seed (NumPy's legacy and scikit-learn's ``random_state`` limit)."""
MAX_BATCH_SIZE = 65_536
"""Largest batch of images (or architectures) processed at once."""
MAX_WORKERS = 1024
"""Most CPU threads, worker processes or actors."""
MAX_POPULATION = 100_000
"""Largest population of an evolutionary strategy (and tournament)."""
MAX_ARCHS = 1_000_000
"""Most architectures held at once: rounds, memories, pools, archives, caches, test sets."""
MAX_COUNT = 10**9
"""Largest count of things done one after another: steps, epochs, evaluations, images."""


def _describe(where: str, owner: str | None) -> str:
    return f"{where!r}" if owner is None else f"{where!r} of {owner}"


def _bounds(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    if low is not None and high is not None:
        return f"in {'(' if low_open else '['}{_num(low)}, {_num(high)}{')' if high_open else ']'}"
    if low is not None:
        return f"{'>' if low_open else '>='} {_num(low)}"
    if high is not None:
        return f"{'<' if high_open else '<='} {_num(high)}"
    return ""


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() and abs(v) < 1e15 else repr(v)


def _fail(
    value: Any, where: str, owner: str | None, expected: str, optional: bool, error: type[EvonasError]
) -> EvonasError:
    more = " or null" if optional else ""
    return error(f"invalid value {value!r} for {_describe(where, owner)}; expected {expected}{more}")


def check_int(
    value: Any,
    where: str,
    low: int | None = None,
    high: int | None = None,
    *,
    optional: bool = False,
    owner: str | None = None,
    error: type[EvonasError] = ConfigError,
) -> int | None:
    """Return ``value`` as an ``int`` in ``[low, high]`` (or None when ``optional``).

    Args:
        value: The value to check (bools are not integers).
        where: Its name, e.g. ``"train.epochs"``.
        low: Smallest valid value (None: no bound).
        high: Largest valid value (None: no bound).
        optional: None is valid too.
        owner: Whose parameter it is, e.g. ``"GAEPredictor"`` (in the message).
        error: The exception class to raise.

    Raises:
        EvonasError: ``error`` with the one message form of the module docstring.
    """
    if value is None and optional:
        return None
    bound = _bounds(low, high, False, False)
    expected = "an integer" + (f" {bound}" if bound else "")
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise _fail(value, where, owner, expected, optional, error)
    number = int(value)
    if (low is not None and number < low) or (high is not None and number > high):
        raise _fail(value, where, owner, expected, optional, error)
    return number


def check_number(
    value: Any,
    where: str,
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
    optional: bool = False,
    owner: str | None = None,
    error: type[EvonasError] = ConfigError,
) -> float | None:
    """Return ``value`` as a finite ``float`` within the bounds (or None when ``optional``).

    Args:
        value: The value to check (bools are not numbers; NaN and infinities never pass).
        where: Its name.
        low: Lower bound (None: none).
        high: Upper bound (None: none).
        low_open: The lower bound itself is invalid.
        high_open: The upper bound itself is invalid.
        optional: None is valid too.
        owner: Whose parameter it is (in the message).
        error: The exception class to raise.

    Raises:
        EvonasError: ``error`` with the one message form of the module docstring.
    """
    if value is None and optional:
        return None
    bound = _bounds(low, high, low_open, high_open)
    expected = "a finite number" + (f" {bound}" if bound else "")
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
        raise _fail(value, where, owner, expected, optional, error)
    v = float(value)
    if low is not None and (v < low or (low_open and v == low)):
        raise _fail(value, where, owner, expected, optional, error)
    if high is not None and (v > high or (high_open and v == high)):
        raise _fail(value, where, owner, expected, optional, error)
    return v


def check_choice(
    value: Any, where: str, choices: Sequence[Any], *, owner: str | None = None, error: type[EvonasError] = ConfigError
) -> Any:
    """Return ``value`` if it is one of ``choices`` (``True`` is not ``1``), else raise listing them."""
    ok = any(value == c and isinstance(value, bool) == isinstance(c, bool) for c in choices)
    if not ok:
        valid = ", ".join(repr(c) for c in choices)
        raise error(f"invalid value {value!r} for {_describe(where, owner)}; valid values: {valid}")
    return value


# --------------------------------------------------------------------------- markers
@dataclasses.dataclass(frozen=True)
class Range:
    """Numeric bounds of a config field (the field's type says int or float).

    Args:
        low: Smallest valid value (None: none).
        high: Largest valid value (None: none).
        low_open: The lower bound itself is invalid.
        high_open: The upper bound itself is invalid.
    """

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def check(self, value: Any, where: str, integer: bool, optional: bool = False) -> None:
        if value is None:
            return
        if integer:  # integer bounds are closed
            low = None if self.low is None else int(self.low)
            high = None if self.high is None else int(self.high)
            check_int(value, where, low, high, optional=optional)
        else:
            check_number(value, where, self.low, self.high, low_open=self.low_open, high_open=self.high_open,
                         optional=optional)


@dataclasses.dataclass(frozen=True)
class IsPath:
    """A config field holding a filesystem path.

    A relative path written in a config file is relative to the file's folder; one given
    on the command line (``key=value``) is relative to the current directory. The loader
    stores it absolute.
    """


@dataclasses.dataclass(frozen=True)
class Registered:
    """A ``{name, params}`` section naming an entry of the registry of ``kind``.

    The loader checks the name against the registry and ``params`` against the entry's
    ``Config`` dataclass, and stores the parameters with every default filled in.
    """

    kind: str


_MARKERS: dict[Any, dict[str, tuple[Any, tuple[Any, ...]]]] = {}


def field_markers(cls: Any) -> dict[str, tuple[Any, tuple[Any, ...]]]:
    """``field name -> (bare type, markers)`` of a config dataclass (computed once per class)."""
    cached = _MARKERS.get(cls)
    if cached is not None:
        return cached
    hints = typing.get_type_hints(cls, include_extras=True)
    out = {}
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        markers: tuple[Any, ...] = ()
        if typing.get_origin(tp) is typing.Annotated:
            args = typing.get_args(tp)
            tp, markers = args[0], tuple(args[1:])
        out[f.name] = (tp, markers)
    _MARKERS[cls] = out
    return out


def is_int_type(tp: Any) -> bool:
    """Whether ``tp`` is ``int`` or ``int | None``."""
    args = typing.get_args(tp) or (tp,)
    return int in args and float not in args


def is_optional_type(tp: Any) -> bool:
    """Whether ``tp`` admits None."""
    return type(None) in typing.get_args(tp)


class Checked:
    """Mixin of config dataclasses: ``Range`` constraints are checked on construction.

    The loader checks them first, with the full dotted key; this keeps configs built
    directly in Python (tests, scripts) just as valid. Subclasses that define their own
    ``__post_init__`` call ``super().__post_init__()``.
    """

    def __post_init__(self) -> None:
        for name, (tp, markers) in field_markers(type(self)).items():
            for marker in markers:
                if isinstance(marker, Range):
                    marker.check(getattr(self, name), name, is_int_type(tp), is_optional_type(tp))
