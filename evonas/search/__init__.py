"""The search loop, its config, and runs in run directories."""

from __future__ import annotations

from evonas.search._config import ComponentConfig, FitnessConfig, SearchConfig, build_parts, resolve_config
from evonas.search._loop import Budget, CandidateRecord, Search, SearchState, best_candidate, evaluation_seed, pareto_front
from evonas.search._run import SearchResult, format_summary, load_history, resume_search, start_search, summarize

__all__ = [
    "Budget",
    "CandidateRecord",
    "ComponentConfig",
    "FitnessConfig",
    "Search",
    "SearchConfig",
    "SearchResult",
    "SearchState",
    "best_candidate",
    "build_parts",
    "evaluation_seed",
    "format_summary",
    "load_history",
    "pareto_front",
    "resolve_config",
    "resume_search",
    "start_search",
    "summarize",
]
