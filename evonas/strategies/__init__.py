"""Search strategies speaking ask/tell."""

from __future__ import annotations

from evonas._registry import Registry
from evonas.strategies._bananas import BANANAS, BANANASConfig
from evonas.strategies._base import FitnessValues, Strategy
from evonas.strategies._npenas import NPENAS, NPENASConfig
from evonas.strategies._nsga2 import NSGA2, NSGA2Config
from evonas.strategies._random import RandomSearch
from evonas.strategies._rea import REAConfig, RegularizedEvolution

STRATEGIES: Registry[type[Strategy]] = Registry("strategy")
"""Strategy name -> Strategy subclass with ``Config``; ``entry(space, num_objectives, rng, config)``."""
STRATEGIES.register("random")(RandomSearch)
STRATEGIES.register("rea")(RegularizedEvolution)
STRATEGIES.register("nsga2")(NSGA2)
# Registers optuna_tpe and optuna_nsga2 (it needs STRATEGIES; Optuna is imported only when one is built).
from evonas.integrations import _optuna_strategies  # noqa: E402,F401
STRATEGIES.register("bananas")(BANANAS)
STRATEGIES.register("npenas")(NPENAS)

__all__ = [
    "BANANAS",
    "BANANASConfig",
    "FitnessValues",
    "NPENAS",
    "NPENASConfig",
    "NSGA2",
    "NSGA2Config",
    "REAConfig",
    "RandomSearch",
    "RegularizedEvolution",
    "STRATEGIES",
    "Strategy",
]
