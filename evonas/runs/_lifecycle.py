"""One lifecycle for every long-running command: config, start, resume, summary, report.

A :class:`RunKind` (``search``, ``supernet``, ``ensemble``, ``predictors``; plugins may add
their own with ``evonas.register("run", name)``) says how its config is prepared and run;
:func:`start_run`, :func:`resume_run` and :func:`report_run` do the rest the same way
for all of them:

1. the config is read with the one path rule (relative paths in the file are relative
   to it, those of overrides to the current directory) and every component checked;
2. :meth:`RunKind.prepare` validates and builds everything that can fail (data,
   capabilities, metric names) **before** the run directory is created, so bad input
   leaves nothing behind;
3. the run directory records the resolved config, the seed, versions and plugins;
4. :meth:`RunKind.execute` runs or continues; its summary becomes ``result.json``;
5. ``--resume RUN_DIR`` loads the recorded plugins, re-reads ``config.yaml`` and
   continues; overrides of the keys in :attr:`RunKind.extendable` (a search's
   ``budget``) extend a finished run;
6. ``evonas report RUN_DIR`` asks the run's kind for plots and ``report.md``.
"""

from __future__ import annotations

import abc
import datetime as _dt
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from evonas._registry import Registry, resolve_import
from evonas.config import apply_overrides, from_dict, load_config, to_dict
from evonas.errors import ConfigError, RunDirError, RunFailedError, UntrustedFileError, one_line_error
from evonas.runs._rundir import CONFIG, LOG, META, RESULT, RunDir


def default_run_dir(stem: str) -> Path:
    """``runs/<stem>-<YYYYmmdd-HHMMSS>`` (relative to the current directory)."""
    return Path("runs") / f"{stem}-{_dt.datetime.now().strftime('%Y%m%d-%H%M%S')}"


class RunKind(abc.ABC):
    """One kind of run: its config class and how it is prepared, run and reported.

    Attributes:
        name: The kind recorded in ``meta.yaml`` (e.g. ``"search"``).
        Config: The config dataclass; it has ``seed``, ``run_dir`` and ``progress`` fields.
        extendable: Dotted key prefixes that ``--resume`` may override (e.g. ``budget``).
    """

    name: ClassVar[str]
    Config: ClassVar[type]
    extendable: ClassVar[tuple[str, ...]] = ()

    @abc.abstractmethod
    def prepare(self, config: Any) -> Any:
        """Validate and build everything that can fail before a run directory exists."""

    @abc.abstractmethod
    def execute(self, run: RunDir, config: Any, prepared: Any, resume: bool, progress: bool) -> dict[str, Any]:
        """Run (or, with ``resume``, continue) in ``run``; return the JSON summary."""

    @abc.abstractmethod
    def format_summary(self, summary: dict[str, Any], run_dir: Path) -> str:
        """A few lines for the terminal."""

    @abc.abstractmethod
    def report(self, run: RunDir) -> str:
        """Write ``report.md`` (and plots) in ``run``; return the Markdown."""

    def failure(self, summary: dict[str, Any]) -> str | None:
        """Why the run counts as failed (nothing in it succeeded), or None.

        The lifecycle raises :class:`RunFailedError` with this message (exit code 1 on the
        command line) once the run directory is complete.
        """
        return None

    def finished(self, run: RunDir) -> bool:
        """Whether a plain ``--resume`` has nothing left to do (default: ``result.json`` exists)."""
        return (run.path / RESULT).exists()


RUN_KINDS: Registry[Any] = Registry("run kind")
"""Run kind name -> :class:`RunKind` instance (or, for the built-in kinds, its import path)."""
for _name, _path in (
    ("search", "evonas.search._run:SEARCH"),
    ("supernet", "evonas.supernet._run:SUPERNET"),
    ("ensemble", "ensembles._build:ENSEMBLE"),
    ("predictors", "predictors._harness:PREDICTORS_RUN"),
    ("pipeline", "evonas.pipeline._run:PIPELINE"),
    ("dnas", "evonas.dnas._run:DNAS_RUN"),
):
    RUN_KINDS.register(_name, owner=_path.partition(":")[0])(_path)


