"""Turning the ``candidates`` section of a config into a list of architectures of the space."""

from __future__ import annotations

import os
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Annotated, Any

from ensembles._config import CandidatesConfig
from evonas.config import ComponentConfig, Registered, from_dict
from evonas.errors import ArchError, ConfigError, DataError, RunDirError
from evonas.runs import RunDir
from evonas.search import load_history, pareto_front
from evonas.spaces import Arch, SearchSpace


@dataclass(frozen=True)
class Candidate:
    """One architecture to train, and where it came from.

    Attributes:
        arch: The genotype (of the space the candidates were resolved with).
        source: Extra information (for search runs: ``cand_id``, the objective value,
            the candidate's metrics).
    """

    arch: Arch
    source: dict[str, Any] = field(default_factory=dict)


def parse_archs(archs: tuple[str, ...] | list[str], space: SearchSpace) -> list[Candidate]:
    """Parse architecture strings of ``space``, rejecting duplicates.

    Raises:
        ArchError: A malformed string (the message quotes it and says what is wrong).
        ConfigError: The list is empty or names an architecture twice.
    """
    if not archs:
        raise ConfigError(f"the candidate list is empty; give at least one architecture string of space {space.name!r}")
    out: list[Candidate] = []
    seen: dict[Arch, int] = {}
    for i, text in enumerate(archs):
        try:
            arch = space.parse(text)
        except ArchError as exc:
            raise ArchError(f"candidates.archs[{i}]: {exc}") from None
        if arch in seen:
            raise ConfigError(
                f"candidates.archs[{i}] repeats candidates.archs[{seen[arch]}] ({text!r}); list each architecture once"
            )
        seen[arch] = i
        out.append(Candidate(arch))
    return out


@dataclass(frozen=True)
class _SpaceSection:
    """The ``space`` section of a search run's config (the rest is not needed here)."""

    space: Annotated[ComponentConfig, Registered("space")] = field(default_factory=lambda: ComponentConfig("nb201"))


def _search_space(run: RunDir) -> SearchSpace:
    """The space a search run searched (its resolved ``space`` section; default ``nb201``)."""
    section = run.config.get("space")
    data = {} if section is None else {"space": section}
    parsed: _SpaceSection = from_dict(_SpaceSection, data, "search run config")
    space: SearchSpace = parsed.space.build("space")
    return space


def candidates_from_search(run_dir: str | os.PathLike[str], top: int, space: SearchSpace) -> list[Candidate]:
    """The ``top`` best distinct architectures of a search run over ``space``, best first.

    Candidates are ranked by their first objective value (signed so that larger is
    better, as the search stored it); failed or unscored candidates are skipped; equal
    values keep the search's order. Distinct means distinct functions: of architectures
    with the same ``space.canonical_key`` (a cell and an isomorphic or otherwise
    equivalent one) only the best-ranked is kept. For a multi-objective search only the
    Pareto front is taken. Fewer than ``top`` are returned when the run has fewer.

    Args:
        run_dir: A run directory written by ``evonas search``.
        top: How many architectures to return.
        space: The space the ensemble is built in; the search run must have searched it.

    Raises:
        RunDirError: ``run_dir`` is missing or not a search run.
        ConfigError: The search run searched another space.
        DataError: The run has no scored candidate.
    """
    run = RunDir.open(run_dir, kind="search")
    searched = _search_space(run)
    if searched != space:
        # Same name: the parameters differ, which the values' reprs show.
        ours, theirs = (space.name, searched.name) if searched.name != space.name else (space, searched)
        raise ConfigError(
            f"search run {str(run.path)!r} searched space {theirs!r}; the ensemble's space is {ours!r} "
            "(set 'space' to the search run's)"
        )
    history = load_history(run)
    scored = [r for r in history if r.values is not None and not r.failed]
    if not scored:
        raise DataError(f"search run {str(run.path)!r} has no scored candidates ({len(history)} in its log)")
    if len(scored[0].values or ()) > 1:
        scored = pareto_front(scored)
    ranked = sorted(((r, (r.values or (0.0,))[0]) for r in scored), key=lambda pair: -pair[1])  # stable: ties keep log order
    out: list[Candidate] = []
    seen: set[Hashable] = set()
    for r, value in ranked:
        try:
            arch = space.validate(r.arch)
        except ArchError as exc:
            raise RunDirError(f"search run {str(run.path)!r}, candidate {r.cand_id}: {exc}") from None
        key = space.canonical_key(arch)
        if key in seen:
            continue
        seen.add(key)
        out.append(
            Candidate(
                arch,
                {
                    "search_run": str(run.path),
                    "cand_id": r.cand_id,
                    "value": value,
                    "metrics": {k: v for k, v in r.metrics.items() if not k.startswith("fitness/")},
                },
            )
        )
        if len(out) == top:
            break
    return out


def resolve_candidates(config: CandidatesConfig, space: SearchSpace) -> list[Candidate]:
    """The candidates a :class:`CandidatesConfig` names, as genotypes of ``space``
    (see :func:`parse_archs`, :func:`candidates_from_search`)."""
    if config.search_run is not None:
        return candidates_from_search(config.search_run, config.num_top, space)
    return parse_archs(config.archs, space)
