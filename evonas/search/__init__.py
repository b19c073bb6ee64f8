"""The search loop, its config, and the ``search`` run kind."""

from __future__ import annotations

from evonas.search._config import FitnessConfig, SearchConfig, SearchParts, build_parts
from evonas.search._loop import (
    Budget,
    CandidateRecord,
    Search,
    SearchState,
    as_evaluation,
    best_candidate,
    evaluation_seed,
    pareto_front,
)
from evonas.search._run import (
    SEARCH,
    SearchRun,
    format_summary,
    front_hypervolume,
    load_history,
    resume_search,
    start_search,
    summarize,
    write_report,
)

__all__ = [
    "Budget",
    "CandidateRecord",
    "FitnessConfig",
    "SEARCH",
    "Search",
    "SearchConfig",
    "SearchParts",
    "SearchRun",
    "SearchState",
    "as_evaluation",
    "best_candidate",
    "build_parts",
    "evaluation_seed",
    "format_summary",
    "front_hypervolume",
    "load_history",
    "pareto_front",
    "resume_search",
    "start_search",
    "summarize",
    "write_report",
]
