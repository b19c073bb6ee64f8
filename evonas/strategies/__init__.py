"""Search strategies speaking ask/tell."""

from __future__ import annotations

from evonas._registry import Registry
from evonas.strategies._base import Fitness, NoParams, Strategy
from evonas.strategies._nsga2 import NSGA2, NSGA2Config
from evonas.strategies._random import RandomSearch
from evonas.strategies._rea import REAConfig, RegularizedEvolution

STRATEGIES: Registry[type[Strategy]] = Registry("strategy")
STRATEGIES.register("random")(RandomSearch)
STRATEGIES.register("rea")(RegularizedEvolution)
STRATEGIES.register("nsga2")(NSGA2)

__all__ = [
    "Fitness",
    "NSGA2",
    "NSGA2Config",
    "NoParams",
    "REAConfig",
    "RandomSearch",
    "RegularizedEvolution",
    "STRATEGIES",
    "Strategy",
]
