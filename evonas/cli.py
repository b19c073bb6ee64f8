"""The ``evonas`` command line.

Every long-running command is one kind of run with the same options and lifecycle
(:mod:`evonas.runs`): ``--config`` or ``--resume``, ``--run-dir``, ``--plugin``,
``--no-progress`` and ``key.sub=value`` overrides. Bad user input (config keys and values,
architecture strings, paths, data files, plugins, flags) ends with one line on stderr
naming the value and what would be valid, and exit code 2; a run in which nothing
succeeded ends with exit code 1 and its first error.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from evonas.errors import EvonasError, RunFailedError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit 2, like every other input error
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        sys.exit(2)


# (command, action) -> run kind; every one of them takes the options of _add_run_command.
RUN_COMMANDS: dict[tuple[str, str | None], tuple[str, str, str]] = {
    ("run", None): (
        "pipeline", "the whole pipeline: supernet, search, final training, ensemble, export",
        "configs/pipeline-digits.yaml",
    ),
    ("search", None): ("search", "run or resume an architecture search", "configs/nb201-rea.yaml"),
    ("supernet", "train"): ("supernet", "train a single-path supernet", "configs/supernet-cifar10.yaml"),
    ("ensemble", "build"): ("ensemble", "train candidates, prune them and evaluate the ensembles", "configs/ensemble-digits.yaml"),
    ("dnas", "train"): (
        "dnas", "differentiable search on the NAS-Bench-201 cell (DARTS, MiLeNAS, NA-DARTS; DARTS-PT selection)",
        "configs/dnas-darts-cifar10.yaml",
    ),
    ("predictors", "evaluate"): (
        "predictors", "rank predictors on a benchmark table (White et al., NeurIPS 2021)", "configs/predictors-nb201.yaml"
    ),
}
_GROUPS = {"supernet": "one-shot supernet training and ranking", "ensemble": "sub-architecture ensembles (SAEP)",
           "predictors": "performance predictors", "dnas": "differentiable architecture search"}


def _add_plugin_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--plugin", action="append", default=[], metavar="MODULE",
        help="import a plugin first (module name, .py file or package directory; repeatable)",
    )


def _add_run_command(parser: argparse.ArgumentParser, example: str) -> None:
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--config", help=f"YAML config (e.g. {example}); relative paths in it are relative to it")
    group.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR (overrides: extendable keys only)")
    parser.add_argument("--run-dir", help="where to write the run directory (must not exist or be empty)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_plugin_option(parser)
    parser.add_argument("overrides", nargs="*", metavar="key.sub=value", help="config overrides")


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="evonas", description="Evolutionary and ensemble NAS with performance predictors.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    groups: dict[str, argparse._SubParsersAction] = {}
    for (command, action), (_, help_text, example) in RUN_COMMANDS.items():
        if action is None:
            _add_run_command(sub.add_parser(command, help=help_text), example)
            continue
        if command not in groups:
            g = sub.add_parser(command, help=_GROUPS[command])
            groups[command] = g.add_subparsers(dest="action", required=True, parser_class=_Parser)
        _add_run_command(groups[command].add_parser(action, help=help_text), example)

    rank = groups["supernet"].add_parser("rank", help="Kendall tau of a trained supernet against the NAS-Bench-201 table")
    rank.add_argument("run_dir", metavar="RUN_DIR")
    rank.add_argument("--table", help="NAS-Bench-201 table (default: the run's table, else $EVONAS_NB201)")
    rank.add_argument("--num-archs", type=int, default=200, help="random architectures to rank (default 200)")
    rank.add_argument("--val-images", type=int, default=None,
                      help="validation images per architecture (default: the run's evaluation.val_images; "
                           "more is slower and steadier, e.g. 5000)")
    rank.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_plugin_option(rank)

    report = sub.add_parser("report", help="plots and a Markdown summary of a run directory of any kind")
    report.add_argument("run_dir", metavar="RUN_DIR")
    _add_plugin_option(report)

    predict = sub.add_parser("predict", help="classify image files with an exported ensemble (CSV of probabilities)")
    predict.add_argument("run_dir", metavar="RUN_DIR", help="a run directory with export/, or an export folder")
    predict.add_argument("paths", nargs="+", metavar="PATH", help="image files or folders (searched recursively)")
    predict.add_argument("--output", metavar="FILE.csv", help="write the CSV here (default: standard output)")
    predict.add_argument("--force", action="store_true", help="overwrite an existing --output file")
    predict.add_argument("--batch-size", type=int, default=256, help="images per forward pass (default 256)")
    _add_plugin_option(predict)
    return parser


def _run_command(args: argparse.Namespace) -> int:
    from evonas.runs import resume_run, start_run

    kind = RUN_COMMANDS[(args.command, getattr(args, "action", None))][0]
    progress = False if args.no_progress else None
    if args.resume:
        if args.run_dir:
            raise EvonasError("--resume takes no --run-dir: a run continues in its own directory")
        result = resume_run(args.resume, args.overrides, progress=progress, kind=kind)
    else:
        result = start_run(kind, args.config, args.overrides, run_dir=args.run_dir, progress=progress)
    print(result.text)
    return 0


def _dispatch(args: argparse.Namespace) -> int:
    from evonas.plugins import load_entry_points, load_plugins

    load_entry_points()
    load_plugins(args.plugin)
    if (args.command, getattr(args, "action", None)) in RUN_COMMANDS:
        return _run_command(args)
    if args.command == "report":
        from evonas.runs import report_run

        print(report_run(args.run_dir))
        return 0
    if args.command == "predict":
        from evonas._predict import predict_command

        return predict_command(args)
    from evonas.supernet._cli import rank

    return rank(args)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``evonas`` console script."""
    args = _build_parser().parse_args(argv)
    try:
        return _dispatch(args)
    except EvonasError as exc:
        sys.stderr.write(f"evonas: error: {' '.join(str(exc).split())}\n")
        return 2
    except RunFailedError as exc:
        sys.stderr.write(f"evonas: error: {' '.join(str(exc).split())}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("evonas: interrupted\n")
        return 130
    except BrokenPipeError:
        # The reader of our output went away (e.g. `evonas ... | head`): stop quietly.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
