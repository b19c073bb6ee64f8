"""Optuna integration: any evonas strategy as an Optuna sampler.

:class:`EvonasSampler` lets an ``optuna.Study`` (Akiba et al., "Optuna: A Next-generation
Hyperparameter Optimization Framework", KDD 2019) be driven by an evonas strategy, so a
search keeps Optuna's storages (``sqlite:///...`` and other URLs), its dashboard, pruners and
``study.optimize`` loop while regularized evolution (or any registered strategy) proposes
the architectures::

    import optuna
    from evonas.integrations.optuna import EvonasSampler

    sampler = EvonasSampler("rea", "nb201", seed=0, params={"population_size": 10})

    def objective(trial):
        arch = sampler.suggest_arch(trial)           # one categorical per edge: edge_0 .. edge_5
        return evaluator.evaluate(arch, sampler.evaluation_seed(trial)).metrics[metric]

    study = optuna.create_study(direction="maximize", sampler=sampler, storage="sqlite:///nas.db")
    study.optimize(objective, n_trials=150)

The sampler follows Optuna's relative-sampling protocol (``optuna.samplers.BaseSampler``):
:meth:`~EvonasSampler.infer_relative_search_space` names one categorical parameter per
position of the genotype, :meth:`~EvonasSampler.sample_relative` asks the strategy for an
architecture, and :meth:`~EvonasSampler.after_trial` tells the strategy the trial's values,
signed so that larger is better from the study's directions; a failed or pruned trial, or a
NaN or infinite value, is told as a failure. Parameters that are not decisions (a learning
rate, say) are drawn by Optuna's ``RandomSampler`` seeded with ``seed``.

Same history as ``evonas search``: a strategy given by name is built as ``evonas search``
builds it (its generator is ``np.random.default_rng([seed, 0])``) and
:meth:`~EvonasSampler.evaluation_seed` gives trial ``n`` the seed ``evonas search`` gives its
evaluation ``n``. A serial study (``n_jobs=1``) with ``n_trials=N`` whose objective evaluates
``suggest_arch(trial)`` with ``evaluation_seed(trial)`` and returns the objective metric
therefore sees exactly the architectures and values of ``evonas search`` with the same
strategy, seed and evaluator, the plain fitness (without ``cache``) and
``budget.evaluations: N``.

Resuming a study in a new process: the strategy lives in the sampler, not in the storage.
Pickle the sampler with the study's storage and pass the unpickled one to
``optuna.load_study`` (as Optuna's FAQ advises for reproducible resumption); the study then
continues exactly. A trial left ``RUNNING`` by a crash is never told to the strategy; fail it
with ``study.tell(number, state=TrialState.FAIL)`` to tell it.

:class:`OptunaTPE` and :class:`OptunaNSGA2` go the other way: Optuna's samplers as the evonas
strategies ``optuna_tpe`` and ``optuna_nsga2`` (see :mod:`evonas.integrations._optuna_strategies`).

Importing this module without Optuna raises
:class:`~evonas.integrations.MissingExtraError` (``pip install 'evonas[optuna]'``).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from evonas.integrations._extras import missing_extra

try:
    import optuna
    from optuna.distributions import BaseDistribution, CategoricalDistribution
    from optuna.samplers import BaseSampler, RandomSampler
    from optuna.study import Study, StudyDirection
    from optuna.trial import BaseTrial, FrozenTrial, TrialState
except ImportError as _exc:
    raise missing_extra("optuna", "evonas.integrations.optuna", _exc) from _exc

from evonas.config import MAX_SEED, ComponentConfig, check_int
from evonas.errors import ConfigError
from evonas.integrations._decisions import (
    DEFAULT_PREFIX,
    arch_from_params,
    as_params,
    decision_choices,
    decision_names,
    fixed_length_space,
)
from evonas.integrations._optuna_strategies import (
    OptunaNSGA2,
    OptunaNSGA2Config,
    OptunaStrategy,
    OptunaTPE,
    OptunaTPEConfig,
)
from evonas.search import evaluation_seed
from evonas.spaces import Arch, SearchSpace, require
from evonas.strategies import STRATEGIES, FitnessValues, Strategy


class EvonasSampler(BaseSampler):
    """An Optuna sampler whose architectures come from an evonas strategy.

    Args:
        strategy: A registered strategy name (``"rea"``, ``"random"``, ``"nsga2"``, ...),
            built when the first trial starts with as many objectives as the study has
            directions and the generator ``np.random.default_rng([seed, 0])``; or a
            :class:`~evonas.strategies.Strategy` instance, used as it is.
        space: The search space or its registered name; it needs the ``fixed_length``
            capability. Default: the strategy's space, or ``nb201`` for a strategy name.
        seed: Seeds a strategy given by name, the sampler of non-decision parameters, and
            :meth:`evaluation_seed` (default 0).
        params: Hyper-parameters of a strategy given by name (its ``Config`` fields,
            checked now); default: the strategy's defaults.
        prefix: Parameter names are ``<prefix>0``, ``<prefix>1``, ... (default ``edge_``).

    Attributes:
        space: The search space.
        seed: The seed.
        names: The parameter name of every position of a genotype.

    Raises:
        ConfigError: Invalid seed, params or prefix, or a strategy of another space.
        CapabilityError: The space lacks ``fixed_length``, or the strategy needs a
            capability the space lacks.
        UnknownChoiceError: ``strategy`` is not a registered name.
    """

    def __init__(
        self,
        strategy: Strategy | str,
        space: SearchSpace | str | None = None,
        seed: int = 0,
        *,
        params: Mapping[str, Any] | None = None,
        prefix: str = DEFAULT_PREFIX,
    ) -> None:
        self.seed = int(check_int(seed, "seed", 0, MAX_SEED, owner="EvonasSampler") or 0)
        self._strategy: Strategy | None = None
        self._build: tuple[type[Strategy], Any] | None = None
        if isinstance(strategy, Strategy):
            if params:
                raise ConfigError(f"EvonasSampler: 'params' configure a strategy given by name; got the strategy "
                                  f"instance {type(strategy).__name__} and params {dict(params)!r}")
            if space is not None and fixed_length_space(space, "EvonasSampler") != strategy.space:
                raise ConfigError(f"EvonasSampler: the strategy searches space {strategy.space.name!r}, not {space!r}")
            self._strategy = strategy
            space = strategy.space
        elif isinstance(strategy, str):
            self._build = (STRATEGIES.get(strategy), ComponentConfig(strategy, dict(params or {})).typed("strategy"))
        else:
            raise ConfigError(f"EvonasSampler: 'strategy' must be a strategy name or a Strategy; got {strategy!r}")
        self.space = fixed_length_space(space if space is not None else "nb201", "EvonasSampler")
        self.names = decision_names(self.space, prefix)
        self._choices = decision_choices(self.space)
        self._independent = RandomSampler(seed=self.seed)
        self._asked: dict[int, Arch] = {}  # trial number -> the architecture the strategy asked for it
        self._lock = threading.Lock()
        if self._build is not None:  # a wrong strategy/space pairing fails now, not at the first trial
            require(self.space, self._build[0].requires, f"strategy {strategy!r}")

    @property
    def strategy(self) -> Strategy | None:
        """The strategy (``None`` until the first trial when it was given by name)."""
        return self._strategy

    # ----------------------------------------------------------------------- helpers
    def suggest_arch(self, trial: BaseTrial) -> Arch:
        """Suggest every decision of ``trial`` and return the architecture they make.

        With this sampler the decisions are the architecture the strategy asked for; the
        objective evaluates it.

        Raises:
            ArchError: The suggested choices are not an architecture of the space.
        """
        params = {name: trial.suggest_categorical(name, self._choices) for name in self.names}
        return arch_from_params(self.space, params, self.names)

    def evaluation_seed(self, trial: BaseTrial | FrozenTrial) -> int:
        """The seed ``evonas search`` gives its evaluation number ``trial.number``
        (:func:`evonas.search.evaluation_seed` of :attr:`seed`)."""
        return evaluation_seed(self.seed, trial.number)

    # ------------------------------------------------------------- Optuna's protocol
    def infer_relative_search_space(self, study: Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return {name: CategoricalDistribution(self._choices) for name in self.names}

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        if not any(name in search_space for name in self.names):
            return {}
        fixed = trial.system_attrs.get("fixed_params", {})
        if any(name in fixed for name in self.names):
            return {}  # an enqueued architecture: evaluated as given, not told to the strategy
        with self._lock:
            arch = self._strategy_for(study).ask()
            if arch is None:
                # The strategy waits for results of trials still running: Optuna draws
                # this trial's decisions at random, and its result is not told.
                return {}
            arch = self.space.validate(arch)
            self._asked[trial.number] = arch
        return as_params(arch, self.names)

    def sample_independent(
        self, study: Study, trial: FrozenTrial, param_name: str, param_distribution: BaseDistribution
    ) -> Any:
        return self._independent.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(
        self, study: Study, trial: FrozenTrial, state: TrialState, values: Sequence[float] | None
    ) -> None:
        with self._lock:
            arch = self._asked.pop(trial.number, None)
            if arch is None or self._strategy is None:
                return
            fitness: FitnessValues | None = None
            if state == TrialState.COMPLETE and values is not None:
                signed = tuple(
                    float(v) if d == StudyDirection.MAXIMIZE else -float(v) for v, d in zip(values, study.directions)
                )
                if all(math.isfinite(v) for v in signed):
                    fitness = signed
            self._strategy.tell(arch, fitness)

    def reseed_rng(self) -> None:
        # Only the sampler of non-decision parameters: the strategy's generator is the
        # search's seed, shared by every thread of ``n_jobs`` under the lock.
        self._independent.reseed_rng()

    # ------------------------------------------------------------------------ state
    def _strategy_for(self, study: Study) -> Strategy:
        directions = len(study.directions)
        if self._strategy is None:
            assert self._build is not None  # set by __init__ whenever no instance was given
            cls, config = self._build
            self._strategy = cls(self.space, directions, np.random.default_rng([self.seed, 0]), config)
        elif self._strategy.num_objectives != directions:
            raise ConfigError(f"EvonasSampler: the strategy was built for {self._strategy.num_objectives} objective(s); "
                              f"the study has {directions} direction(s)")
        return self._strategy

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()


__all__ = [
    "EvonasSampler",
    "OptunaNSGA2",
    "OptunaNSGA2Config",
    "OptunaStrategy",
    "OptunaTPE",
    "OptunaTPEConfig",
]
