"""The search config and how a search is built from it."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

from evonas._registry import Component
from evonas.config import from_dict, to_dict
from evonas.errors import ConfigError
from evonas.evaluation import EVALUATORS, Evaluator
from evonas.executors import EXECUTORS, Executor
from evonas.fitness import NeighbourhoodAwareFitness, Objective, PlainFitness, check_metrics, parse_aggregate
from evonas.search._loop import Budget
from evonas.spaces import SPACES, SearchSpace
from evonas.strategies import STRATEGIES, Strategy


@dataclass(frozen=True)
class ComponentConfig:
    """A registered component and its parameters.

    Attributes:
        name: The registered name (e.g. ``rea``, ``tabular``, ``ray``).
        params: Its parameters; checked against the component's own config dataclass.
    """

    name: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PlainParams:
    """Parameters of the plain fitness.

    Attributes:
        cache: Evaluate each architecture once per run (default False: repeats are new
            evaluations, as the NAS-Bench-201 protocol charges them).
    """

    cache: bool = False


@dataclass(frozen=True)
class NeighbourhoodParams:
    """Parameters of the neighbourhood-aware fitness (Wang et al., BMVC 2021).

    Attributes:
        aggregate: ``mean`` (default), ``min``, ``max``, ``median`` or ``q<p>``.
        include_self: Aggregate over the architecture too (default True).
    """

    aggregate: str = "mean"
    include_self: bool = True

    def __post_init__(self) -> None:
        parse_aggregate(self.aggregate)


FITNESS_PARAMS = {"plain": PlainParams, "neighbourhood": NeighbourhoodParams}


@dataclass(frozen=True)
class FitnessConfig:
    """How evaluations become a candidate's score.

    Attributes:
        name: ``plain`` or ``neighbourhood``.
        objectives: Metrics to maximise or minimise; several for NSGA-II.
        params: The fitness's parameters (see :class:`PlainParams`, :class:`NeighbourhoodParams`).
    """

    objectives: tuple[Objective, ...]
    name: Literal["plain", "neighbourhood"] = "plain"
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SearchConfig:
    """A whole search run.

    Attributes:
        evaluator: ``{name: tabular|training, params: {...}}``.
        fitness: Objectives and the fitness (plain or neighbourhood-aware).
        strategy: ``{name: random|rea|nsga2, params: {...}}``.
        budget: When to stop.
        seed: The run seed (default 0).
        space: The search space (default ``nb201``).
        executor: ``{name: serial|ray, params: {...}}`` (default serial).
        run_dir: Where the run directory goes (default ``runs/<config name>-<time>``).
        report: Metric of the final architecture to headline in the summary (e.g.
            ``test_acc``); default: the first objective.
        checkpoint_every: Candidates between checkpoints (default 20).
        progress: Show a progress bar (default True).
    """

    evaluator: ComponentConfig
    fitness: FitnessConfig
    strategy: ComponentConfig
    budget: Budget
    seed: int = 0
    space: str = "nb201"
    executor: ComponentConfig = field(default_factory=lambda: ComponentConfig("serial"))
    run_dir: str | None = None
    report: str | None = None
    checkpoint_every: int = 20
    progress: bool = True

    def __post_init__(self) -> None:
        if self.checkpoint_every < 1:
            raise ConfigError(f"checkpoint_every must be >= 1; got {self.checkpoint_every}")
        if self.seed < 0:
            raise ConfigError(f"seed must be >= 0; got {self.seed}")


def _component_params(component: Component, params: dict[str, Any], where: str) -> Any:
    return from_dict(component.config_cls, params, where)


def resolve_config(config: SearchConfig) -> tuple[SearchConfig, dict[str, Any]]:
    """Validate every component's parameters and fill in their defaults.

    Returns:
        The config with complete ``params`` mappings, and the typed parameter objects
        keyed ``evaluator``, ``strategy``, ``executor`` and ``fitness``.

    Raises:
        ConfigError / UnknownChoiceError: Any unknown name, key or bad value.
    """
    SPACES.get(config.space)
    ev_cfg = _component_params(EVALUATORS.get(config.evaluator.name), config.evaluator.params, "evaluator.params")
    strategy_cls = STRATEGIES.get(config.strategy.name)
    st_cfg = from_dict(strategy_cls.Config, config.strategy.params, "strategy.params")
    ex_cfg = _component_params(EXECUTORS.get(config.executor.name), config.executor.params, "executor.params")
    fit_cfg = from_dict(FITNESS_PARAMS[config.fitness.name], config.fitness.params, "fitness.params")
    if len(config.fitness.objectives) > strategy_cls.max_objectives:
        raise ConfigError(
            f"strategy {config.strategy.name!r} takes {strategy_cls.max_objectives} objective(s); "
            f"fitness.objectives has {len(config.fitness.objectives)} — use nsga2 for several"
        )
    resolved = replace(
        config,
        evaluator=replace(config.evaluator, params=to_dict(ev_cfg)),
        strategy=replace(config.strategy, params=to_dict(st_cfg)),
        executor=replace(config.executor, params=to_dict(ex_cfg)),
        fitness=replace(config.fitness, params=to_dict(fit_cfg)),
    )
    typed = {"evaluator": ev_cfg, "strategy": st_cfg, "executor": ex_cfg, "fitness": fit_cfg}
    return resolved, typed


@dataclass
class SearchParts:
    """The built components of a search."""

    space: SearchSpace
    evaluator: Evaluator
    fitness: PlainFitness | NeighbourhoodAwareFitness
    strategy: Strategy
    executor: Executor


def build_parts(config: SearchConfig, typed: dict[str, Any]) -> SearchParts:
    """Instantiate the components (loads data, checks metric names)."""
    space = SPACES.get(config.space)()
    evaluator = EVALUATORS.get(config.evaluator.name).build(typed["evaluator"])
    check_metrics(config.fitness.objectives, tuple(evaluator.metric_names))  # type: ignore[attr-defined]
    if config.report is not None and config.report not in evaluator.metric_names:  # type: ignore[attr-defined]
        raise ConfigError(
            f"report metric {config.report!r} is not reported by the evaluator; valid: "
            f"{', '.join(evaluator.metric_names)}"  # type: ignore[attr-defined]
        )
    fit_params = typed["fitness"]
    fitness: PlainFitness | NeighbourhoodAwareFitness
    if config.fitness.name == "plain":
        fitness = PlainFitness(config.fitness.objectives, cache=fit_params.cache)
    else:
        fitness = NeighbourhoodAwareFitness(
            space, config.fitness.objectives, aggregate=fit_params.aggregate, include_self=fit_params.include_self
        )
    strategy_cls = STRATEGIES.get(config.strategy.name)
    strategy = strategy_cls(space, len(config.fitness.objectives), np.random.default_rng([config.seed, 0]), typed["strategy"])
    executor = EXECUTORS.get(config.executor.name).build(typed["executor"])
    return SearchParts(space, evaluator, fitness, strategy, executor)  # type: ignore[arg-type]
