"""The ``evonas`` command line.

Bad user input (config keys and values, architecture strings, paths, data files, flags)
ends with one line on stderr naming the value and what would be valid, and exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from evonas.errors import EvonasError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, like every other input error
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        sys.exit(2)


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="evonas", description="Evolutionary and ensemble NAS with performance predictors.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    s = sub.add_parser("search", help="run or resume an architecture search")
    group = s.add_mutually_exclusive_group(required=True)
    group.add_argument("--config", help="YAML config of the search (see configs/)")
    group.add_argument("--resume", metavar="RUN_DIR", help="continue the search in RUN_DIR")
    s.add_argument("--run-dir", help="where to write the run directory (must not exist or be empty)")
    s.add_argument("--no-progress", action="store_true", help="no progress bar")
    s.add_argument("overrides", nargs="*", metavar="key.sub=value", help="config overrides")

    r = sub.add_parser("report", help="plots and a Markdown summary of a run directory")
    r.add_argument("run_dir", metavar="RUN_DIR")

    return parser


def _search(args: argparse.Namespace) -> int:
    from evonas.search import format_summary, resume_search, start_search

    progress = False if args.no_progress else None
    if args.resume:
        if args.overrides or args.run_dir:
            raise EvonasError("--resume takes no overrides or --run-dir: a run continues with the config it was started with")
        result = resume_search(args.resume, progress=progress)
    else:
        result = start_search(args.config, args.overrides, run_dir=args.run_dir, progress=progress)
    print(format_summary(result.summary, result.run_dir))
    return 0


def _report(args: argparse.Namespace) -> int:
    from evonas.report import write_report

    print(write_report(args.run_dir))
    return 0


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "search":
        return _search(args)
    return _report(args)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``evonas`` console script."""
    args = _build_parser().parse_args(argv)
    try:
        return _dispatch(args)
    except EvonasError as exc:
        sys.stderr.write(f"evonas: error: {' '.join(str(exc).split())}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("evonas: interrupted\n")
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