def run_kind(name: str) -> RunKind:
    """The :class:`RunKind` registered as ``name`` (imports a built-in kind's module on first use)."""
    entry = RUN_KINDS.get(name)
    kind: RunKind = resolve_import(entry) if isinstance(entry, str) else entry
    return kind


@dataclass(frozen=True)
class RunResult:
    """What a start or resume produced.

    Attributes:
        run_dir: The run directory.
        summary: Its summary (``result.json``).
        text: The summary formatted for the terminal.
        kind: The run kind.
    """

    run_dir: Path
    summary: dict[str, Any]
    text: str
    kind: RunKind


def _progress(config: Any, progress: bool | None) -> bool:
    return bool(getattr(config, "progress", True)) if progress is None else progress


def start_run(
    kind: str,
    config_path: str | os.PathLike[str] | None,
    overrides: list[str] | tuple[str, ...] = (),
    run_dir: str | os.PathLike[str] | None = None,
    progress: bool | None = None,
) -> RunResult:
    """Read a config, prepare, create the run directory and run (see the module docstring).

    Args:
        kind: The run kind (``search``, ``supernet``, ``ensemble``, ``predictors``).
        config_path: The YAML config (None: defaults and overrides only).
        overrides: ``key.sub=value`` overrides.
        run_dir: Where the run directory goes (relative to the current directory);
            default: the config's ``run_dir``, else ``runs/<config name>-<time>``.
        progress: Show progress bars (None: the config's ``progress``).

    Raises:
        EvonasError: Bad input; nothing was written.
        RunFailedError: The run ran but nothing in it succeeded.
    """
    from evonas.plugins import loaded_plugins

    rk = run_kind(kind)
    config: Any = load_config(rk.Config, config_path, overrides)
    prepared = rk.prepare(config)
    if run_dir is not None:
        path = Path(run_dir)
    elif getattr(config, "run_dir", None):
        path = Path(config.run_dir)
    else:
        path = default_run_dir(Path(config_path).stem if config_path else rk.name)
    run = RunDir.create(path, to_dict(config), int(getattr(config, "seed", 0)), rk.name, plugins=loaded_plugins())
    return _execute(rk, run, config, prepared, False, progress)


def _execute(rk: RunKind, run: RunDir, config: Any, prepared: Any, resume: bool, progress: bool | None) -> RunResult:
    """Run in ``run`` (locked), write ``result.json``, release the directory, judge the outcome."""
    try:
        summary = rk.execute(run, config, prepared, resume=resume, progress=_progress(config, progress))
        run.write_json(RESULT, summary)
    finally:
        run.close()
    raise_if_failed(rk, summary, run.path)
    return RunResult(run.path, summary, rk.format_summary(summary, run.path), rk)


def read_summary(rk: RunKind, run: RunDir) -> dict[str, Any]:
    """The summary of a finished run (``result.json``), checked to be one ``rk`` can show and judge.

    Raises:
        RunDirError: ``result.json`` is missing, not JSON, or not a summary of a ``rk`` run.
    """
    summary = run.read_json(RESULT)
    try:
        if not isinstance(summary, dict):
            raise TypeError(f"a JSON {type(summary).__name__}, not an object")
        rk.format_summary(summary, run.path)
        rk.failure(summary)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        # formatting a summary read from disk fails only on a malformed summary
        raise RunDirError(
            f"{str(run.path / RESULT)!r} is not the summary of a {rk.name} run ({one_line_error(exc)}); "
            f"restore it, or delete it and resume the run to write it again"
        ) from None
    return summary


def raise_if_failed(rk: RunKind, summary: dict[str, Any], run_dir: Path) -> None:
    """Raise :class:`RunFailedError` when ``rk`` judges the finished run a failure."""
    reason = rk.failure(summary)
    if reason is not None:
        raise RunFailedError(f"{reason}; the log is in {str(run_dir)!r}", run_dir)


