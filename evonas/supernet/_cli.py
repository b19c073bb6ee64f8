"""``evonas supernet train|rank``: the command-line side of the supernet package.

The lead's parser gives a Namespace with ``action`` (``train`` or ``rank``) and, for
``train``: ``config``, ``resume``, ``run_dir``, ``no_progress``, ``overrides``; for
``rank``: ``run_dir``, ``table``, ``num_archs``, ``val_images``.
"""

from __future__ import annotations

import argparse

from evonas.errors import EvonasError


def main(args: argparse.Namespace) -> int:
    """Run ``evonas supernet <action>``; bad input raises an :class:`EvonasError`."""
    from evonas.supernet._run import format_rank, format_train_summary, rank_run, resume_training, start_training

    action = getattr(args, "action", None)
    if action == "train":
        progress = False if getattr(args, "no_progress", False) else None
        resume = getattr(args, "resume", None)
        config = getattr(args, "config", None)
        if resume:
            if config or getattr(args, "overrides", None) or getattr(args, "run_dir", None):
                raise EvonasError(
                    "--resume takes no --config, overrides or --run-dir: a run continues with the config it was started with"
                )
            path, summary = resume_training(resume, progress=progress)
        else:
            if not config:
                raise EvonasError("evonas supernet train needs --config PATH (or --resume RUN_DIR)")
            path, summary = start_training(config, list(getattr(args, "overrides", None) or []),
                                           run_dir=getattr(args, "run_dir", None), progress=progress)
        print(format_train_summary(summary, path))
        return 0
    if action == "rank":
        num = getattr(args, "num_archs", None)
        out = rank_run(args.run_dir, table=getattr(args, "table", None), num_archs=200 if num is None else num,
                       progress=not getattr(args, "no_progress", False), val_images=getattr(args, "val_images", None))
        print(format_rank(out))
        return 0
    raise EvonasError(f"unknown supernet action {action!r}; valid actions: train, rank")
