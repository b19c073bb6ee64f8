"""Optuna's samplers as evonas strategies: ``optuna_tpe`` and ``optuna_nsga2``.

Each strategy keeps an in-memory Optuna study (Akiba et al., "Optuna: A Next-generation
Hyperparameter Optimization Framework", KDD 2019) with one categorical parameter per
position of the genotype (:mod:`evonas.integrations._decisions`). ``ask`` is
``study.ask`` and reads the architecture off the trial's parameters; ``tell`` is
``study.tell`` with the fitness values (every objective maximised, as evonas tells them) or,
for a failed candidate, the state ``FAIL``. The sampler is seeded from the strategy's
``rng``, so a search stays a function of its seed, and the strategy pickles with its study
and sampler, so ``evonas search --resume`` continues it exactly.

This module imports Optuna only when a strategy is built: registering the strategies
(at the end of this module, which ``evonas.strategies`` imports) costs nothing, and without
Optuna choosing one is refused with :class:`~evonas.integrations._extras.MissingExtraError`.
"""

from __future__ import annotations

import abc
import collections
import logging
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, cast

import numpy as np

from evonas.config import MAX_COUNT, MAX_POPULATION, Checked, Range
from evonas.errors import ArchError
from evonas.integrations._decisions import DEFAULT_PREFIX, decision_choices, decision_names
from evonas.integrations._extras import import_extra
from evonas.spaces import Arch, FixedLengthSpace, SearchSpace
from evonas.strategies._base import FitnessValues, Strategy

_STUDY_NAME = "evonas-strategy"


@dataclass(frozen=True)
class OptunaTPEConfig(Checked):
    """Hyper-parameters of ``optuna_tpe`` (those of ``optuna.samplers.TPESampler``).

    Attributes:
        n_startup_trials: Random trials before TPE models the results (default 10).
        n_ei_candidates: Candidates drawn per parameter to pick the best expected
            improvement from (default 24).
        multivariate: Model the positions jointly (multivariate TPE) instead of one by one;
            ``None`` (default): the installed Optuna's own default.
        constant_liar: Count trials still being evaluated as bad results, so parallel
            evaluations spread out; ``None`` (default): the installed Optuna's own default.
    """

    n_startup_trials: Annotated[int, Range(0, MAX_COUNT)] = 10
    n_ei_candidates: Annotated[int, Range(1, MAX_COUNT)] = 24
    multivariate: bool | None = None
    constant_liar: bool | None = None


@dataclass(frozen=True)
class OptunaNSGA2Config(Checked):
    """Hyper-parameters of ``optuna_nsga2`` (those of ``optuna.samplers.NSGAIISampler``).

    Attributes:
        population_size: Trials per generation (default 50).
        mutation_prob: Probability that a position of a child is redrawn at random;
            ``None`` (default): one over the number of positions.
        crossover_prob: Probability that a child is bred by crossover rather than copied
            from a parent (default 0.9).
        swapping_prob: Probability that uniform crossover takes a position from the
            second parent (default 0.5).
    """

    population_size: Annotated[int, Range(2, MAX_POPULATION)] = 50
    mutation_prob: Annotated[float | None, Range(0, 1)] = None
    crossover_prob: Annotated[float, Range(0, 1)] = 0.9
    swapping_prob: Annotated[float, Range(0, 1)] = 0.5


