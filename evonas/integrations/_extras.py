"""Optional dependencies of the integrations, and the one-line error when one is missing."""

from __future__ import annotations

import importlib
from types import ModuleType

from evonas.errors import ConfigError, one_line_error


class MissingExtraError(ConfigError, ImportError):
    """An integration needs a package that cannot be imported.

    It is an :class:`ImportError`, so ``import evonas.integrations.optuna`` fails the way a
    missing import does, and a :class:`~evonas.errors.ConfigError`, so a config that chooses
    an integration's strategy is refused in one line (exit code 2 on the command line). The
    message names the evonas extra that installs the package.
    """


EXTRAS: dict[str, str] = {"optuna": "optuna", "ray.tune": "tune"}
"""Module an integration needs -> the evonas extra that installs it."""


def missing_extra(module: str, who: str, cause: BaseException) -> MissingExtraError:
    """The error for ``who`` when importing ``module`` failed with ``cause``."""
    extra = EXTRAS[module]
    error = MissingExtraError(
        f"{who} needs {module}, which cannot be imported ({one_line_error(cause)}); "
        f"install it with: pip install 'evonas[{extra}]'"
    )
    error.name = module
    return error


def import_extra(module: str, who: str) -> ModuleType:
    """``module`` imported, or :class:`MissingExtraError` naming the extra to install.

    Args:
        module: A key of :data:`EXTRAS` (``"optuna"`` or ``"ray.tune"``).
        who: What needs it, for the message (e.g. ``"strategy 'optuna_tpe'"``).
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise missing_extra(module, who, exc) from exc
