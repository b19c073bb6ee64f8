"""Fitness: objectives, how evaluations are combined into a candidate's score, and Pareto fronts."""

from __future__ import annotations

from evonas.fitness._base import NEIGHBOUR_COSTS, Fitness, NeighbourCost, Objective, PlainFitness, Score, check_metrics
from evonas.fitness._front import TrueFront, hypervolume, pareto_mask, signed_values, table_front
from evonas.fitness._neighbourhood import AGGREGATES, NeighbourhoodAwareFitness, aggregate, parse_aggregate

__all__ = [
    "AGGREGATES",
    "NEIGHBOUR_COSTS",
    "Fitness",
    "NeighbourCost",
    "NeighbourhoodAwareFitness",
    "Objective",
    "PlainFitness",
    "Score",
    "TrueFront",
    "aggregate",
    "check_metrics",
    "hypervolume",
    "pareto_mask",
    "parse_aggregate",
    "signed_values",
    "table_front",
]
