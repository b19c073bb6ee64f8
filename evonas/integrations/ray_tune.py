"""Ray Tune integration: any evonas strategy as a Tune search algorithm.

:class:`EvonasSearcher` is a ``ray.tune.search.Searcher`` (Liaw et al., "Tune: A Research
Platform for Distributed Model Selection and Training", ICML AutoML workshop 2018) that asks
an evonas strategy for architectures and tells it the trials' results, so an evolution runs
inside ``Tuner.fit()`` with Tune's schedulers (ASHA and the others), ``ConcurrencyLimiter``,
experiment storage and ``Tuner.restore``::

    from ray import tune
    from evonas.integrations.ray_tune import EvonasSearcher

    searcher = EvonasSearcher("rea", "nb201", metric="acc", mode="max", seed=0)

    def trainable(config):
        arch = tuple(config["arch"])                 # also config["edge_0"] .. config["edge_5"]
        tune.report({"acc": evaluate(arch, config["evaluation_seed"])})

    tuner = tune.Tuner(trainable, tune_config=tune.TuneConfig(
        search_alg=tune.search.ConcurrencyLimiter(searcher, max_concurrent=4), num_samples=150))
    tuner.fit()

The config of a trial holds one entry per position of the genotype (``edge_0``, ...), the
architecture as a tuple (``arch``) and as its string (``arch_str``), the number of the
suggestion (``evaluation_id``) and the seed ``evonas search`` gives that evaluation
(``evaluation_seed``, :func:`evonas.search.evaluation_seed`); a ``param_space`` given to the
``Tuner`` may add constants (e.g. epochs) to it, but no search-space definitions.

What the strategy is told: a completed trial's last reported ``metric`` (signed by ``mode``
so that larger is better); a trial that errored, reported no finite ``metric`` or was
stopped before its first report, a failure. A trial stopped early by a scheduler (ASHA) is
told the last value it reported, as Tune's own searchers do. When Tune later resumes or
restarts an errored trial, its result is not told again: the strategy heard the failure.

Same history as ``evonas search``: a strategy given by name is built as ``evonas search``
builds it (``np.random.default_rng([seed, 0])``), so with one trial at a time
(``ConcurrencyLimiter(searcher, 1)`` or ``TuneConfig(max_concurrent_trials=1)``), a
trainable that evaluates ``arch`` with ``evaluation_seed`` and ``num_samples=N``, the
strategy asks and is told exactly as in ``evonas search`` with the plain fitness and
``budget.evaluations: N``. With more trials at once the results depend on the order in
which trials finish, as with evonas's Ray executor.

Checkpoints: Tune saves a searcher into its experiment directory with :meth:`save` and
reads it back with :meth:`restore` (on ``Tuner.restore``); the state (the strategy, the
suggestion counter and the trials in flight) is pickled there as Ray Tune's own searchers
do (``OptunaSearch``, ``HyperOptSearch``), but signed with this user's evonas key like a run
directory's checkpoints (:func:`evonas.runs.sign`), and a file not signed with it is never
unpickled. Tune's own experiment state beside it is plain pickle, so restore only experiment
directories you wrote.

Importing this module without Ray Tune raises
:class:`~evonas.integrations.MissingExtraError` (``pip install 'evonas[tune]'``).
"""

from __future__ import annotations

import math
import os
import pickle
from collections.abc import Mapping
from typing import Any

import numpy as np

from evonas.integrations._extras import missing_extra

try:
    import ray.tune  # noqa: F401 -- fails without Tune's own dependencies (pandas, pyarrow)
    from ray.tune.search import Searcher
    from ray.tune.search.variant_generator import parse_spec_vars
except ImportError as _exc:
    raise missing_extra("ray.tune", "evonas.integrations.ray_tune", _exc) from _exc

from evonas.config import MAX_SEED, ComponentConfig, check_int
from evonas.errors import ConfigError, RunDirError, UntrustedFileError
from evonas.integrations._decisions import DEFAULT_PREFIX, as_params, decision_names, fixed_length_space
from evonas.runs import atomic_write_bytes, sign, verified_payload
from evonas.search import evaluation_seed
from evonas.spaces import Arch, SearchSpace
from evonas.strategies import STRATEGIES, FitnessValues, Strategy

