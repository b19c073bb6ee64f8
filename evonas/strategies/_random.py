"""Random search (Bergstra & Bengio, JMLR 2012; the NAS baseline of Li & Talwalkar, UAI 2019)."""

from __future__ import annotations

from typing import ClassVar

from evonas.spaces import Arch
from evonas.spaces import NoParams
from evonas.strategies._base import FitnessValues, Strategy


class RandomSearch(Strategy):
    """Sample architectures uniformly at random, independently of any result.

    Because proposals never depend on results, the evaluations of a run are the same
    whatever executor runs them and in whatever order they finish.
    """

    Config = NoParams
    max_objectives: ClassVar[int] = 64

    def ask(self) -> Arch:
        return self.space.sample(self.rng)

    def tell(self, arch: Arch, fitness: FitnessValues | None) -> None:
        # Nothing to learn: the loop keeps the history and picks the best.
        return None
