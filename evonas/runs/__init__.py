"""Run directories and the one lifecycle of every run kind: start, resume, summary, report."""

from __future__ import annotations

from evonas.runs._lifecycle import (
    RUN_KINDS,
    RunKind,
    RunResult,
    default_run_dir,
    open_run,
    raise_if_failed,
    read_summary,
    report_run,
    resume_run,
    run_kind,
    run_stage,
    start_run,
)
from evonas.runs._records import declare_records, step_history
from evonas.runs._rundir import (
    CHECKPOINT,
    CONFIG,
    LOG,
    META,
    RESULT,
    RunDir,
    atomic_write_bytes,
    key_file,
    package_versions,
    sign,
    verified_payload,
)

__all__ = [
    "CHECKPOINT",
    "CONFIG",
    "LOG",
    "META",
    "RESULT",
    "RUN_KINDS",
    "RunDir",
    "RunKind",
    "RunResult",
    "atomic_write_bytes",
    "declare_records",
    "default_run_dir",
    "key_file",
    "open_run",
    "raise_if_failed",
    "read_summary",
    "package_versions",
    "report_run",
    "resume_run",
    "run_kind",
    "run_stage",
    "sign",
    "start_run",
    "step_history",
    "verified_payload",
]
