"""Errors raised for bad user input, and for runs that produced nothing.

Every :class:`EvonasError` is a :class:`ValueError` whose message quotes the offending
value and says what would be valid. The command line prints the message as one line on
stderr and exits with code 2. A :class:`RunFailedError` is not bad input but a run whose
work all failed (every evaluation, every member); the command line exits with code 1.
"""

from __future__ import annotations

import traceback
from collections.abc import Iterable


class EvonasError(ValueError):
    """Base class of the user-input errors of evonas (exit code 2 on the command line)."""


class ConfigError(EvonasError):
    """A config key or value is invalid."""


class ArchError(EvonasError):
    """An architecture (string, tuple or index) is malformed or of another space."""


class DataError(EvonasError):
    """A data file or directory is missing, unreadable or malformed."""


class RunDirError(EvonasError):
    """A run directory is missing, already used, or inconsistent."""


class UntrustedFileError(RunDirError):
    """A file of a run directory is not what this user's evonas wrote: a signed file (a
    checkpoint, a fitted predictor) without this user's signature, or an entry that is a
    symbolic link or not a regular file. Its content is never unpickled or followed."""


class PluginError(EvonasError):
    """A plugin cannot be imported, or registers a name that is already taken."""


class CapabilityError(ConfigError):
    """A component needs a capability that the configured search space does not declare."""


class UnknownChoiceError(EvonasError):
    """A name is not among the registered choices.

    Args:
        kind: What was looked up (e.g. ``"dataset"``).
        name: The name that was asked for.
        choices: The valid names.
    """

    def __init__(self, kind: str, name: object, choices: Iterable[str]) -> None:
        self.kind = kind
        self.name = name
        self.choices = list(choices)
        super().__init__(f"unknown {kind} {name!r}; valid choices: {', '.join(self.choices)}")


def one_line_error(exc: BaseException) -> str:
    """Why something failed, on one line: exception type and message, whitespace collapsed."""
    text = "".join(traceback.format_exception_only(type(exc), exc))
    return " ".join(text.split())


class RunFailedError(RuntimeError):
    """A run finished without a single success (exit code 1 on the command line).

    Args:
        message: What failed, with the first error.
        run_dir: The run directory, which holds the log of every failure.
    """

    def __init__(self, message: str, run_dir: object = None) -> None:
        self.run_dir = run_dir
        super().__init__(message)
