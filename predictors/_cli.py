"""``evonas predictors evaluate``: the harness from the command line.

The ``evonas`` parser (:mod:`evonas.cli`) owns the arguments; this module loads the config,
runs :func:`predictors.run_harness` and prints the Markdown table.
"""

from __future__ import annotations

import argparse
import datetime as _dt
from pathlib import Path

from evonas.config import load_config
from evonas.errors import RunDirError


def main(args: argparse.Namespace) -> int:
    """Run ``evonas predictors evaluate`` with parsed arguments.

    Args:
        args: ``config`` (YAML path), ``out`` (output directory or None), ``no_progress``
            and ``overrides`` (``key.sub=value`` strings).

    Returns:
        0 on success (bad input raises :class:`~evonas.errors.EvonasError`, which the
        command line reports on one line with exit code 2).
    """
    from predictors import HarnessConfig, resolve_paths, run_harness

    # Relative paths in the config are relative to the directory the command runs in.
    config = resolve_paths(load_config(HarnessConfig, args.config, args.overrides), Path.cwd())
    if args.out:
        out = Path(args.out)
    else:
        out = Path("runs") / f"predictors-{_dt.datetime.now().strftime('%Y%m%d-%H%M%S')}"
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise RunDirError(f"output directory {str(out)!r} already exists and is not empty; choose a new one")
    result = run_harness(config, out, progress=not args.no_progress)
    print(result.markdown)
    print(f"\nwritten to {out}")
    return 0
