"""Run directories: the source of truth of a run.

Layout::

    RUN_DIR/
      config.yaml       resolved config (every default filled in)
      meta.yaml         seed, package versions, command line, host, start time
      log.jsonl         append-only records, one JSON object a line, flushed per record,
                        each with a ``chk`` field chaining it to the record before
      checkpoint.pkl    latest consistent state (written atomically, signed)
      result.json       the final summary, when the run has finished
      report.md, *.png  written by ``evonas report``

A run directory is data: reading one never runs code, and :class:`RunDir` never reads or
writes its files through a symbolic link.

- Pickled files (checkpoints, a supernet's fitted predictor) are signed: ``MAGIC`` +
  HMAC-SHA256 of the file's name and payload under this user's key + the pickle. The key
  (32 random bytes) lives outside every run directory, in ``$EVONAS_KEY_FILE`` or else
  ``$XDG_CONFIG_HOME/evonas/run-key`` (``~/.config/evonas/run-key``), made with mode 0600
  on first use. A file that does not carry this user's signature (a colleague's run
  directory, an edited file) is refused before anything is unpickled; a search then
  rebuilds its state from the log.
- Files are opened with ``O_NOFOLLOW`` (an entry that is a symbolic link is refused) and
  replaced atomically (:func:`atomic_write_bytes` replaces a link, never its target).
- YAML files (``config.yaml``, ``meta.yaml`` and those of the run kinds) are read with
  :meth:`RunDir.read_yaml`: UTF-8, a mapping, no aliases; log records are checked against
  the fields their run kind declares (:func:`evonas.runs.declare_records`) as they are read.
  A malformed file is a :class:`~evonas.errors.RunDirError` that names it.
- Each log record's ``chk`` is the first 16 hex digits of the SHA-256 of the previous
  record's ``chk`` (``""`` for the first) and the record's canonical JSON without it, so a
  record edited, removed or inserted anywhere but at the end is refused on reading. It
  detects edits and splices; it is no signature (anyone can recompute it). Logs written
  before checksums existed (no record has one) are read and continued without them.
- While a process works in a run directory it holds ``fcntl.flock`` on the directory
  itself (no lock file that could be deleted), so two processes never write the same log.
"""

from __future__ import annotations

import datetime as _dt
import errno
import fcntl
import hashlib
import hmac
import json
import os
import pickle
import platform
import secrets
import shutil
import socket
import stat
import sys
import tempfile
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from evonas._files import atomic_write_bytes, figure_bytes, make_temp_dir
from evonas._json import jsonable
from evonas.config import yaml_mapping
from evonas.errors import RunDirError, UntrustedFileError
from evonas.runs._records import check_records

CONFIG = "config.yaml"
META = "meta.yaml"
LOG = "log.jsonl"
CHECKPOINT = "checkpoint.pkl"
RESULT = "result.json"

SIGNED_MAGIC = b"EVONAS-SIGNED-1\n"
"""The first bytes of a signed file (followed by its 32-byte MAC and the pickle)."""
CHK = "chk"
"""The log record field holding the record's link in the checksum chain."""
KEY_FILE_ENV = "EVONAS_KEY_FILE"
_KEY_BYTES = 32
_MAC_BYTES = 32

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


def key_file() -> Path:
    """Where this user's run key lives: ``$EVONAS_KEY_FILE`` if set, else
    ``$XDG_CONFIG_HOME/evonas/run-key`` (default ``~/.config/evonas/run-key``)."""
    explicit = os.environ.get(KEY_FILE_ENV)
    if explicit:
        return Path(explicit).expanduser()
    config_home = os.environ.get("XDG_CONFIG_HOME", "")
    if not os.path.isabs(config_home):  # the XDG spec says to ignore a relative one
        config_home = os.path.join(os.path.expanduser("~"), ".config")
    return Path(config_home) / "evonas" / "run-key"


