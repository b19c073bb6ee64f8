"""``evonas ensemble build``: the command-line entry of the ensemble builder.

The ``evonas`` parser (``evonas.cli``) owns the arguments and hands them over as an
:class:`argparse.Namespace`; this module runs the build and prints its summary.
"""

from __future__ import annotations

import argparse
import sys

from evonas.errors import EvonasError


def main(args: argparse.Namespace) -> int:
    """Run ``evonas ensemble build`` with parsed arguments.

    Args:
        args: ``config`` (path of the YAML config, or None with ``resume``),
            ``run_dir`` (str or None), ``no_progress`` (bool), ``overrides``
            (``key.sub=value`` strings) and, when the parser offers it, ``resume`` (the
            run directory of an interrupted build to continue).

    Returns:
        0 on success; 2 after printing a one-line error for bad input.
    """
    from ensembles._build import build_ensemble, format_build_summary, resume_ensemble

    progress = not getattr(args, "no_progress", False)
    resume = getattr(args, "resume", None)
    overrides = list(getattr(args, "overrides", None) or [])
    config = getattr(args, "config", None)
    run_dir = getattr(args, "run_dir", None)
    try:
        if resume:
            if config or overrides or run_dir:
                raise EvonasError(
                    "--resume takes no --config, --run-dir or overrides: a build continues with the config it was started with"
                )
            result = resume_ensemble(resume, progress=progress)
        else:
            if not config:
                raise EvonasError("ensemble build needs --config CONFIG (e.g. configs/ensemble-digits.yaml)")
            result = build_ensemble(config, run_dir, overrides=overrides, progress=progress)
    except EvonasError as exc:
        sys.stderr.write(f"evonas: error: {' '.join(str(exc).split())}\n")
        return 2
    print(format_build_summary(result))
    return 0