_FORMAT = "evonas-searcher/1"
_SIGNED_NAME = "evonas-tune-searcher"
"""The name the searcher state is signed under (any file name Tune gives it is accepted)."""
MODES = ("min", "max")


class EvonasSearcher(Searcher):
    """A Ray Tune searcher whose architectures come from an evonas strategy.

    Args:
        strategy: A registered strategy name (``"rea"``, ``"random"``, ...), built now for
            one objective with the generator ``np.random.default_rng([seed, 0])``; or a
            single-objective :class:`~evonas.strategies.Strategy` instance, used as it is.
        space: The search space or its registered name; it needs the ``fixed_length``
            capability. Default: the strategy's space, or ``nb201`` for a strategy name.
        metric: The reported metric the strategy learns from; may instead come from
            ``tune.TuneConfig(metric=...)`` when the ``Tuner`` has a ``param_space``.
        mode: ``"max"`` or ``"min"``; like ``metric``.
        seed: Seeds a strategy given by name and the ``evaluation_seed`` of every
            suggestion (default 0).
        params: Hyper-parameters of a strategy given by name (its ``Config`` fields,
            checked now); default: the strategy's defaults.
        prefix: Config keys of the positions are ``<prefix>0``, ``<prefix>1``, ... (default
            ``edge_``).

    Attributes:
        space: The search space.
        strategy: The strategy.
        seed: The seed.
        names: The config key of every position of a genotype.

    Raises:
        ConfigError: Invalid mode, metric, seed, params or prefix; a strategy of another
            space or of several objectives.
        CapabilityError: The space lacks ``fixed_length``, or the strategy needs a
            capability the space lacks.
        UnknownChoiceError: ``strategy`` is not a registered name.
    """

    def __init__(
        self,
        strategy: Strategy | str,
        space: SearchSpace | str | None = None,
        metric: str | None = None,
        mode: str | None = None,
        seed: int = 0,
        *,
        params: Mapping[str, Any] | None = None,
        prefix: str = DEFAULT_PREFIX,
    ) -> None:
        _check_metric_mode(metric, mode)
        super().__init__(metric=metric, mode=mode)
        self.seed = int(check_int(seed, "seed", 0, MAX_SEED, owner="EvonasSearcher") or 0)
        if isinstance(strategy, Strategy):
            if params:
                raise ConfigError(f"EvonasSearcher: 'params' configure a strategy given by name; got the strategy "
                                  f"instance {type(strategy).__name__} and params {dict(params)!r}")
            if space is not None and fixed_length_space(space, "EvonasSearcher") != strategy.space:
                raise ConfigError(f"EvonasSearcher: the strategy searches space {strategy.space.name!r}, not {space!r}")
            if strategy.num_objectives != 1:
                raise ConfigError(f"EvonasSearcher: Tune reports one metric; the strategy was built for "
                                  f"{strategy.num_objectives} objectives")
            self.space = fixed_length_space(strategy.space, "EvonasSearcher")
            self.strategy = strategy
        elif isinstance(strategy, str):
            cls = STRATEGIES.get(strategy)
            config = ComponentConfig(strategy, dict(params or {})).typed("strategy")
            self.space = fixed_length_space(space if space is not None else "nb201", "EvonasSearcher")
            self.strategy = cls(self.space, 1, np.random.default_rng([self.seed, 0]), config)
        else:
            raise ConfigError(f"EvonasSearcher: 'strategy' must be a strategy name or a Strategy; got {strategy!r}")
        self.names = decision_names(self.space, prefix)
        self._num_suggested = 0
        self._live: dict[str, Arch] = {}  # trial id -> architecture, for trials not yet told

    # ------------------------------------------------------------- Tune's protocol
    def set_search_properties(self, metric: str | None, mode: str | None, config: dict[str, Any], **spec: Any) -> bool:
        _check_metric_mode(metric, mode)
        _, domains, grids = parse_spec_vars(config or {})
        if domains or grids:
            keys = ", ".join("/".join(map(str, path)) for path, _ in domains + grids)
            raise ConfigError(f"EvonasSearcher: the Tuner's param_space may hold constants only; the strategy chooses "
                              f"the architecture, but these keys are search-space definitions: {keys}")
        if metric and not self._metric:
            self._metric = metric
        if mode and not self._mode:
            self._mode = mode
        return True

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        if not self._metric or not self._mode:
            raise ConfigError("EvonasSearcher needs a metric and a mode ('min' or 'max'): give them to "
                              "EvonasSearcher(metric=..., mode=...) or to tune.TuneConfig with a param_space")
        arch = self.strategy.ask()
        if arch is None:
            # The strategy waits for results in flight; with none in flight it has nothing to propose.
            # Tune's protocol: the string FINISHED, though Searcher.suggest is annotated Optional[Dict].
            return None if self._live else Searcher.FINISHED  # type: ignore[return-value]
        arch = self.space.validate(arch)
        number = self._num_suggested
        self._num_suggested += 1
        self._live[trial_id] = arch
        config: dict[str, Any] = dict(as_params(arch, self.names))
        config.update(
            arch=arch,
            arch_str=self.space.format(arch),
            evaluation_id=number,
            evaluation_seed=evaluation_seed(self.seed, number),
        )
        return config

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        arch = self._live.pop(trial_id, None)
        if arch is None:
            return  # not suggested by this searcher, or told already
        self.strategy.tell(arch, None if error else self._fitness(result))

    def _fitness(self, result: Mapping[str, Any] | None) -> FitnessValues | None:
        value = None if result is None or self._metric is None else result.get(self._metric)
        if value is None:
            return None
        try:
            number = float(value)
        except (TypeError, ValueError):
            return None
        if not math.isfinite(number):
            return None
        return (number if self._mode == "max" else -number,)

    # ---------------------------------------------------------------------- state
    def save(self, checkpoint_path: str) -> None:
        """Pickle the searcher's state to ``checkpoint_path``, signed with this user's evonas
        key like a run directory's checkpoints (Tune calls this)."""
        state = {
            "format": _FORMAT,
            "strategy": self.strategy,
            "space": self.space,
            "names": self.names,
            "seed": self.seed,
            "metric": self._metric,
            "mode": self._mode,
            "num_suggested": self._num_suggested,
            "live": dict(self._live),
        }
        atomic_write_bytes(checkpoint_path, sign(_SIGNED_NAME, pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)))

    def restore(self, checkpoint_path: str) -> None:
        """Replace the searcher's state by the one :meth:`save` wrote to ``checkpoint_path``.

        Raises:
            UntrustedFileError: The file is not signed with this user's evonas key (it is
                never unpickled).
            RunDirError: The file is not a state written by :meth:`save`.
        """
        with open(checkpoint_path, "rb") as f:
            payload = verified_payload(_SIGNED_NAME, f.read())
        if payload is None:  # never unpickled: it could run code
            raise UntrustedFileError(
                f"{os.fspath(checkpoint_path)!r} is not a state saved by EvonasSearcher.save with this user's evonas key"
            )
        state = pickle.loads(payload)
        if not isinstance(state, dict) or state.get("format") != _FORMAT:
            raise RunDirError(f"{os.fspath(checkpoint_path)!r} is not a state saved by EvonasSearcher.save")
        self.strategy = state["strategy"]
        self.space = state["space"]
        self.names = tuple(state["names"])
        self.seed = int(state["seed"])
        self._metric = state["metric"]
        self._mode = state["mode"]
        self._num_suggested = int(state["num_suggested"])
        self._live = dict(state["live"])


def _check_metric_mode(metric: Any, mode: Any) -> None:
    if metric is not None and not isinstance(metric, str):
        raise ConfigError(f"EvonasSearcher: 'metric' must be the name of one reported metric; got {metric!r}")
    if mode is not None and mode not in MODES:
        raise ConfigError(f"EvonasSearcher: 'mode' must be one of {', '.join(MODES)}; got {mode!r}")


__all__ = ["EvonasSearcher"]
