"""Run directories: the source of truth of a run.

Layout::

    RUN_DIR/
      config.yaml       resolved config (every default filled in)
      meta.yaml         seed, package versions, command line, host, start time
      log.jsonl         append-only records, one JSON object a line, flushed per record
      checkpoint.pkl    latest consistent state (written atomically)
      result.json       the final summary, when the run has finished
      report.md, *.png  written by ``evonas report``

A run directory is locked (``fcntl.flock`` on ``.lock``) while a process works in it,
so two processes never write the same log.
"""

from __future__ import annotations

import datetime as _dt
import fcntl
import json
import os
import pickle
import platform
import socket
import sys
import tempfile
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from evonas._json import jsonable
from evonas.errors import RunDirError

CONFIG = "config.yaml"
META = "meta.yaml"
LOG = "log.jsonl"
CHECKPOINT = "checkpoint.pkl"
RESULT = "result.json"

_PACKAGES = ("evonas", "numpy", "scipy", "torch", "torchvision", "torch_geometric", "scikit-learn", "deap", "ray", "pyyaml")


def package_versions(names: Iterable[str] = _PACKAGES) -> dict[str, str]:
    """Installed versions of the packages a run depends on (``"absent"`` if not installed)."""
    out = {"python": platform.python_version()}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "absent"
    return out


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old or the new file, never half."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


class RunDir:
    """A run directory. Use :meth:`create` for a new run and :meth:`open` to resume or report.

    Args:
        path: The directory.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock_fh: Any = None
        self._log_fh: Any = None

    # ---------------------------------------------------------------------------- set-up
    @classmethod
    def create(
        cls, path: str | os.PathLike[str], config: dict[str, Any], seed: int, kind: str, plugins: Iterable[str] = ()
    ) -> RunDir:
        """Make a new run directory holding the resolved ``config``.

        Args:
            path: The directory (must not exist, or be empty).
            config: The resolved config (YAML-ready).
            seed: The run seed (recorded in ``meta.yaml``).
            kind: The run kind (``search``, ``supernet``, ...).
            plugins: Plugins the run needs (loaded again by ``--resume`` and ``report``).

        Raises:
            RunDirError: ``path`` exists and is not an empty directory (nothing is touched).
        """
        p = Path(path)
        if p.exists() and (not p.is_dir() or any(p.iterdir())):
            raise RunDirError(
                f"run directory {str(p)!r} already exists and is not empty; choose a new one or resume it "
                f"with --resume {str(p)!r}"
            )
        try:
            p.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RunDirError(f"cannot create run directory {str(p)!r}: {exc.strerror}") from None
        run = cls(p)
        run.lock()
        meta = {
            "kind": kind,
            "seed": seed,
            "plugins": list(plugins),
            "versions": package_versions(),
            "command": sys.argv,
            "host": socket.gethostname(),
            "started": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        }
        atomic_write_bytes(p / CONFIG, yaml.safe_dump(config, sort_keys=False).encode())
        atomic_write_bytes(p / META, yaml.safe_dump(meta, sort_keys=False).encode())
        (p / LOG).touch()
        return run

    @classmethod
    def open(cls, path: str | os.PathLike[str], kind: str | None = None) -> RunDir:
        """Open an existing run directory.

        Raises:
            RunDirError: It does not exist, lacks its config, or is of another kind.
        """
        p = Path(path)
        if not p.is_dir():
            raise RunDirError(f"run directory {str(p)!r} does not exist")
        if not (p / CONFIG).is_file() or not (p / META).is_file():
            raise RunDirError(f"{str(p)!r} is not a run directory: {CONFIG} or {META} is missing")
        run = cls(p)
        if kind is not None and run.meta.get("kind") != kind:
            raise RunDirError(f"run directory {str(p)!r} holds a {run.meta.get('kind')!r} run, not a {kind!r} run")
        return run

    def lock(self) -> None:
        """Take the directory's lock; raise RunDirError if another process holds it."""
        if self._lock_fh is not None:
            return
        fh = open(self.path / ".lock", "a+")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            raise RunDirError(f"run directory {str(self.path)!r} is in use by another process") from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        self._lock_fh = fh

    def close(self) -> None:
        if self._log_fh is not None:
            self._log_fh.close()
            self._log_fh = None
        if self._lock_fh is not None:
            fcntl.flock(self._lock_fh, fcntl.LOCK_UN)
            self._lock_fh.close()
            self._lock_fh = None

    def __enter__(self) -> RunDir:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------------- contents
    @property
    def config(self) -> dict[str, Any]:
        return yaml.safe_load((self.path / CONFIG).read_text()) or {}

    @property
    def meta(self) -> dict[str, Any]:
        return yaml.safe_load((self.path / META).read_text()) or {}

    def append(self, record: dict[str, Any]) -> None:
        """Append one JSON record to the log and flush it to the OS (survives ``kill -9``)."""
        if self._log_fh is None:
            self._log_fh = open(self.path / LOG, "a")
        self._log_fh.write(json.dumps(record, separators=(",", ":")) + "\n")
        self._log_fh.flush()

    def read_log(self, repair: bool = False) -> list[dict[str, Any]]:
        """All log records.

        A last line torn by a crash mid-write is dropped (and cut from the file when
        ``repair``); a malformed line elsewhere raises RunDirError.
        """
        path = self.path / LOG
        if not path.exists():
            return []
        raw = path.read_bytes()
        lines = raw.split(b"\n")
        records = []
        good_bytes = 0
        for i, line in enumerate(lines):
            if not line.strip():
                good_bytes += len(line) + 1
                continue
            last = i == len(lines) - 1
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                if last or (i == len(lines) - 2 and not lines[-1]):
                    if repair:
                        with open(path, "r+b") as fh:
                            fh.truncate(good_bytes)
                    break
                raise RunDirError(f"log {str(path)!r} is corrupt at line {i + 1}") from None
            if last:  # a complete JSON object without its newline: keep it, add the newline
                if repair:
                    with open(path, "ab") as fh:
                        fh.write(b"\n")
            good_bytes += len(line) + 1
        return records

    def save_checkpoint(self, state: Any) -> None:
        atomic_write_bytes(self.path / CHECKPOINT, pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL))

    def load_checkpoint(self) -> Any | None:
        p = self.path / CHECKPOINT
        if not p.exists():
            return None
        try:
            return pickle.loads(p.read_bytes())
        except Exception as exc:  # a checkpoint is only a shortcut: the log can rebuild it
            raise RunDirError(f"checkpoint {str(p)!r} cannot be read ({type(exc).__name__}); delete it to resume from the log") from None

    def write_json(self, name: str, data: Any) -> None:
        atomic_write_bytes(self.path / name, (json.dumps(jsonable(data), indent=2) + "\n").encode())

    def write_text(self, name: str, text: str) -> None:
        atomic_write_bytes(self.path / name, text.encode())

    def write_config(self, config: dict[str, Any]) -> None:
        """Replace ``config.yaml`` (a resumed run whose budget was extended)."""
        atomic_write_bytes(self.path / CONFIG, yaml.safe_dump(config, sort_keys=False).encode())

    def read_json(self, name: str) -> Any:
        """A JSON file of the run directory.

        Raises:
            RunDirError: It is missing or not valid JSON.
        """
        p = self.path / name
        try:
            return json.loads(p.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise RunDirError(f"{str(p)!r} cannot be read: {exc}") from None
