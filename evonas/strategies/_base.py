"""The ask/tell strategy interface.

A strategy proposes architectures (``ask``) and learns their fitness (``tell``). It never
evaluates anything and never imports Ray: the search loop and an executor do that. Fitness
values are tuples to be *maximised* (the loop flips the sign of objectives to minimise);
a failed evaluation is told as ``None``.
"""

from __future__ import annotations

import abc
from typing import Any, ClassVar

import numpy as np

from evonas.errors import ConfigError
from evonas.spaces import Arch, SearchSpace, require

FitnessValues = tuple[float, ...]
"""What a strategy is told of a candidate: one value per objective, larger is better."""


class Strategy(abc.ABC):
    """Base class of search strategies.

    Args:
        space: The search space.
        num_objectives: Length of the fitness tuples that :meth:`tell` receives.
        rng: The only source of randomness of the strategy.
        config: The strategy's hyper-parameters (its ``Config`` dataclass).

    Attributes:
        synchronous: True when the strategy works in generations: the loop then tells the
            results of a generation in the order the candidates were asked, so a run's
            results do not depend on the order in which evaluations finish.
        max_objectives: How many objectives the strategy can handle.
        requires: Capabilities the search space must declare (e.g. ``crossover``); a
            config pairing the strategy with a space without them is refused when read.
    """

    Config: ClassVar[type]
    synchronous: ClassVar[bool] = False
    max_objectives: ClassVar[int] = 1
    requires: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, space: SearchSpace, num_objectives: int, rng: np.random.Generator, config: Any = None) -> None:
        if not 1 <= num_objectives <= self.max_objectives:
            raise ConfigError(
                f"strategy {type(self).__name__} handles at most {self.max_objectives} objective(s); "
                f"got {num_objectives}"
            )
        require(space, self.requires, f"strategy {type(self).__name__}")
        self.space = space
        self.num_objectives = num_objectives
        self.rng = rng
        self.config = config if config is not None else self.Config()

    @abc.abstractmethod
    def ask(self) -> Arch | None:
        """The next architecture to evaluate, or ``None`` to wait for outstanding tells."""

    @abc.abstractmethod
    def tell(self, arch: Arch, fitness: FitnessValues | None) -> None:
        """Report the fitness of an architecture returned by :meth:`ask` (``None``: failed)."""

    def take_cost(self) -> float:
        """Seconds of search budget the strategy spent itself since the last call (e.g.
        computing zero-cost proxies), which the search loop charges after every :meth:`ask`;
        the amount is then forgotten. Default: nothing."""
        return 0.0


