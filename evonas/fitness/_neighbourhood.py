"""Neighbourhood-aware fitness: Wang et al., "Neighborhood-Aware Neural Architecture
Search", BMVC 2021.

An architecture is scored by aggregating an objective over itself and its one-edit
neighbours, which favours architectures in flat regions of the landscape: their score
survives the small perturbations between the search's proxy and the final training.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

import numpy as np

from evonas.errors import ConfigError
from evonas.evaluation import Evaluation
from evonas.fitness._base import NEIGHBOUR_COSTS, NeighbourCost, Objective, Score, _objective_values
from evonas.spaces import Arch, SearchSpace

_QUANTILE = re.compile(r"^q(0(\.\d+)?|1(\.0+)?)$")
AGGREGATES = ("mean", "min", "max", "median", "q<p> (a quantile, e.g. q0.25)")


def parse_aggregate(name: str) -> float | str:
    """Validate an aggregate name; quantiles are returned as their level in [0, 1]."""
    if name in ("mean", "min", "max", "median"):
        return name
    m = _QUANTILE.match(name)
    if m is None:
        raise ConfigError(f"invalid fitness aggregate {name!r}; valid: {', '.join(AGGREGATES)}")
    return float(name[1:])


def aggregate(values: np.ndarray, how: float | str) -> float:
    """Aggregate ``values`` (already signed so larger is better)."""
    if how == "mean":
        return float(np.mean(values))
    if how == "min":
        return float(np.min(values))
    if how == "max":
        return float(np.max(values))
    if how == "median":
        return float(np.median(values))
    return float(np.quantile(values, float(how)))


class NeighbourhoodAwareFitness:
    """Score an architecture over its neighbourhood (NA fitness).

    With ``aggregate="mean"`` (the paper's default), the score of ``a`` on each objective
    is the mean of the objective over ``{a} ∪ N(a)``, where ``N(a)`` are the space's one-edit
    neighbours (24 for NAS-Bench-201). ``"min"`` is the pessimistic variant and ``"q<p>"``
    a quantile (of the signed values, so ``q0.25`` is pessimistic for both directions).
    Every evaluation is cached for the run: neighbourhoods of nearby candidates overlap,
    and each architecture is evaluated once. Neighbours whose evaluation failed are left
    out of the aggregate; if the candidate itself failed it gets no score.

    What the budget is charged is ``neighbour_cost``. ``"counted"`` charges every
    evaluation run, neighbours included (each architecture once, as it is cached).
    ``"free"`` is the paper's accounting: Wang et al. compare neighbourhood-aware and
    plain searches at equal numbers of searched architectures, reading the neighbours
    from the benchmark, so each candidate is charged its own evaluation (again for a
    candidate searched twice, as the NAS-Bench-201 protocol charges repeats) and its
    neighbours are read for nothing. Only a table prices neighbours that way; a search
    config accepts ``"free"`` with the tabular evaluator only.

    Args:
        space: The search space that defines the neighbours.
        objectives: What to maximise or minimise.
        aggregate: ``"mean"`` (default), ``"min"``, ``"max"``, ``"median"`` or ``"q<p>"``.
        include_self: Aggregate over the architecture as well as its neighbours (default True).
        neighbour_cost: ``"counted"`` (default) or ``"free"`` (see above).

    Raises:
        ConfigError: An unknown aggregate or ``neighbour_cost``.
    """

    cache = True

    def __init__(
        self,
        space: SearchSpace,
        objectives: tuple[Objective, ...],
        aggregate: str = "mean",
        include_self: bool = True,
        neighbour_cost: NeighbourCost = "counted",
    ) -> None:
        if not objectives:
            raise ConfigError("fitness.objectives must name at least one metric")
        if neighbour_cost not in NEIGHBOUR_COSTS:
            raise ConfigError(
                f"invalid fitness neighbour_cost {neighbour_cost!r}; valid: {', '.join(NEIGHBOUR_COSTS)}"
            )
        self.space = space
        self.objectives = tuple(objectives)
        self.aggregate = aggregate
        self._how = parse_aggregate(aggregate)
        self.include_self = include_self
        self.neighbour_cost: NeighbourCost = neighbour_cost

    def plan(self, arch: Arch) -> list[Arch]:
        return [arch, *self.space.neighbors(arch)]

    def combine(self, arch: Arch, evaluations: Mapping[Arch, Evaluation]) -> Score:
        own = evaluations[arch]
        plan = self.plan(arch)
        if own.failed:
            return Score(None, dict(own.metrics), True, len(plan))
        members = plan if self.include_self else plan[1:]
        rows = [
            _objective_values(self.objectives, evaluations[a].metrics)
            for a in members
            if not evaluations[a].failed
        ]
        table = np.asarray(rows, dtype=float)
        values = tuple(aggregate(table[:, k], self._how) for k in range(len(self.objectives)))
        metrics = dict(own.metrics)
        for obj, v in zip(self.objectives, values):
            metrics[f"fitness/{obj.metric}"] = obj.signed(v)
        metrics["fitness/num_neighbours_used"] = float(len(rows) - (1 if self.include_self else 0))
        if not all(math.isfinite(v) for v in values):  # NaN or inf: no score, never a winner
            return Score(None, metrics, True, len(plan))
        return Score(values, metrics, False, len(plan))