def run_key() -> bytes:
    """This user's key for signing run-directory files (made on first use, mode 0600).

    Raises:
        RunDirError: The key file is a symbolic link, not a regular file, not this
            user's, readable or writable by others, or not a key.
    """
    path = key_file()
    fd = _open_key(path)
    if fd is None:
        _create_key(path)
        fd = _open_key(path)
        if fd is None:
            raise RunDirError(f"evonas key file {str(path)!r} vanished while it was being created; try again")
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise RunDirError(f"evonas key file {str(path)!r} is not a regular file; remove it to make a new key")
        if info.st_uid != os.getuid():
            raise RunDirError(f"evonas key file {str(path)!r} belongs to another user; remove it to make a new key")
        if info.st_mode & 0o077:
            raise RunDirError(
                f"evonas key file {str(path)!r} is accessible to others (mode {stat.S_IMODE(info.st_mode):o}); "
                f"run 'chmod 600 {path}', or remove it to make a new key"
            )
        key = os.read(fd, _KEY_BYTES + 1)
    finally:
        os.close(fd)
    if len(key) != _KEY_BYTES:
        raise RunDirError(
            f"evonas key file {str(path)!r} is not an evonas key ({_KEY_BYTES} bytes); remove it to make a new one "
            "(files signed with the old key will be refused)"
        )
    return key


def _open_key(path: Path) -> int | None:
    """A read descriptor of the key file, or None when there is none."""
    try:
        # O_NONBLOCK: a FIFO planted there must not hang the run
        return os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if path.is_symlink():
            raise RunDirError(f"evonas key file {str(path)!r} is a symbolic link; replace it with the key file itself") from None
        raise RunDirError(f"cannot read the evonas key file {str(path)!r}: {exc.strerror}") from None


def _create_key(path: Path) -> None:
    """Write a new random key to ``path`` unless another process got there first."""
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")  # mode 0600
    except OSError as exc:
        raise RunDirError(f"cannot create the evonas key file {str(path)!r}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(secrets.token_bytes(_KEY_BYTES))
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)  # atomic, and never replaces a key another process just made
        except FileExistsError:
            pass
        except OSError as exc:
            raise RunDirError(f"cannot create the evonas key file {str(path)!r}: {exc.strerror}") from None
    finally:
        os.unlink(tmp)


def _mac(key: bytes, name: str, payload: bytes) -> bytes:
    # the file name is signed too, so one signed file cannot stand in for another
    return hmac.new(key, name.encode() + b"\0" + payload, hashlib.sha256).digest()


def sign(name: str, payload: bytes) -> bytes:
    """The signed file ``name`` holding ``payload``: magic, MAC under this user's key, payload."""
    return SIGNED_MAGIC + _mac(run_key(), name, payload) + payload


def verified_payload(name: str, data: bytes) -> bytes | None:
    """The payload of the signed file ``name`` read as ``data``, or None when it is not
    signed with this user's key (no magic, another key, or changed since)."""
    head = len(SIGNED_MAGIC) + _MAC_BYTES
    if len(data) < head or not data.startswith(SIGNED_MAGIC):
        return None
    mac, payload = data[len(SIGNED_MAGIC) : head], data[head:]
    if not hmac.compare_digest(mac, _mac(run_key(), name, payload)):
        return None
    return payload


