"""Regularized (aging) evolution: Real et al., "Regularized Evolution for Image Classifier
Architecture Search", AAAI 2019, in the steady-state form used on NAS-Bench-201 by
Dong & Yang (ICLR 2020)."""

from __future__ import annotations

import collections
from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np

from evonas.config import MAX_POPULATION, Checked, Range
from evonas.spaces import Arch, SearchSpace
from evonas.strategies._base import FitnessValues, Strategy


@dataclass(frozen=True)
class REAConfig(Checked):
    """Hyper-parameters of regularized evolution.

    Attributes:
        population_size: Members kept alive; the oldest dies when a child is added (default 10).
        tournament_size: Members sampled (with replacement, as in NAS-Bench-201's reference)
            per tournament; the fittest is the parent (default 3).
    """

    population_size: Annotated[int, Range(1, MAX_POPULATION)] = 10
    tournament_size: Annotated[int, Range(1, MAX_POPULATION)] = 3


class RegularizedEvolution(Strategy):
    """Aging evolution, asynchronous steady state.

    The first ``population_size`` proposals are uniform samples. Every later proposal is
    a one-edit mutation of the winner of a tournament among the current population; each
    result told joins the population and pushes out the oldest member. Proposals are
    made as soon as a slot is free, so with a parallel executor a child can be proposed
    before its siblings' results are back (as in Real et al.'s distributed setting).
    Failed evaluations never join the population.
    """

    Config = REAConfig

    def __init__(self, space: SearchSpace, num_objectives: int, rng: np.random.Generator, config: Any = None) -> None:
        super().__init__(space, num_objectives, rng, config)
        self.population: collections.deque[tuple[Arch, float]] = collections.deque()
        self.num_asked = 0
        self.num_told = 0

    def ask(self) -> Arch | None:
        if self.num_asked < self.config.population_size:
            self.num_asked += 1
            return self.space.sample(self.rng)
        if not self.population:
            if self.num_told < self.num_asked:
                return None  # wait: results that may found the population are on their way
            # Every result so far failed: start again from a random architecture.
            self.num_asked += 1
            return self.space.sample(self.rng)
        picks = self.rng.integers(len(self.population), size=self.config.tournament_size)
        # The first of equally fit contestants wins, which keeps ties deterministic.
        parent = max((self.population[i] for i in picks), key=lambda m: m[1])[0]
        self.num_asked += 1
        return self.space.mutate(parent, self.rng)

    def tell(self, arch: Arch, fitness: FitnessValues | None) -> None:
        self.num_told += 1
        if fitness is None:
            return
        self.population.append((arch, float(fitness[0])))
        while len(self.population) > self.config.population_size:
            self.population.popleft()
