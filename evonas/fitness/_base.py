"""Fitness: how the results of evaluations become the values a strategy maximises.

A fitness lives in the search loop (the driver), not in the workers: it names the
architectures that must be evaluated to score a candidate (:meth:`plan`) and combines
their evaluations into a score (:meth:`combine`). The loop runs the planned evaluations
through the executor, in parallel when it can, and counts each against the budget.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

from evonas.errors import ConfigError
from evonas.evaluation import Evaluation
from evonas.spaces import Arch

NeighbourCost = Literal["counted", "free"]
"""How a fitness's neighbour evaluations are charged to the budget (see :class:`Fitness`)."""
NEIGHBOUR_COSTS: tuple[NeighbourCost, ...] = ("counted", "free")


@dataclass(frozen=True)
class Objective:
    """One objective: a metric of the evaluator and whether larger or smaller is better.

    Attributes:
        metric: Name of a metric the evaluator reports.
        direction: ``"max"`` (default) or ``"min"``.
    """

    metric: str
    direction: Literal["max", "min"] = "max"

    def signed(self, value: float) -> float:
        """The value as something to maximise."""
        return value if self.direction == "max" else -value


@dataclass(frozen=True)
class Score:
    """A candidate's fitness.

    Attributes:
        values: One value per objective, signed so that larger is better; ``None`` when
            the candidate failed.
        metrics: The candidate's own metrics, plus ``fitness/<metric>`` entries with the
            (aggregated) objective values in their natural sign.
        failed: The candidate could not be scored.
        num_evaluations: Evaluations that scored it (1, or 1 + neighbours).
    """

    values: tuple[float, ...] | None
    metrics: dict[str, float]
    failed: bool
    num_evaluations: int


class PlainFitness:
    """The candidate's own evaluation, nothing else.

    Args:
        objectives: What to maximise or minimise.
        cache: Evaluate each architecture once per run and reuse the result (off by
            default: with a noisy evaluator a repeat is a new draw, and the standard
            NAS-Bench-201 protocol charges repeats again).
    """

    neighbour_cost: NeighbourCost = "counted"  # no neighbours: every evaluation is the candidate's own

    def __init__(self, objectives: tuple[Objective, ...], cache: bool = False) -> None:
        if not objectives:
            raise ConfigError("fitness.objectives must name at least one metric")
        self.objectives = tuple(objectives)
        self.cache = cache

    def plan(self, arch: Arch) -> list[Arch]:
        return [arch]

    def combine(self, arch: Arch, evaluations: Mapping[Arch, Evaluation]) -> Score:
        ev = evaluations[arch]
        if ev.failed:
            return Score(None, dict(ev.metrics), True, 1)
        values = _objective_values(self.objectives, ev.metrics)
        metrics = dict(ev.metrics)
        for obj, v in zip(self.objectives, values):
            metrics[f"fitness/{obj.metric}"] = obj.signed(v)
        if not all(math.isfinite(v) for v in values):  # NaN or inf: no score, never a winner
            return Score(None, metrics, True, 1)
        return Score(values, metrics, False, 1)


def _objective_values(objectives: tuple[Objective, ...], metrics: Mapping[str, float]) -> tuple[float, ...]:
    out = []
    for obj in objectives:
        if obj.metric not in metrics:
            raise ConfigError(
                f"objective metric {obj.metric!r} is not reported by the evaluator; "
                f"it reports: {', '.join(sorted(metrics))}"
            )
        out.append(obj.signed(float(metrics[obj.metric])))
    return tuple(out)


class Fitness(Protocol):
    """What the search loop needs of a fitness.

    Attributes:
        objectives: What to maximise or minimise.
        cache: Evaluate each architecture once per run and reuse the result.
        neighbour_cost: ``"counted"``: every evaluation the loop runs is charged to the
            budget. ``"free"``: each candidate is charged its own evaluation (its cost,
            once per candidate, even when the evaluation was cached) and nothing else; the
            evaluations of the rest of its plan are run but not charged.
    """

    objectives: tuple[Objective, ...]
    cache: bool
    neighbour_cost: NeighbourCost

    def plan(self, arch: Arch) -> list[Arch]:
        """The architectures whose evaluations score ``arch``; ``arch`` comes first."""
        ...

    def combine(self, arch: Arch, evaluations: Mapping[Arch, Evaluation]) -> Score:
        """Score ``arch`` from the evaluations of everything :meth:`plan` named."""
        ...


def check_metrics(objectives: tuple[Objective, ...], available: tuple[str, ...]) -> None:
    """Raise ConfigError if an objective names a metric the evaluator never reports."""
    for obj in objectives:
        if obj.metric not in available:
            raise ConfigError(
                f"objective metric {obj.metric!r} is not reported by the evaluator; valid metrics: {', '.join(available)}"
            )
