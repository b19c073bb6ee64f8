"""Errors raised for bad user input.

Every error here is a :class:`ValueError` whose message quotes the offending value and
says what would be valid. The command line prints the message as one line on stderr and
exits with code 2.
"""

from __future__ import annotations

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
