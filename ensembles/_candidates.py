"""Turning the ``candidates`` section of a config into a list of architectures."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from ensembles._config import CandidatesConfig
from evonas.errors import ArchError, ConfigError, DataError
from evonas.runs import RunDir
from evonas.search import load_history
from evonas.spaces import Arch, NB201Space

_SPACE = NB201Space()


@dataclass(frozen=True)
class Candidate:
    """One architecture to train, and where it came from.

    Attributes:
        arch: The genotype.
        source: Extra information (for search runs: ``cand_id``, the objective value,
            the candidate's metrics).
    """

    arch: Arch
    source: dict[str, Any] = field(default_factory=dict)

    @property
    def arch_str(self) -> str:
        """The official NAS-Bench-201 string."""
        return _SPACE.format(self.arch)


def parse_archs(archs: tuple[str, ...] | list[str]) -> list[Candidate]:
    """Parse NAS-Bench-201 strings, rejecting duplicates.

    Raises:
        ArchError: A malformed string (the message quotes it and says what is wrong).
        ConfigError: The list is empty or names an architecture twice.
    """
    if not archs:
        raise ConfigError("the candidate list is empty; give at least one NAS-Bench-201 cell string")
    out: list[Candidate] = []
    seen: dict[Arch, int] = {}
    for i, text in enumerate(archs):
        try:
            arch = _SPACE.parse(text)
        except ArchError as exc:
            raise ArchError(f"candidates.archs[{i}]: {exc}") from None
        if arch in seen:
            raise ConfigError(
                f"candidates.archs[{i}] repeats candidates.archs[{seen[arch]}] ({text!r}); list each architecture once"
            )
        seen[arch] = i
        out.append(Candidate(arch))
    return out


def candidates_from_search(run_dir: str | os.PathLike[str], top: int) -> list[Candidate]:
    """The ``top`` best distinct architectures of a search run, best first.

    Candidates are ranked by their first objective value (signed so that larger is
    better, as the search stored it); failed or unscored candidates are skipped; of
    repeated architectures the best-ranked record is kept; equal values keep the
    search's order. Fewer than ``top`` are returned when the run has fewer distinct
    scored architectures.

    Args:
        run_dir: A run directory written by ``evonas search``.
        top: How many architectures to return.

    Raises:
        RunDirError: ``run_dir`` is missing or not a search run.
        DataError: The run has no scored candidate.
    """
    run = RunDir.open(run_dir, kind="search")
    history = load_history(run)
    scored = [r for r in history if r.values is not None and not r.failed]
    if not scored:
        raise DataError(f"search run {str(run.path)!r} has no scored candidates ({len(history)} in its log)")
    ranked = sorted(scored, key=lambda r: -r.values[0])  # type: ignore[index]  # stable: ties keep log order
    out: list[Candidate] = []
    seen: set[Arch] = set()
    for r in ranked:
        if r.arch in seen:
            continue
        seen.add(r.arch)
        out.append(
            Candidate(
                tuple(r.arch),
                {
                    "search_run": str(run.path),
                    "cand_id": r.cand_id,
                    "value": r.values[0],  # type: ignore[index]
                    "metrics": {k: v for k, v in r.metrics.items() if not k.startswith("fitness/")},
                },
            )
        )
        if len(out) == top:
            break
    return out


def resolve_candidates(config: CandidatesConfig) -> list[Candidate]:
    """The candidates a :class:`CandidatesConfig` names (see :func:`parse_archs`, :func:`candidates_from_search`)."""
    if config.search_run is not None:
        return candidates_from_search(config.search_run, config.num_top)
    return parse_archs(config.archs)
