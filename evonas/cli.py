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


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("overrides", nargs="*", metavar="key.sub=value", help="config overrides")


def _add_predictors(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predictors", help="performance predictors")
    psub = p.add_subparsers(dest="action", required=True, parser_class=_Parser)
    pe = psub.add_parser("evaluate", help="rank predictors on the NAS-Bench-201 table (White et al., NeurIPS 2021)")
    pe.add_argument("--config", required=True, help="YAML config of the harness (see configs/predictors-nb201.yaml)")
    pe.add_argument("--out", help="output directory (default runs/predictors-<time>)")
    _add_run_options(pe)


def _add_ensemble(sub: argparse._SubParsersAction) -> None:
    e = sub.add_parser("ensemble", help="sub-architecture ensembles (SAEP)")
    esub = e.add_subparsers(dest="action", required=True, parser_class=_Parser)
    eb = esub.add_parser("build", help="train candidates, prune them and evaluate the ensembles")
    egroup = eb.add_mutually_exclusive_group(required=True)
    egroup.add_argument("--config", help="YAML config (see configs/ensemble-*.yaml)")
    egroup.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted build (saved members are kept)")
    eb.add_argument("--run-dir", help="where to write the run directory (must not exist or be empty)")
    _add_run_options(eb)


def _add_supernet(sub: argparse._SubParsersAction) -> None:
    n = sub.add_parser("supernet", help="one-shot supernet training and ranking")
    nsub = n.add_subparsers(dest="action", required=True, parser_class=_Parser)
    nt = nsub.add_parser("train", help="train a single-path supernet")
    ngroup = nt.add_mutually_exclusive_group(required=True)
    ngroup.add_argument("--config", help="YAML config (see configs/supernet-cifar10.yaml)")
    ngroup.add_argument("--resume", metavar="RUN_DIR", help="continue the training in RUN_DIR")
    nt.add_argument("--run-dir", help="where to write the run directory (must not exist or be empty)")
    _add_run_options(nt)
    nr = nsub.add_parser("rank", help="Kendall tau of a trained supernet against the NAS-Bench-201 table")
    nr.add_argument("run_dir", metavar="RUN_DIR")
    nr.add_argument("--table", help="NAS-Bench-201 table (default $EVONAS_NB201)")
    nr.add_argument("--num-archs", type=int, default=200, help="random architectures to rank (default 200)")
    nr.add_argument("--val-images", type=int, default=None,
                    help="validation images per architecture (default: the run's evaluation.val_images; "
                         "more is slower and steadier, e.g. 5000)")


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="evonas", description="Evolutionary and ensemble NAS with performance predictors.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    s = sub.add_parser("search", help="run or resume an architecture search")
    group = s.add_mutually_exclusive_group(required=True)
    group.add_argument("--config", help="YAML config of the search (see configs/)")
    group.add_argument("--resume", metavar="RUN_DIR", help="continue the search in RUN_DIR")
    s.add_argument("--run-dir", help="where to write the run directory (must not exist or be empty)")
    _add_run_options(s)

    r = sub.add_parser("report", help="plots and a Markdown summary of a run directory")
    r.add_argument("run_dir", metavar="RUN_DIR")

    for add in _SUBCOMMANDS:
        add(sub)
    return parser


# Sub-commands implemented by other packages: name -> module with main(args) -> int.
_DELEGATES = {"predictors": "predictors._cli", "ensemble": "ensembles._cli", "supernet": "evonas.supernet._cli"}
_SUBCOMMANDS = (_add_predictors, _add_ensemble, _add_supernet)


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
    if args.command == "report":
        return _report(args)
    from importlib import import_module

    return int(import_module(_DELEGATES[args.command]).main(args))


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
