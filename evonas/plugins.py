"""Plugins: user modules that register spaces, evaluators, strategies, ... with evonas.

A plugin is an ordinary Python module that calls :func:`evonas.register` at import time.
It is loaded by

* ``--plugin MODULE`` on the command line (repeatable): a module name
  (``my_lab.nas_plugin``) or the path of a ``.py`` file or a package directory;
* the ``evonas.plugins`` entry-point group of installed distributions, e.g. in the
  plugin's ``pyproject.toml``::

      [project.entry-points."evonas.plugins"]
      my_lab = "my_lab.nas_plugin"

Plugins given on the command line are recorded in the run directory, so ``--resume``
and ``evonas report`` load them again, and they reach Ray workers: the Ray executor ships
modules that are not installed in site-packages with the tasks' ``runtime_env``
(``py_modules``) and imports every plugin in each worker before its first task.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import sys
import sysconfig
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType
from typing import Any

from evonas.errors import EvonasError, PluginError

ENTRY_POINT_GROUP = "evonas.plugins"
ENV_VAR = "EVONAS_PLUGINS"
"""Module names a Ray worker imports before its first task (``os.pathsep``-separated)."""

_LOADED: dict[str, str] = {}  # spec as given -> module name, in load order
_ENTRY_POINTS_LOADED = False


def _module_name(spec: str) -> str:
    """Import the plugin ``spec`` (module name or path) and return its module name."""
    path = Path(spec).expanduser()
    looks_like_path = os.sep in spec or spec.endswith(".py") or path.exists()
    if looks_like_path:
        if not path.exists():
            raise PluginError(f"plugin {spec!r} does not exist; give a module name or the path of a .py file or package")
        if path.is_file() and path.suffix != ".py":
            raise PluginError(f"plugin {spec!r} is not a .py file or a package directory")
        if path.is_dir() and not (path / "__init__.py").is_file():
            raise PluginError(f"plugin directory {spec!r} is not a package (it has no __init__.py)")
        parent = str(path.resolve().parent)
        if parent not in sys.path:
            sys.path.insert(0, parent)
        name = path.stem if path.is_file() else path.resolve().name
    else:
        name = spec
    try:
        importlib.import_module(name)
    except EvonasError as exc:  # e.g. a name clash while registering
        raise PluginError(f"plugin {spec!r} failed to load: {' '.join(str(exc).split())}") from None
    except Exception as exc:  # noqa: BLE001 -- any import failure is reported on one line
        first = " ".join(str(exc).split()) or type(exc).__name__
        raise PluginError(f"plugin {spec!r} cannot be imported: {type(exc).__name__}: {first}") from None
    return name


def load_plugin(spec: str) -> str:
    """Import the plugin ``spec`` once; return its module name.

    Args:
        spec: A module name, or the path of a ``.py`` file or of a package directory
            (its parent folder is put on ``sys.path``).

    Raises:
        PluginError: It cannot be found or imported, or registering failed (e.g. a name
            already taken); the message is one line.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise PluginError(f"a plugin must be a module name or a path; got {spec!r}")
    if spec not in _LOADED:
        _LOADED[spec] = _module_name(spec)
    return _LOADED[spec]


def load_plugins(specs: Iterable[str]) -> list[str]:
    """:func:`load_plugin` for each spec, in order; return their module names."""
    return [load_plugin(s) for s in specs]


def load_entry_points() -> list[str]:
    """Import every plugin of the ``evonas.plugins`` entry-point group (once per process)."""
    global _ENTRY_POINTS_LOADED
    names: list[str] = []
    if _ENTRY_POINTS_LOADED:
        return names
    _ENTRY_POINTS_LOADED = True
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            ep.load()
        except EvonasError as exc:
            raise PluginError(f"plugin entry point {ep.name!r} ({ep.value}) failed to load: {exc}") from None
        except Exception as exc:  # noqa: BLE001 -- one line for any import failure
            raise PluginError(
                f"plugin entry point {ep.name!r} ({ep.value}) cannot be imported: {type(exc).__name__}: {exc}"
            ) from None
        names.append(ep.value)
    return names


def loaded_plugins() -> list[str]:
    """The plugins loaded explicitly in this process, as given (paths made absolute)."""
    out = []
    for spec in _LOADED:
        p = Path(spec).expanduser()
        out.append(str(p.resolve()) if (os.sep in spec or spec.endswith(".py")) and p.exists() else spec)
    return out


def _installed(module: ModuleType) -> bool:
    """Whether ``module`` comes from an installed location (every node of a cluster has it)."""
    origin = getattr(module, "__file__", None)
    if origin is None:
        return True
    roots = {sysconfig.get_paths()[k] for k in ("purelib", "platlib")}
    return any(Path(origin).resolve().is_relative_to(Path(r).resolve()) for r in roots)


def ray_runtime_env() -> dict[str, Any]:
    """The ``runtime_env`` that makes this process's plugins importable in Ray workers.

    Modules not installed in site-packages travel as ``py_modules`` (their top-level
    package, or the single file); :data:`ENV_VAR` lists the modules each worker imports.
    Empty without plugins.
    """
    if not _LOADED:
        return {}
    modules = list(dict.fromkeys(_LOADED.values()))
    shipped: list[str] = []
    for name in modules:
        top = sys.modules[name.split(".")[0]]
        if _installed(top):
            continue
        # A package travels as its folder, a single-file module as its file.
        path = str(next(iter(top.__path__))) if hasattr(top, "__path__") else str(top.__file__)
        if path not in shipped:
            shipped.append(path)
    env: dict[str, Any] = {"env_vars": {ENV_VAR: os.pathsep.join(modules)}}
    if shipped:
        env["py_modules"] = shipped
    return env


def load_from_env() -> None:
    """In a Ray worker: import the plugins named in :data:`ENV_VAR` (once)."""
    for name in filter(None, os.environ.get(ENV_VAR, "").split(os.pathsep)):
        if name not in _LOADED:
            _LOADED[name] = name
            importlib.import_module(name)