def record_checksum(previous: str, record: dict[str, Any]) -> str:
    """The ``chk`` of a log record (without its own ``chk``) that follows one whose ``chk``
    is ``previous`` (``""`` for the first record)."""
    canonical = json.dumps(record, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256((previous + canonical).encode()).hexdigest()[:16]


class RunDir:
    """A run directory. Use :meth:`create` for a new run and :meth:`open` to resume or report.

    Args:
        path: The directory.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock_fd: int | None = None
        self._log_fh: Any = None
        # While appending: whether the log's records carry checksums (False: a log written
        # before checksums, continued without) and the last link of its chain.
        self._chained = True
        self._last_chk = ""
        self._kind: str | None = None  # of meta.yaml, read when the log is first checked

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
        if p.exists() and not p.is_dir():
            raise RunDirError(f"run directory {str(p)!r} exists and is not a directory; choose a new one")
        not_empty = (
            f"run directory {str(p)!r} already exists and is not empty; choose a new one or resume it "
            f"with --resume {str(p)!r}"
        )
        if p.exists() and any(p.iterdir()):
            raise RunDirError(not_empty)
        meta = {
            "kind": kind,
            "seed": seed,
            "plugins": list(plugins),
            "versions": package_versions(),
            "command": sys.argv,
            "host": socket.gethostname(),
            "started": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        }
        # The directory is filled under a hidden temporary name and renamed into place, so
        # a kill during creation leaves ``path`` as it was (absent or empty), never half made.
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
            tmp = make_temp_dir(p.parent, prefix=f".{p.name}.", suffix=".new")
        except OSError as exc:
            raise RunDirError(f"cannot create run directory {str(p)!r}: {exc.strerror}") from None
        try:
            atomic_write_bytes(tmp / CONFIG, yaml.safe_dump(config, sort_keys=False).encode())
            atomic_write_bytes(tmp / META, yaml.safe_dump(meta, sort_keys=False).encode())
            atomic_write_bytes(tmp / LOG, b"")
            try:
                os.rename(tmp, p)  # replaces an empty directory; fails on anything else
            except OSError as exc:
                if exc.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
                    raise RunDirError(not_empty) from None
                raise RunDirError(f"cannot create run directory {str(p)!r}: {exc.strerror}") from None
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        run = cls(p)
        run._kind = kind
        run.lock()
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
        """Take the directory's lock and check its log before anything is written.

        The lock is ``fcntl.flock`` on the directory itself: it is held as long as this
        object (or a process forked from it) keeps it, and no file can be deleted to
        break it; a second :class:`RunDir` on the same directory is refused even in the
        same process.

        Raises:
            RunDirError: Another process holds the lock, or the log is corrupt or edited.
        """
        if self._lock_fd is not None:
            return
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            raise RunDirError(f"cannot open run directory {str(self.path)!r}: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RunDirError(f"run directory {str(self.path)!r} is in use by another process") from None
        self._lock_fd = fd
        try:
            self._scan_log()  # an edited log is refused before this process adds to it
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self._log_fh is not None:
            self._log_fh.close()
            self._log_fh = None
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> RunDir:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------------- contents
    @property
    def config(self) -> dict[str, Any]:
        """The resolved config (``config.yaml``), a mapping (see :meth:`read_yaml`)."""
        return self.read_yaml(CONFIG)

    @property
    def meta(self) -> dict[str, Any]:
        """``meta.yaml``, a mapping (see :meth:`read_yaml`)."""
        return self.read_yaml(META)

    def read_yaml(self, name: str) -> dict[str, Any]:
        """The mapping held by the YAML entry ``name``.

        Raises:
            RunDirError: It is missing, not UTF-8, not YAML (or uses aliases), empty or not a mapping.
            UntrustedFileError: It is a symbolic link or not a regular file.
        """
        return yaml_mapping(self.read_bytes(name), repr(str(self.path / name)), RunDirError)

    def _log_kind(self) -> str | None:
        """The run kind whose record declarations the log is checked against (None: no meta.yaml)."""
        if self._kind is None:
            if self._read_entry(META) is None:
                return None
            kind = self.meta.get("kind")
            self._kind = kind if isinstance(kind, str) else ""
        return self._kind

    def read_bytes(self, name: str) -> bytes:
        """The bytes of the entry ``name``.

        Raises:
            RunDirError: It is missing.
            UntrustedFileError: It is a symbolic link or not a regular file.
        """
        data = self._read_entry(name)
        if data is None:
            raise RunDirError(f"{str(self.path / name)!r} is missing")
        return data

    def _open_entry(self, name: str, flags: int) -> int:
        """A descriptor of the entry ``name``, which must be a regular file (never a link).

        Raises:
            FileNotFoundError: It does not exist (and ``flags`` do not create it).
            UntrustedFileError: It is a symbolic link or not a regular file.
        """
        path = self.path / name
        try:
            # O_NONBLOCK: a FIFO planted in the directory must not hang the run
            fd = os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o666)
        except FileNotFoundError:
            raise
        except OSError as exc:
            if path.is_symlink():
                raise UntrustedFileError(
                    f"{str(path)!r} is a symbolic link; evonas never follows links in a run directory: "
                    "replace it with the file itself or remove it"
                ) from None
            raise RunDirError(f"cannot open {str(path)!r}: {exc.strerror}") from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise UntrustedFileError(f"{str(path)!r} is not a regular file; remove it")
        return fd

    def _read_entry(self, name: str) -> bytes | None:
        """The bytes of the entry ``name`` (None when it does not exist)."""
        try:
            fd = self._open_entry(name, os.O_RDONLY)
        except FileNotFoundError:
            return None
        with os.fdopen(fd, "rb") as fh:
            data: bytes = fh.read()
        return data

    def append(self, record: dict[str, Any]) -> None:
        """Append one JSON record to the log and flush it to the OS (survives ``kill -9``).

        The record gets its ``chk`` link (see the module docstring). The first append of
        this object reads the log to continue its chain, and cuts a last line torn by a
        crash so that the new record starts on a line of its own.
        """
        if self._log_fh is None:
            _, self._chained, self._last_chk = self._scan_log(repair=True)
            self._log_fh = os.fdopen(self._open_entry(LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT), "a")
        # jsonable: the record as it will be read back (tuples as lists, keys as strings,
        # non-finite floats as strings), which is what the checksum covers
        body = jsonable(record)
        body.pop(CHK, None)
        if self._chained:
            self._last_chk = record_checksum(self._last_chk, body)
            body[CHK] = self._last_chk
        self._log_fh.write(json.dumps(body, separators=(",", ":"), allow_nan=False) + "\n")
        self._log_fh.flush()

    def read_log(self, repair: bool = False) -> list[dict[str, Any]]:
        """All log records (their ``chk`` fields included), the checksum chain verified.

        A last line torn by a crash mid-write is dropped (and cut from the file when
        ``repair``); a malformed line elsewhere raises RunDirError.

        Raises:
            RunDirError: A line other than the last is malformed, a record was edited,
                removed or inserted (its checksum does not follow from the one before), or
                a record lacks a field its run kind declares or has one of another type.
            UntrustedFileError: The log is a symbolic link or not a regular file.
        """
        return self._scan_log(repair)[0]

    def _scan_log(self, repair: bool = False) -> tuple[list[dict[str, Any]], bool, str]:
        """The log's records, whether they carry checksums, and the last checksum."""
        path = self.path / LOG
        try:
            fd = self._open_entry(LOG, os.O_RDWR if repair else os.O_RDONLY)
        except FileNotFoundError:
            return [], True, ""
        try:
            with os.fdopen(os.dup(fd), "rb") as fh:
                raw = fh.read()
            lines = raw.split(b"\n")
            records: list[dict[str, Any]] = []
            numbers: list[int] = []
            good_bytes = 0
            cut: int | None = None  # where a torn last line starts
            for i, line in enumerate(lines):
                if not line.strip():
                    good_bytes += len(line) + 1
                    continue
                try:
                    record = json.loads(line)
                except (ValueError, RecursionError):  # JSONDecodeError, UnicodeDecodeError, int digit limit
                    if i == len(lines) - 1 or (i == len(lines) - 2 and not lines[-1]):
                        cut = good_bytes
                        break
                    raise RunDirError(f"log {str(path)!r} is corrupt at line {i + 1}") from None
                if not isinstance(record, dict):
                    raise RunDirError(f"log {str(path)!r} is corrupt at line {i + 1}: not a JSON object")
                records.append(record)
                numbers.append(i + 1)
                good_bytes += len(line) + 1
            chained, last_chk = self._verify_chain(records, numbers)  # before the file is touched
            check_records(self._log_kind(), zip(numbers, records), repr(str(path)))
            if repair and cut is not None:
                os.ftruncate(fd, cut)
            elif repair and raw and not raw.endswith(b"\n"):  # a complete last record without its newline
                os.lseek(fd, 0, os.SEEK_END)
                os.write(fd, b"\n")
        finally:
            os.close(fd)
        return records, chained, last_chk

    def _verify_chain(self, records: list[dict[str, Any]], numbers: list[int]) -> tuple[bool, str]:
        """Whether the records carry checksums, and the last one.

        Raises:
            RunDirError: A checksum does not follow, or only some records carry one.
        """
        chained = not records or CHK in records[0]
        previous = ""
        for record, number in zip(records, numbers):
            if (CHK in record) != chained:
                raise RunDirError(
                    f"log {str(self.path / LOG)!r} was edited or spliced at line {number} (records with and without "
                    "checksums); restore it or start a new run"
                )
            if not chained:
                continue
            body = {k: v for k, v in record.items() if k != CHK}
            expected = record_checksum(previous, body)
            if record[CHK] != expected:
                raise RunDirError(
                    f"log {str(self.path / LOG)!r} was edited or spliced at line {number} (checksum mismatch); "
                    "restore it or start a new run"
                )
            previous = expected
        return chained, previous

    def save_signed(self, name: str, obj: Any) -> None:
        """Pickle ``obj`` into the entry ``name``, signed with this user's key (atomically)."""
        payload = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
        atomic_write_bytes(self.path / name, sign(name, payload))

    def load_signed(self, name: str, what: str, remedy: str) -> Any | None:
        """The object pickled in the entry ``name`` by :meth:`save_signed`, or None if
        there is none. The signature is checked before anything is unpickled.

        Args:
            name: The entry (e.g. ``checkpoint.pkl``).
            what: What it is, for messages (e.g. ``"checkpoint"``).
            remedy: What the user can do when it cannot be used (ends the message).

        Raises:
            UntrustedFileError: It is not signed with this user's key, is a link or not a
                regular file, or its signed content cannot be unpickled by this code.
            RunDirError: This user's key file is unusable.
        """
        path = self.path / name
        data = self._read_entry(name)
        if data is None:
            return None
        payload = verified_payload(name, data)
        if payload is None:
            raise UntrustedFileError(
                f"{what} {str(path)!r} is not signed with this user's evonas key (a run directory from elsewhere, "
                f"or edited); it is never unpickled: {remedy}"
            )
        try:
            return pickle.loads(payload)
        except Exception as exc:  # noqa: BLE001 -- our own file, but written by other code (a renamed class...)
            raise UntrustedFileError(f"{what} {str(path)!r} cannot be read ({type(exc).__name__}); {remedy}") from None

    def save_checkpoint(self, state: Any) -> None:
        """Write ``state`` to ``checkpoint.pkl`` (signed, atomically)."""
        self.save_signed(CHECKPOINT, state)

    def load_checkpoint(self, remedy: str = "delete it to resume from the log") -> Any | None:
        """The state in ``checkpoint.pkl``, or None if there is none (see :meth:`load_signed`)."""
        return self.load_signed(CHECKPOINT, "checkpoint", remedy)

    def subdir(self, relative: str | os.PathLike[str]) -> Path:
        """The folder ``relative`` inside the run directory, made if missing.

        Raises:
            UntrustedFileError: A component of it is a symbolic link or not a directory
                (writing there would leave the run directory).
            RunDirError: It cannot be created.
        """
        current = self.path
        for part in Path(relative).parts:
            if part in ("", ".", "..") or os.sep in part:
                raise RunDirError(f"invalid folder {str(relative)!r} inside run directory {str(self.path)!r}")
            current = current / part
            try:
                os.mkdir(current)
            except FileExistsError:
                pass
            except OSError as exc:
                raise RunDirError(f"cannot create {str(current)!r}: {exc.strerror}") from None
            if current.is_symlink():
                raise UntrustedFileError(
                    f"{str(current)!r} is a symbolic link; evonas never writes through links in a run directory: "
                    "replace it with a folder or remove it"
                )
            if not current.is_dir():
                raise UntrustedFileError(f"{str(current)!r} is not a folder; remove it")
        return current

    def write_bytes(self, name: str, data: bytes) -> None:
        """Replace the entry ``name`` with ``data`` (atomically; a link is replaced, not followed)."""
        atomic_write_bytes(self.path / name, data)

    def write_figure(self, name: str, fig: Any, dpi: int = 120) -> None:
        """Save the matplotlib figure ``fig`` as the entry ``name`` (format from its suffix),
        like :meth:`write_bytes`."""
        self.write_bytes(name, figure_bytes(fig, Path(name).suffix.lstrip(".") or "png", dpi))

    def write_json(self, name: str, data: Any) -> None:
        atomic_write_bytes(self.path / name, (json.dumps(jsonable(data), indent=2, allow_nan=False) + "\n").encode())

    def write_text(self, name: str, text: str) -> None:
        atomic_write_bytes(self.path / name, text.encode())

    def write_config(self, config: dict[str, Any]) -> None:
        """Replace ``config.yaml`` (a resumed run whose budget was extended)."""
        atomic_write_bytes(self.path / CONFIG, yaml.safe_dump(config, sort_keys=False).encode())

    def read_json(self, name: str) -> Any:
        """A JSON file of the run directory.

        Raises:
            RunDirError: It is missing or not valid JSON.
            UntrustedFileError: It is a symbolic link or not a regular file.
        """
        p = self.path / name
        data = self.read_bytes(name)
        try:
            return json.loads(data.decode("utf-8"))
        except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
            raise RunDirError(f"{str(p)!r} cannot be read: {exc}") from None
        except RecursionError:
            raise RunDirError(f"{str(p)!r} cannot be read: it nests values too deeply") from None
