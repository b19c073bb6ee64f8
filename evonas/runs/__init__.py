"""Run directories: resolved config, append-only log, checkpoints, results."""

from __future__ import annotations

from evonas.runs._rundir import CHECKPOINT, CONFIG, LOG, META, RESULT, RunDir, atomic_write_bytes, package_versions

__all__ = ["CHECKPOINT", "CONFIG", "LOG", "META", "RESULT", "RunDir", "atomic_write_bytes", "package_versions"]
