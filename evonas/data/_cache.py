"""The cache directory and atomic, concurrency-safe ways of filling it.

Prepared data (gunzipped idx files, extracted archives, decoded image arrays) lives in
``$EVONAS_CACHE`` or ``~/.cache/evonas``, never next to the source data, which may be
read-only, nor inside the repository. Several processes (Ray workers) may prepare the
same entry at once: each builds it under a private temporary name and renames it into
place; the first rename wins and the others discard their copy.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from evonas._files import make_temp_dir, write_npz
from evonas.errors import DataError

CACHE_ENV_VAR = "EVONAS_CACHE"


def cache_dir(*parts: str) -> Path:
    """The cache directory (``$EVONAS_CACHE`` or ``~/.cache/evonas``) joined with ``parts``.

    The directory is not created.
    """
    root = os.environ.get(CACHE_ENV_VAR) or os.path.join("~", ".cache", "evonas")
    return Path(root).expanduser().joinpath(*parts)


def fingerprint(path: Path) -> str:
    """A short key that changes when the file or directory tree at ``path`` changes.

    Files are identified by resolved path, size and modification time (hashing contents
    would cost seconds for large archives); directories by the same for every file below.
    """
    h = hashlib.sha256(str(path.resolve()).encode())
    if path.is_dir():
        for sub in sorted(p for p in path.rglob("*") if p.is_file()):
            st = sub.stat()
            h.update(f"{sub.relative_to(path)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    else:
        st = path.stat()
        h.update(f"{st.st_size}\0{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


def build_dir_atomically(target: Path, build: Callable[[Path], None]) -> Path:
    """Create directory ``target`` by calling ``build(tmp)`` on a fresh temporary directory.

    Returns ``target`` at once when it already exists. Concurrent callers may build it
    twice; exactly one result is kept.
    """
    if target.is_dir():
        return target
    _make_dirs(target.parent)
    tmp = make_temp_dir(target.parent, prefix=f".{target.name}.")
    try:
        build(tmp)
        try:
            os.rename(tmp, target)
        except OSError:
            if not target.is_dir():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def save_arrays_atomically(target: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` to the ``.npz`` file ``target`` through a temporary file and a rename."""
    _make_dirs(target.parent)
    write_npz(target, arrays)


def extract_tar_safely(archive: Path, dest: Path) -> None:
    """Extract ``archive`` into the existing directory ``dest``, refusing unsafe members.

    Only regular files and directories are extracted; a member with an absolute path, a
    ``..`` component, or of any other kind (links, devices) raises :class:`DataError`
    before anything is written.
    """
    try:
        with tarfile.open(archive) as tar:
            members = tar.getmembers()
            root = dest.resolve()
            for m in members:
                target = (root / m.name).resolve()
                if os.path.isabs(m.name) or ".." in Path(m.name).parts or not target.is_relative_to(root):
                    raise DataError(
                        f"archive {str(archive)!r} has a member {m.name!r} outside its root; refusing to extract"
                    )
                if not (m.isfile() or m.isdir()):
                    raise DataError(
                        f"archive {str(archive)!r} has a member {m.name!r} that is not a regular file or "
                        "directory; refusing to extract"
                    )
            tar.extractall(dest, members=members, filter="data")
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise DataError(f"cannot read archive {str(archive)!r}: {exc}") from None


def _make_dirs(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(
            f"cannot create cache directory {str(path)!r} ({exc.strerror}); set ${CACHE_ENV_VAR} to a writable folder"
        ) from None
