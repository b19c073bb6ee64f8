"""NSGA-II: Deb et al., "A Fast and Elitist Multiobjective Genetic Algorithm: NSGA-II",
IEEE TEC 2002, with DEAP's non-dominated sorting and crowding distance."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, cast

import numpy as np

from deap import base, tools

from evonas.config import MAX_POPULATION, Checked, Range
from evonas.spaces import Arch, CrossoverSpace, SearchSpace
from evonas.strategies._base import FitnessValues, Strategy

_WORST = -1e300  # stands in for the fitness of a failed evaluation: dominated by everything


@dataclass(frozen=True)
class NSGA2Config(Checked):
    """Hyper-parameters of NSGA-II.

    Attributes:
        population_size: Parents per generation and offspring per generation (default 20).
        crossover_prob: Probability that a pair of parents is recombined by uniform
            crossover (default 0.9).
        mutation_prob: Probability that a child is mutated (one edit) after crossover
            (default 1.0, which keeps every child new relative to its parents most of the time).
    """

    population_size: Annotated[int, Range(2, MAX_POPULATION)] = 20
    crossover_prob: Annotated[float, Range(0, 1)] = 0.9
    mutation_prob: Annotated[float, Range(0, 1)] = 1.0


class _Individual:
    """A DEAP-compatible individual: just enough for ``tools.selNSGA2``."""

    def __init__(self, arch: Arch, values: FitnessValues, fitness_cls: type) -> None:
        self.arch = arch
        self.fitness = fitness_cls(values)


class NSGA2(Strategy):
    """Generational NSGA-II over the space's variation operators.

    Generation 0 is ``population_size`` uniform samples. Each later generation is bred
    from the current parents by binary tournaments on (front rank, crowding distance),
    uniform crossover and one-edit mutation; parents and offspring together are then
    reduced to ``population_size`` with DEAP's ``selNSGA2`` (non-dominated sorting plus
    crowding distance). Selection is DEAP's; the random choices use this strategy's ``rng``
    (DEAP's own operators draw from the global ``random`` module, which we do not use).
    """

    Config = NSGA2Config
    synchronous: ClassVar[bool] = True
    max_objectives: ClassVar[int] = 16
    requires: ClassVar[frozenset[str]] = frozenset({"crossover"})

    def __init__(self, space: SearchSpace, num_objectives: int, rng: np.random.Generator, config: Any = None) -> None:
        super().__init__(space, num_objectives, rng, config)
        self.parents: list[tuple[Arch, FitnessValues]] = []
        self.generation = 0
        self._to_ask: list[Arch] = []
        self._told: list[tuple[Arch, FitnessValues]] = []
        self._expected = 0
        self._start_generation()

    # ----------------------------------------------------------------------------- helpers
    def _fitness_cls(self) -> type:
        # A fresh subclass per call keeps the strategy picklable (no module-level creator).
        return type("NSGA2Fitness", (base.Fitness,), {"weights": (1.0,) * self.num_objectives})

    def _individuals(self, members: list[tuple[Arch, FitnessValues]]) -> list[_Individual]:
        cls = self._fitness_cls()
        return [_Individual(a, f, cls) for a, f in members]

    def _ranked(self) -> list[tuple[int, float]]:
        """(front rank, crowding distance) of every parent."""
        inds = self._individuals(self.parents)
        fronts = tools.sortNondominated(inds, len(inds))
        key: dict[int, tuple[int, float]] = {}
        for rank, front in enumerate(fronts):
            tools.emo.assignCrowdingDist(front)
            for ind in front:
                key[id(ind)] = (rank, ind.fitness.crowding_dist)
        return [key[id(ind)] for ind in inds]

    def _start_generation(self) -> None:
        n = self.config.population_size
        if self.generation == 0:
            self._to_ask = [self.space.sample(self.rng) for _ in range(n)]
        else:
            ranks = self._ranked()

            def tournament() -> Arch:
                i, j = self.rng.integers(len(self.parents), size=2)
                ri, rj = ranks[i], ranks[j]
                if ri[0] != rj[0]:
                    return self.parents[i if ri[0] < rj[0] else j][0]
                if ri[1] != rj[1]:
                    return self.parents[i if ri[1] > rj[1] else j][0]
                return self.parents[i if self.rng.random() < 0.5 else j][0]

            children: list[Arch] = []
            while len(children) < n:
                a, b = tournament(), tournament()
                if self.rng.random() < self.config.crossover_prob:
                    a, b = cast(CrossoverSpace, self.space).crossover(a, b, self.rng)
                for child in (a, b):
                    if self.rng.random() < self.config.mutation_prob:
                        child = self.space.mutate(child, self.rng)
                    children.append(child)
            self._to_ask = children[:n]
        self._to_ask.reverse()  # pop() from the end yields them in breeding order
        self._expected = len(self._to_ask)
        self._told = []

    # ---------------------------------------------------------------------------- ask/tell
    def ask(self) -> Arch | None:
        if not self._to_ask:
            return None
        return self._to_ask.pop()

    def tell(self, arch: Arch, fitness: FitnessValues | None) -> None:
        values = tuple(float(v) for v in fitness) if fitness is not None else (_WORST,) * self.num_objectives
        self._told.append((arch, values))
        if len(self._told) < self._expected:
            return
        pool = self.parents + self._told
        inds = self._individuals(pool)
        survivors = tools.selNSGA2(inds, self.config.population_size)
        self.parents = [(ind.arch, tuple(ind.fitness.values)) for ind in survivors]
        self.generation += 1
        self._start_generation()

    def pareto_front(self) -> list[tuple[Arch, FitnessValues]]:
        """The non-dominated parents of the current generation."""
        if not self.parents:
            return []
        inds = self._individuals(self.parents)
        front = tools.sortNondominated(inds, len(inds), first_front_only=True)[0]
        return [(ind.arch, tuple(ind.fitness.values)) for ind in front]