def open_run(run_dir: str | os.PathLike[str], kind: str | None = None) -> tuple[RunDir, RunKind]:
    """Open a run directory of any (or the given) kind with its recorded plugins loaded."""
    from evonas.plugins import load_plugins

    run = RunDir.open(run_dir, kind=kind)
    plugins = run.meta.get("plugins") or []
    if not isinstance(plugins, list) or not all(isinstance(p, str) for p in plugins):
        raise RunDirError(f"meta.yaml of {str(run.path)!r} has a malformed 'plugins' entry: {plugins!r}")
    load_plugins(plugins)
    recorded = run.meta.get("kind")
    if recorded not in RUN_KINDS:
        raise RunDirError(
            f"run directory {str(run.path)!r} holds a {recorded!r} run; known kinds: {', '.join(RUN_KINDS.names())}"
        )
    rk = run_kind(str(recorded))
    run.read_log()  # an edited or malformed log is refused before anything reads the run
    return run, rk


def _check_extendable(rk: RunKind, overrides: list[str] | tuple[str, ...]) -> None:
    for item in overrides:
        key = item.partition("=")[0].strip()
        if not any(key == p or key.startswith(p + ".") for p in rk.extendable):
            allowed = ", ".join(f"{p}.*" for p in rk.extendable) or "none"
            raise ConfigError(
                f"--resume takes overrides of {allowed} only (a run continues with the config it was started "
                f"with); got {item!r}"
            )


def resume_run(
    run_dir: str | os.PathLike[str],
    overrides: list[str] | tuple[str, ...] = (),
    progress: bool | None = None,
    kind: str | None = None,
) -> RunResult:
    """Continue the run in ``run_dir`` (see the module docstring).

    Args:
        run_dir: The run directory.
        overrides: Overrides of the kind's extendable keys (e.g. ``budget.evaluations=500``);
            a finished run is continued only when they change its config.
        progress: Show progress bars (None: the config's ``progress``).
        kind: Refuse run directories of another kind.

    Raises:
        RunDirError: Not a run directory (of ``kind``), or in use by another process.
        ConfigError: An override of a key the kind cannot extend.
        RunFailedError: Nothing in the run succeeded.
    """
    run, rk = open_run(run_dir, kind)
    _check_extendable(rk, overrides)
    run.lock()
    try:
        stored = run.config
        config: Any = from_dict(rk.Config, apply_overrides(stored, overrides))
        changed = to_dict(config) != to_dict(from_dict(rk.Config, stored))
        if rk.finished(run) and not changed:
            return _finished_result(rk, run)
        prepared = rk.prepare(config)
        if changed:
            run.write_config(to_dict(config))
            run.append({"type": "extend", "overrides": list(overrides)})
    except BaseException:
        run.close()
        raise
    return _execute(rk, run, config, prepared, True, progress)


