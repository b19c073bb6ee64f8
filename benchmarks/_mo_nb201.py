"""Multi-objective search on the NAS-Bench-201 table, scored against the table's true Pareto front.

Each run searches for accurate and small cells: maximise the 12-epoch cifar10-valid
validation accuracy and minimise the parameter count (Dong & Yang, "NAS-Bench-201", ICLR
2020: select on the 12-epoch proxy, each query charged its simulated 12-epoch training
time), until the budget is spent. The run's found front is the Pareto front of everything
it evaluated. It is scored by its hypervolume (Zitzler & Thiele, PPSN 1998) as a fraction of
the hypervolume of the table's exact front over all 15,625 cells, with one reference point
(the worst value of each objective over the table): once on the selection objectives, and
once with the same architectures measured on the reported objectives (200-epoch CIFAR-10
test accuracy vs parameters) against the true front of those.

Methods: NSGA-II (Deb et al., IEEE TEC 2002) and random search; predictor-guided
strategies join only if they take several objectives (a note says when they do not).

Used by benchmarks/search_nb201.py (``run_mo_section``); alone:
``python benchmarks/_mo_nb201.py [--seeds 100] [--table PATH]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from evonas.config import from_dict
from evonas.fitness import Objective, TrueFront, pareto_mask, signed_values, table_front
from evonas.search import CandidateRecord, Search, SearchConfig, build_parts
from evonas.spaces import Arch
from evonas.strategies import STRATEGIES
from evonas.tabular import NB201Table

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TABLE = ROOT.parent / "shared" / "data" / "nb201" / "nb201.csv.gz"
SELECT = (Objective("cifar10-valid_valid_acc_12ep", "max"), Objective("params_M", "min"))
REPORTED = (Objective("cifar10_test_acc", "max"), Objective("params_M", "min"))
# name in the table, strategy, its parameters (NSGA-II's are configs/nb201-nsga2.yaml's)
METHODS = (
    ("NSGA-II (P=20, crossover 0.9, mutation 1.0)", "nsga2", {"population_size": 20, "crossover_prob": 0.9, "mutation_prob": 1.0}),
    ("Random search", "random", {}),
    ("Optuna NSGA-II (peer, evonas strategy optuna_nsga2)", "optuna_nsga2", {}),
)
GUIDED = ("bananas", "npenas")  # predictor-guided: on both objectives if they take several, else on accuracy alone
_RF20 = {"name": "rf", "params": {"n_estimators": 20}}
GUIDED_PARAMS = {  # the variants search_nb201.py's single-objective tables run
    "bananas": {"num_candidates": 240, "surrogate": _RF20, "local_search_after": 50},
    "npenas": {"children_per_parent": 24, "acquisition": "its", "surrogate": _RF20, "local_search_after": 50},
}


def _budget(budget: Mapping[str, Any] | float) -> dict[str, Any]:
    return {"seconds": float(budget)} if isinstance(budget, (int, float)) else dict(budget)


def _describe(budget: dict[str, Any]) -> str:
    parts = []
    if budget.get("seconds") is not None:
        parts.append(f"{budget['seconds']:,.0f} s simulated")
    if budget.get("evaluations") is not None:
        parts.append(f"{budget['evaluations']:,} evaluations")
    return " and ".join(parts)


def within_budget(history: list[CandidateRecord], cost: Callable[[Arch], float], budget: dict[str, Any]) -> list[CandidateRecord]:
    """The candidates the budget pays for, counted as NAS-Bench-201's reference code does.

    In the order they were asked, each charged its own query, up to and including the one
    that reaches the budget. The search loop checks its budget before asking, but a
    generational strategy asks a whole generation before any of it is charged, so its run
    may go further; this cut makes every method stop by the same rule.
    """
    kept: list[CandidateRecord] = []
    seconds = 0.0
    for record in sorted(history, key=lambda r: r.cand_id):
        if budget.get("seconds") is not None and seconds >= budget["seconds"]:
            break
        if budget.get("evaluations") is not None and len(kept) >= budget["evaluations"]:
            break
        kept.append(record)
        seconds += cost(record.arch)
    return kept


def run_method(table_path: str, strategy: str, params: dict[str, Any], seeds: Iterable[int], budget: dict[str, Any],
               true_select: TrueFront, true_reported: TrueFront, objectives: int = 2) -> dict[str, np.ndarray]:
    """Run ``strategy`` once per seed; per run: HV ratios (selection, reported), front size,
    queries within the budget and queries the loop ran beyond it. With ``objectives=1``
    the search sees only the accuracy; its front is still that of everything it queried."""
    out: dict[str, list[float]] = {"select": [], "reported": [], "front": [], "evaluations": [], "beyond": []}
    for seed in seeds:
        raw = {
            "seed": seed,
            "evaluator": {"name": "tabular", "params": {
                "tables": [{"name": "nb201", "params": {"path": table_path}}],
                "metric": SELECT[0].metric, "report": [REPORTED[0].metric, "params_M"]}},
            "fitness": {"objectives": [{"metric": o.metric, "direction": o.direction} for o in SELECT[:objectives]]},
            "strategy": {"name": strategy, "params": params},
            "budget": budget,
            "progress": False,
        }
        config = from_dict(SearchConfig, raw)
        parts = build_parts(config)
        search = Search(parts.space, parts.strategy, parts.fitness, parts.evaluator, parts.executor, config.budget, seed)
        history = search.run_search()
        kept = within_budget(history, parts.evaluator.table.cost, budget)
        scored = [r for r in kept if not r.failed]
        values = signed_values(SELECT, [r.metrics for r in scored])
        on_front = pareto_mask(values)
        front = [r for r, keep in zip(scored, on_front, strict=True) if keep]
        out["select"].append(true_select.ratio(values[on_front]))
        out["reported"].append(true_reported.ratio(signed_values(REPORTED, [r.metrics for r in front])))
        out["front"].append(len(front))
        out["evaluations"].append(len(kept))
        out["beyond"].append(len(history) - len(kept))
    return {k: np.asarray(v, dtype=float) for k, v in out.items()}


def _ms(values: np.ndarray) -> str:
    return f"{values.mean():.4f} ± {values.std():.4f}"


def run_mo_section(table_path: str | os.PathLike[str], seeds: Iterable[int] | int = 100,
                   budget: Mapping[str, Any] | float = 12000.0) -> str:
    """The multi-objective section: protocol, then one Markdown row per method.

    Args:
        table_path: The NAS-Bench-201 table (``nb201.csv.gz``).
        seeds: Run seeds, or how many (``range(seeds)``; default 100).
        budget: ``budget`` section of a search config (e.g. ``{"seconds": 12000}``), or
            simulated seconds (default 12,000, the standard protocol's).

    Returns:
        Markdown: a heading, the protocol, notes and the table.
    """
    seeds = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    spent = _budget(budget)
    table = NB201Table.load(table_path)
    true_select = table_front(table, table.space, SELECT)
    true_reported = table_front(table, table.space, REPORTED)
    select_ref, reported_ref = true_select.reference, true_reported.reference

    lines = [f"## Multi-objective: 12-epoch validation accuracy vs parameters, {_describe(spent)} budget", ""]
    lines.append(
        f"Protocol: every run maximises `{SELECT[0].metric}` and minimises `params_M` on the NAS-Bench-201 table "
        f"(each query charged its simulated 12-epoch training time) until the budget is spent, counted as "
        f"NAS-Bench-201's reference code does: the queries in the order asked, up to and including the one that "
        f"reaches the budget (a generational strategy's run is cut there; *beyond* counts the queries its last "
        f"generation asked past that point, which are not scored). Its found front is the Pareto front of the "
        f"architectures queried within the budget. **HV select** = hypervolume of the found front on "
        f"those objectives / hypervolume of the table's true front over all {true_select.num_archs:,} cells "
        f"({len(true_select.archs)} cells), reference point the worst value of each objective over the table "
        f"({select_ref[0]:.2f} %, {-select_ref[1]:.4f} M params). **HV reported** = the same found architectures "
        f"measured on `{REPORTED[0].metric}` (200 epochs) vs `params_M`, over the true front of those objectives "
        f"({len(true_reported.archs)} cells; reference {reported_ref[0]:.2f} %, {-reported_ref[1]:.4f} M params). "
        f"Mean ± std (population) over {len(seeds)} seeds per method; the true front itself scores 1 on each."
    )
    lines.append("")
    methods = [(name, strategy, params, len(SELECT)) for name, strategy, params in METHODS]
    for name in GUIDED:
        cls = STRATEGIES.get(name)
        params = GUIDED_PARAMS.get(name, {})
        if cls.max_objectives >= len(SELECT):
            methods.append((f"{name} {params or '(default parameters)'}", name, params, len(SELECT)))
        else:
            methods.append((f"{name}, accuracy only{' + local search' if params else ''} (single-objective)", name, params, 1))
            lines.append(
                f"Note: `{name}` takes {cls.max_objectives} objective: its row searches the accuracy alone, and its "
                "found front is the Pareto front of every cell it queried."
            )
    header = ("| method | runs | HV select (12-ep valid acc vs params) | HV reported (200-ep test acc vs params) "
              "| front size | queries | beyond | wall s |")
    lines += ["", header, "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, strategy, params, objectives in methods:
        t0 = time.perf_counter()
        r = run_method(str(table_path), strategy, params, seeds, spent, true_select, true_reported, objectives)
        lines.append(
            f"| {name} | {len(seeds)} | {_ms(r['select'])} | {_ms(r['reported'])} | {r['front'].mean():.1f} "
            f"| {r['evaluations'].mean():.1f} | {r['beyond'].mean():.1f} | {time.perf_counter() - t0:.1f} |"
        )
    # the ceiling of the reported column: the true selection front, measured on the reported objectives
    oracle = true_reported.ratio(signed_values(
        REPORTED, [{m.metric: table.query(a, m.metric) for m in REPORTED} for a in true_select.archs]))
    lines.append(f"| True selection front (all cells read) | - | 1.0000 | {oracle:.4f} | {len(true_select.archs)} "
                 f"| {true_select.num_archs} | - | - |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=100, help="runs per method (default 100)")
    parser.add_argument("--seconds", type=float, default=12000.0, help="simulated budget (default 12000)")
    parser.add_argument("--table", default=os.environ.get("EVONAS_NB201", str(DEFAULT_TABLE)))
    args = parser.parse_args()
    print(run_mo_section(args.table, args.seeds, {"seconds": args.seconds}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
