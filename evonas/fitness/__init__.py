"""Fitness: objectives and how evaluations are combined into a candidate's score."""

from __future__ import annotations

from evonas.fitness._base import Fitness, Objective, PlainFitness, Score, check_metrics
from evonas.fitness._neighbourhood import AGGREGATES, NeighbourhoodAwareFitness, aggregate, parse_aggregate

__all__ = [
    "AGGREGATES",
    "Fitness",
    "NeighbourhoodAwareFitness",
    "Objective",
    "PlainFitness",
    "Score",
    "aggregate",
    "check_metrics",
    "parse_aggregate",
]
