"""Writing files the way run directories need it: atomically, never through a link, and
readable as the user's umask allows.

Every write goes to a fresh temporary file beside the target and is renamed over it, so a
reader sees the old or the new content and a symbolic link at the target is replaced, not
followed. ``tempfile`` makes its files 0600 and its directories 0700; the finished ones
get the modes an ordinary ``open``/``mkdir`` would have given them (0666 and 0777 less the
umask), so colleagues can read a shared run when the umask lets them. Only secrets (the
run key) stay private.
"""

from __future__ import annotations

import io
import os
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

_UMASK_LOCK = threading.Lock()


def umask() -> int:
    """The process's current umask (read from ``/proc`` where possible, without changing it)."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:  # os.umask can only be read by setting it
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def file_mode() -> int:
    """The mode ``open(path, "w")`` would give a new file."""
    return 0o666 & ~umask()


def dir_mode() -> int:
    """The mode ``mkdir`` would give a new directory."""
    return 0o777 & ~umask()


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, *, private: bool = False) -> None:
    """Replace ``path`` with ``data`` so that readers see the old or the new file, never half.

    A symbolic link at ``path`` is replaced by the file, never written through.

    Args:
        path: The target file.
        data: Its new content.
        private: Mode 0600 (secrets) instead of the umask's mode.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            if not private:
                os.fchmod(fh.fileno(), file_mode())
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise


def write_npz(path: str | os.PathLike[str], arrays: Mapping[str, Any]) -> None:
    """Save ``arrays`` as the ``.npz`` file ``path`` with :func:`atomic_write_bytes`."""
    import numpy as np

    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    atomic_write_bytes(path, buffer.getvalue())


def make_temp_dir(parent: str | os.PathLike[str], prefix: str, suffix: str = "") -> Path:
    """A new empty directory in ``parent`` (to be renamed into place when complete), with
    the mode ``mkdir`` would give it rather than ``mkdtemp``'s 0700."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix, suffix=suffix, dir=parent))
    os.chmod(tmp, dir_mode())
    return tmp


def figure_bytes(fig: Any, fmt: str = "png", dpi: int = 120) -> bytes:
    """The matplotlib figure ``fig`` rendered as ``fmt``."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt, dpi=dpi)
    return buffer.getvalue()


def save_figure(fig: Any, path: str | os.PathLike[str], dpi: int = 120) -> None:
    """Save ``fig`` to ``path`` (format from the suffix) with :func:`atomic_write_bytes`."""
    fmt = Path(path).suffix.lstrip(".") or "png"
    atomic_write_bytes(path, figure_bytes(fig, fmt, dpi))