class OptunaStrategy(Strategy):
    """An Optuna sampler behind ask/tell (base of ``optuna_tpe`` and ``optuna_nsga2``).

    Args:
        space: A space with the ``fixed_length`` capability.
        num_objectives: Objectives of the fitness (each maximised).
        rng: Seeds the Optuna sampler (one draw, when the strategy is built).
        config: The strategy's ``Config``.

    Raises:
        MissingExtraError: Optuna cannot be imported.
    """

    name: ClassVar[str]
    max_objectives: ClassVar[int] = 16
    requires: ClassVar[frozenset[str]] = frozenset({"fixed_length"})

    def __init__(self, space: SearchSpace, num_objectives: int, rng: np.random.Generator, config: Any = None) -> None:
        super().__init__(space, num_objectives, rng, config)
        optuna = import_extra("optuna", f"strategy {self.name!r}")
        fixed = cast(FixedLengthSpace, space)  # ``requires`` was checked by Strategy.__init__
        self._names = decision_names(fixed, DEFAULT_PREFIX)
        choices = decision_choices(fixed)
        self._distributions = {n: optuna.distributions.CategoricalDistribution(choices) for n in self._names}
        self._sampler = self._make_sampler(optuna, int(rng.integers(2**32)))
        self._storage = optuna.storages.InMemoryStorage()
        # The in-memory storage announces every new study on Optuna's INFO log; a strategy's
        # study is an implementation detail, so that line is kept out of the search's output.
        announcer = logging.getLogger("optuna.storages._in_memory")
        was_disabled = announcer.disabled
        announcer.disabled = True
        try:
            self._storage.create_new_study([optuna.study.StudyDirection.MAXIMIZE] * num_objectives, _STUDY_NAME)
        finally:
            announcer.disabled = was_disabled
        self._study = optuna.Study(_STUDY_NAME, self._storage, sampler=self._sampler)
        self._asked: dict[Arch, collections.deque[int]] = {}

    @property
    def study(self) -> Any:
        """The in-memory ``optuna.Study``: one trial per architecture asked, in order."""
        return self._study

    @abc.abstractmethod
    def _make_sampler(self, optuna: Any, seed: int) -> Any:
        """The Optuna sampler of the strategy, seeded with ``seed``."""

    def ask(self) -> Arch:
        trial = self._study.ask(self._distributions)
        arch = tuple(int(trial.params[n]) for n in self._names)
        self._asked.setdefault(arch, collections.deque()).append(trial.number)
        return arch

    def tell(self, arch: Arch, fitness: FitnessValues | None) -> None:
        numbers = self._asked.get(arch)
        if not numbers:
            raise ArchError(f"strategy {self.name!r} was told about {self.space.format(arch)!r}, which it never "
                            "asked for (or was told about already)")
        number = numbers.popleft()
        if not numbers:
            del self._asked[arch]
        if fitness is None:
            from optuna.trial import TrialState

            self._study.tell(number, state=TrialState.FAIL)
        else:
            self._study.tell(number, [float(v) for v in fitness])

    def __getstate__(self) -> dict[str, Any]:
        # The study object holds thread-local caches; its storage and sampler are the state.
        state = self.__dict__.copy()
        del state["_study"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        optuna = import_extra("optuna", f"strategy {self.name!r}")
        self._study = optuna.Study(_STUDY_NAME, self._storage, sampler=self._sampler)


class OptunaTPE(OptunaStrategy):
    """Optuna's tree-structured Parzen estimator (Bergstra et al., "Algorithms for
    Hyper-Parameter Optimization", NeurIPS 2011; several objectives: Ozaki et al.,
    "Multiobjective Tree-Structured Parzen Estimator", JAIR 2022) over the positions of a
    genotype.

    After ``n_startup_trials`` random architectures, each position's choice is drawn where
    the density of good results is high relative to that of the others. Proposals never
    wait for results: with a parallel executor the trials in flight are handled as Optuna
    does (``constant_liar``).
    """

    name = "optuna_tpe"
    Config = OptunaTPEConfig

    def _make_sampler(self, optuna: Any, seed: int) -> Any:
        cfg = self.config
        options: dict[str, Any] = {"n_startup_trials": cfg.n_startup_trials, "n_ei_candidates": cfg.n_ei_candidates}
        # Unset switches keep the installed Optuna's defaults, which change between versions.
        if cfg.multivariate is not None:
            options["multivariate"] = cfg.multivariate
        if cfg.constant_liar is not None:
            options["constant_liar"] = cfg.constant_liar
        return optuna.samplers.TPESampler(seed=seed, **options)


class OptunaNSGA2(OptunaStrategy):
    """Optuna's NSGA-II (Deb et al., "A Fast and Elitist Multiobjective Genetic Algorithm:
    NSGA-II", IEEE TEC 2002) over the positions of a genotype.

    Optuna's variant works in generations of ``population_size`` trials without ever
    waiting for a generation to finish: a trial belongs to the generation being filled when
    it is asked, and its parents are chosen among the elite of the completed trials of the
    generations before. Variation
    is uniform crossover and per-position random resetting on the categorical parameters,
    not the space's own operators, so the space needs ``fixed_length`` only.
    """

    name = "optuna_nsga2"
    Config = OptunaNSGA2Config

    def _make_sampler(self, optuna: Any, seed: int) -> Any:
        cfg = self.config
        return optuna.samplers.NSGAIISampler(
            population_size=cfg.population_size,
            mutation_prob=cfg.mutation_prob,
            crossover_prob=cfg.crossover_prob,
            swapping_prob=cfg.swapping_prob,
            seed=seed,
        )


# Registered here rather than in evonas.strategies: this module subclasses Strategy, so it is
# imported from the end of evonas.strategies/__init__.py, once the registry exists.
from evonas.strategies import STRATEGIES  # noqa: E402

STRATEGIES.register("optuna_tpe")(OptunaTPE)
STRATEGIES.register("optuna_nsga2")(OptunaNSGA2)

__all__ = ["OptunaNSGA2", "OptunaNSGA2Config", "OptunaStrategy", "OptunaTPE", "OptunaTPEConfig"]