def run_stage(
    path: str | os.PathLike[str],
    kind: str,
    config: Any,
    progress: bool | None = None,
    prepared: Any = None,
    root: str | os.PathLike[str] | None = None,
) -> RunResult:
    """Run one stage of a composite run (a pipeline) as a normal run of ``kind`` in ``path``.

    The stage starts when ``path`` holds no run yet (leftovers of a start killed before
    ``meta.yaml`` was written are cleared), continues when it holds an unfinished run of
    ``kind`` and only reads the summary of a finished one, so a resumed pipeline never
    repeats finished work. ``config`` is derived by the caller from its own config; a
    stage whose recorded config differs was started by another config and is refused.
    ``prepared`` is the kind's :meth:`RunKind.prepare` of ``config`` when the caller
    already has it (None: prepared here when the stage has work left). ``root`` is the
    composite run's directory: a recorded config that differs from ``config`` only in paths
    under an old location of ``root`` (the run was moved or copied) is rewritten.

    Raises:
        RunDirError: ``path`` holds another kind of run, or one started with another config.
        RunFailedError: Nothing in the stage succeeded.
    """
    from evonas.plugins import loaded_plugins

    rk = run_kind(kind)
    p = Path(path)
    if p.is_symlink():
        raise UntrustedFileError(
            f"stage directory {str(p)!r} is a symbolic link; evonas never writes through links in a run directory: "
            "replace it with the folder itself or remove it"
        )
    resolved = to_dict(config)
    if not (p / META).is_file():
        _clear_unstarted(p)
        prepared = rk.prepare(config) if prepared is None else prepared
        run = RunDir.create(p, resolved, int(getattr(config, "seed", 0)), rk.name, plugins=loaded_plugins())
        return _execute(rk, run, config, prepared, False, progress)
    run = RunDir.open(p, kind=kind)
    run.lock()
    try:
        stored = run.config
        if stored != resolved and root is not None and _relocated(stored, resolved, str(Path(root))):
            # The composite run was moved or copied: its stages follow it.
            run.write_config(resolved)
            run.append({"type": "relocated", "to": str(Path(root))})
        elif stored != resolved:
            raise RunDirError(
                f"stage directory {str(p)!r} was started with another config than the one this run derives for "
                "it; restore the run's config.yaml or start a new run"
            )
        if rk.finished(run):
            result = _finished_result(rk, run)
            raise_if_failed(rk, result.summary, run.path)
            return result
        prepared = rk.prepare(config) if prepared is None else prepared
    except BaseException:
        run.close()
        raise
    return _execute(rk, run, config, prepared, True, progress)


def _finished_result(rk: RunKind, run: RunDir) -> RunResult:
    """The result a finished run already holds (the run directory is released)."""
    summary = read_summary(rk, run)
    run.close()
    return RunResult(run.path, summary, rk.format_summary(summary, run.path), rk)


def _relocated(stored: Any, derived: Any, root: str) -> bool:
    """Whether ``stored`` equals ``derived`` up to paths under ``root`` that ``stored``
    holds under another folder (same path relative to it)."""
    if isinstance(stored, dict) and isinstance(derived, dict):
        return stored.keys() == derived.keys() and all(_relocated(stored[k], derived[k], root) for k in stored)
    if isinstance(stored, list) and isinstance(derived, list):
        return len(stored) == len(derived) and all(_relocated(a, b, root) for a, b in zip(stored, derived))
    if isinstance(stored, str) and isinstance(derived, str) and stored != derived:
        return derived.startswith(root + os.sep) and os.path.isabs(stored) and stored.endswith(derived[len(root):])
    return bool(stored == derived)


def _clear_unstarted(path: Path) -> None:
    """Remove what a start killed before ``meta.yaml`` existed can leave (a half-written
    config, the ``.lock`` file of an older evonas); refuse anything else."""
    if not path.exists() and not path.is_symlink():
        return
    if path.is_symlink() or not path.is_dir():
        raise RunDirError(f"stage directory {str(path)!r} is not a directory; move it away and resume")
    leftovers = list(path.iterdir())
    if any(not (f.name in (".lock", CONFIG, LOG) or f.name.startswith(".")) or f.is_dir() for f in leftovers):
        raise RunDirError(
            f"stage directory {str(path)!r} holds files but no {META}: it is not a run this pipeline started; "
            "move it away and resume"
        )
    for f in leftovers:
        f.unlink()


def report_run(run_dir: str | os.PathLike[str]) -> str:
    """Write the report of a run directory of any kind; return its Markdown."""
    run, rk = open_run(run_dir)
    return rk.report(run)


__all__ = [
    "RUN_KINDS",
    "RunFailedError",
    "RunKind",
    "RunResult",
    "default_run_dir",
    "open_run",
    "raise_if_failed",
    "read_summary",
    "report_run",
    "resume_run",
    "run_kind",
    "run_stage",
    "start_run",
]
