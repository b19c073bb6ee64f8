"""The search config and how a search is built from it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import numpy as np

from evonas.config import MAX_COUNT, MAX_SEED, Checked, ComponentConfig, IsPath, Range, Registered, from_dict, to_dict
from evonas.errors import ArchError, ConfigError
from evonas.evaluation import Evaluator
from evonas.executors import Executor
from evonas.fitness import (
    NEIGHBOUR_COSTS,
    NeighbourCost,
    NeighbourhoodAwareFitness,
    Objective,
    PlainFitness,
    check_metrics,
    parse_aggregate,
)
from evonas.search._loop import Budget
from evonas.spaces import Arch, SearchSpace
from evonas.strategies import STRATEGIES, Strategy


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
        neighbour_cost: ``counted`` (default): every evaluation run, neighbours included,
            is charged to the budget. ``free``: the paper's accounting, which compares
            searches at equal numbers of searched architectures: each candidate is charged
            its own evaluation, its neighbours are read but not charged (tabular evaluator
            only: other evaluators spend real time on every neighbour).
    """

    aggregate: str = "mean"
    include_self: bool = True
    neighbour_cost: NeighbourCost = "counted"

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

    def __post_init__(self) -> None:
        if not self.objectives:
            raise ConfigError("fitness.objectives must name at least one metric")
        typed: Any = from_dict(FITNESS_PARAMS[self.name], self.params, "fitness.params")
        object.__setattr__(self, "params", to_dict(typed))

    def typed(self) -> PlainParams | NeighbourhoodParams:
        """The parameters as their dataclass."""
        params: PlainParams | NeighbourhoodParams = from_dict(FITNESS_PARAMS[self.name], self.params, "fitness.params")
        return params


@dataclass(frozen=True)
class SearchConfig(Checked):
    """A whole search run.

    Attributes:
        evaluator: ``{name: tabular|training|supernet|proxy|<plugin>, params: {...}}``.
        fitness: Objectives and the fitness (plain or neighbourhood-aware).
        strategy: ``{name: random|rea|nsga2|bananas|npenas|optuna_tpe|optuna_nsga2|<plugin>, params: {...}}``.
        budget: When to stop.
        seed: The run seed (default 0).
        space: The search space, ``{name, params}`` (default ``{name: nb201}``).
        executor: ``{name: serial|ray, params: {...}}`` (default serial).
        run_dir: Where the run directory goes (default ``runs/<config name>-<time>``);
            relative to the config file.
        report: Metric of the final architecture to headline in the summary (e.g.
            ``test_acc``); default: the first objective.
        checkpoint_every: Candidates between checkpoints (default 20).
        progress: Show a progress bar (default True).
        initial: Architecture strings that take the place of the strategy's first
            proposals, e.g. a cell a differentiable search derived (``evonas dnas train``
            prints it; :func:`evonas.dnas.load_cell` reads it): REA's and NSGA-II's
            initial population then holds them, and every strategy is told their results
            as its own.
    """

    evaluator: Annotated[ComponentConfig, Registered("evaluator")]
    fitness: FitnessConfig
    strategy: Annotated[ComponentConfig, Registered("strategy")]
    budget: Budget
    seed: Annotated[int, Range(0, MAX_SEED)] = 0
    space: Annotated[ComponentConfig, Registered("space")] = field(default_factory=lambda: ComponentConfig("nb201"))
    executor: Annotated[ComponentConfig, Registered("executor")] = field(default_factory=lambda: ComponentConfig("serial"))
    run_dir: Annotated[str | None, IsPath()] = None
    report: str | None = None
    checkpoint_every: Annotated[int, Range(1, MAX_COUNT)] = 20
    progress: bool = True
    initial: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        cost = self.fitness.params.get("neighbour_cost", "counted")
        if cost == "free" and self.evaluator.name not in FREE_NEIGHBOUR_EVALUATORS:
            raise ConfigError(
                f"fitness.params.neighbour_cost {cost!r} needs evaluator "
                f"{' or '.join(repr(n) for n in FREE_NEIGHBOUR_EVALUATORS)} (a table reads neighbours; "
                f"evaluator {self.evaluator.name!r} spends real time on each); valid values with it: "
                f"{', '.join(repr(c) for c in NEIGHBOUR_COSTS if c != 'free')}"
            )


FREE_NEIGHBOUR_EVALUATORS = ("tabular",)
"""Evaluators whose neighbour queries ``neighbour_cost: free`` may leave uncharged (look-ups)."""


@dataclass
class SearchParts:
    """The built components of a search."""

    space: SearchSpace
    evaluator: Evaluator
    fitness: PlainFitness | NeighbourhoodAwareFitness
    strategy: Strategy
    executor: Executor
    initial: tuple[Arch, ...] = ()


def build_parts(config: SearchConfig) -> SearchParts:
    """Instantiate the components: builds the space, loads data, checks capabilities and metric names.

    Raises:
        ConfigError / CapabilityError / UnknownChoiceError / DataError: Anything the
            config asks for that cannot be built.
    """
    space: SearchSpace = config.space.build("space")
    initial = initial_archs(config.initial, space)
    strategy_cls = STRATEGIES.get(config.strategy.name)
    if len(config.fitness.objectives) > strategy_cls.max_objectives:
        raise ConfigError(
            f"strategy {config.strategy.name!r} takes {strategy_cls.max_objectives} objective(s); "
            f"fitness.objectives has {len(config.fitness.objectives)} - use nsga2 for several"
        )
    strategy = strategy_cls(
        space, len(config.fitness.objectives), np.random.default_rng([config.seed, 0]), config.strategy.typed("strategy")
    )
    evaluator: Evaluator = config.evaluator.build("evaluator", space=space)
    check_metrics(config.fitness.objectives, tuple(evaluator.metric_names))
    if config.report is not None and config.report not in evaluator.metric_names:
        raise ConfigError(
            f"report metric {config.report!r} is not reported by the evaluator; valid: "
            f"{', '.join(evaluator.metric_names)}"
        )
    fit = config.fitness.typed()
    fitness: PlainFitness | NeighbourhoodAwareFitness
    if isinstance(fit, PlainParams):
        fitness = PlainFitness(config.fitness.objectives, cache=fit.cache)
    else:
        fitness = NeighbourhoodAwareFitness(
            space, config.fitness.objectives, aggregate=fit.aggregate, include_self=fit.include_self,
            neighbour_cost=fit.neighbour_cost,
        )
    executor: Executor = config.executor.build("executor")
    return SearchParts(space, evaluator, fitness, strategy, executor, initial)


def initial_archs(texts: tuple[str, ...], space: SearchSpace) -> tuple[Arch, ...]:
    """The ``initial`` architectures as genotypes of ``space``.

    Raises:
        ArchError: One is not an architecture of ``space``; the message names its position.
    """
    out = []
    for i, text in enumerate(texts):
        try:
            out.append(space.validate(text))
        except ArchError as exc:
            raise ArchError(f"initial[{i}]: {exc}") from None
    return tuple(out)
