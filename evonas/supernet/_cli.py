"""``evonas supernet rank``: the command-line side of the supernet package.

``evonas supernet train`` is the ``supernet`` run kind of :mod:`evonas.runs`
(:data:`evonas.supernet._run.SUPERNET`); the parser of :mod:`evonas.cli` calls
:func:`rank` with ``run_dir``, ``table``, ``num_archs``, ``val_images`` and ``no_progress``.
"""

from __future__ import annotations

import argparse


def rank(args: argparse.Namespace) -> int:
    """Run ``evonas supernet rank RUN_DIR`` and print the ranking table.

    ``--num-archs`` and ``--val-images`` are checked first, then the run directory and
    the table, all before any architecture is evaluated (see
    :func:`evonas.supernet._run.rank_run`); bad input raises an
    :class:`~evonas.errors.EvonasError`.
    """
    from evonas.supernet._run import format_rank, rank_run

    out = rank_run(
        args.run_dir, table=args.table, num_archs=args.num_archs, progress=not args.no_progress,
        val_images=args.val_images,
    )
    print(format_rank(out))
    return 0
