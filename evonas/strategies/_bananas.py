"""BANANAS: White, Neiswanger & Savani, "BANANAS: Bayesian Optimization with Neural
Architectures for Neural Architecture Search", AAAI 2021.

Also the machinery every predictor-guided strategy shares: the surrogate (any registered
predictor, optionally ensembled for an uncertainty estimate), the acquisition functions,
the batch ask/tell protocol (:class:`PredictorGuidedSearch`, which NPENAS builds on), an
optional zero-cost warm start (:mod:`evonas.strategies._zc_warmstart`) and an optional
final local-search phase (White, Nolen, Savani, "Exploring the Loss Landscape in Neural
Architecture Search", UAI 2021).
"""

from __future__ import annotations

import abc
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

import numpy as np

from evonas.config import (
    MAX_ARCHS,
    MAX_COUNT,
    MAX_POPULATION,
    Checked,
    ComponentConfig,
    Range,
    check_choice,
)
from evonas.errors import ConfigError, EvonasError
from evonas.spaces import Arch, SearchSpace, require
from evonas.strategies._base import FitnessValues, Strategy
from evonas.strategies._zc_warmstart import WarmStartConfig, warm_start_batch

if TYPE_CHECKING:
    from predictors import ArchPredictor

ACQUISITIONS: tuple[str, ...] = ("its", "ucb", "ei", "mean")
"""Acquisition functions by name: independent Thompson sampling, upper confidence bound,
expected improvement, and the predicted mean alone (no uncertainty needed)."""

Acquisition = Literal["its", "ucb", "ei", "mean"]

MAX_ENSEMBLE = 100
"""Most surrogate copies of an ensemble (as ``predictors``' ensemble allows)."""

_RESERVED_SURROGATE_PARAMS = {
    "space": "it is the search's space",
    "random_state": "it is drawn from the strategy's generator (seeded by the run seed) at every fit",
}


# ------------------------------------------------------------------------ acquisitions
def thompson_sample(mean: np.ndarray, std: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Independent Thompson sampling: one draw from ``N(mean_i, std_i^2)`` per candidate.

    The acquisition BANANAS recommends (White et al., AAAI 2021, section 4): cheaper than
    a joint posterior draw and as good in their experiments.

    Shapes:
        ``mean``, ``std`` and the output: ``(n_candidates,)``.
    """
    return np.asarray(rng.normal(mean, std), dtype=np.float64)


def upper_confidence_bound(mean: np.ndarray, std: np.ndarray, beta: float) -> np.ndarray:
    """``mean + beta * std`` (Srinivas et al., ICML 2010), larger is better.

    Shapes:
        ``mean``, ``std`` and the output: ``(n_candidates,)``.
    """
    return np.asarray(mean, dtype=np.float64) + beta * np.asarray(std, dtype=np.float64)


def expected_improvement(mean: np.ndarray, std: np.ndarray, best: float) -> np.ndarray:
    """Expected improvement over ``best`` of a Gaussian prediction, for maximisation
    (Mockus et al., 1978; Jones et al., 1998):
    ``EI = (mean - best) * Phi(z) + std * phi(z)`` with ``z = (mean - best) / std``, and
    ``max(mean - best, 0)`` where ``std`` is 0.

    Shapes:
        ``mean``, ``std`` and the output: ``(n_candidates,)``.
    """
    from scipy.special import ndtr

    mean = np.asarray(mean, dtype=np.float64)
    std = np.asarray(std, dtype=np.float64)
    gain = mean - best
    positive = std > 0
    z = np.divide(gain, std, out=np.zeros_like(gain), where=positive)
    density = np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)
    return np.where(positive, gain * ndtr(z) + std * density, np.maximum(gain, 0.0))


def acquire(
    name: str, mean: np.ndarray, std: np.ndarray, best: float, rng: np.random.Generator, beta: float = 0.5
) -> np.ndarray:
    """Scores of candidates under the acquisition ``name`` (larger is better).

    Args:
        name: One of :data:`ACQUISITIONS`.
        mean: Predicted fitness of every candidate.
        std: Predictive standard deviation (ignored by ``mean``).
        best: Best fitness told so far (the incumbent of ``ei``).
        rng: Draws of ``its``.
        beta: Exploration weight of ``ucb`` (default 0.5).

    Shapes:
        ``mean``, ``std`` and the output: ``(n_candidates,)``.

    Raises:
        ConfigError: ``name`` is not an acquisition; the message lists them.
    """
    check_choice(name, "acquisition", ACQUISITIONS)
    if name == "its":
        return thompson_sample(mean, std, rng)
    if name == "ucb":
        return upper_confidence_bound(mean, std, beta)
    if name == "ei":
        return expected_improvement(mean, std, best)
    return np.asarray(mean, dtype=np.float64)


# ---------------------------------------------------------------------------- surrogate
def _default_surrogate() -> ComponentConfig:
    return ComponentConfig("rf", {"n_estimators": 50})


def _predictor(surrogate: ComponentConfig, space: SearchSpace | None = None, who: str = "") -> ArchPredictor:
    """The unfitted registered predictor of a ``surrogate`` section, its parameters checked
    (against ``space`` when given, else against the predictor's default space).

    Raises:
        ConfigError: Unknown predictor, invalid or reserved hyper-parameter.
        CapabilityError: ``space`` lacks a capability the predictor needs (``who`` needs it).
    """
    from predictors import make_predictor

    for key, why in _RESERVED_SURROGATE_PARAMS.items():
        if key in surrogate.params:
            raise ConfigError(f"'surrogate.params' must not set {key!r}: {why}")
    try:
        predictor = make_predictor(surrogate.name, **surrogate.params)
        if space is not None:
            predictor.set_params(space=space)
            require(space, predictor.required_capabilities(), who)
        predictor.check_params()
    except ConfigError:
        raise
    except EvonasError as exc:
        raise ConfigError(f"invalid 'surrogate': {exc}") from None
    return predictor


def _with_uncertainty() -> list[str]:
    """Registered predictors that predict a standard deviation."""
    from predictors import PREDICTORS

    names = []
    for name in PREDICTORS.names():
        try:
            if PREDICTORS.get(name)().has_uncertainty:
                names.append(name)
        except (TypeError, ValueError):  # a plugin factory that needs arguments is not listed
            continue
    return names


def check_surrogate(surrogate: ComponentConfig, acquisition: str, ensemble_size: int) -> None:
    """Refuse a surrogate that cannot serve ``acquisition``.

    Raises:
        ConfigError: Unknown predictor or hyper-parameter; a hyper-parameter the strategy
            sets itself; an acquisition that needs an uncertainty estimate from a
            predictor without one and no ensemble; an ensemble of a predictor without a
            seed (its copies would all agree).
    """
    predictor = _predictor(surrogate)
    seeded = "random_state" in predictor.get_params(deep=False)
    if ensemble_size > 1 and not seeded:
        raise ConfigError(
            f"ensemble_size {ensemble_size} needs a seeded surrogate; {surrogate.name!r} has no 'random_state', "
            "so its copies would all agree: use ensemble_size 1"
        )
    if acquisition != "mean" and not predictor.has_uncertainty and ensemble_size < 2:
        raise ConfigError(
            f"surrogate {surrogate.name!r} has no uncertainty estimate, which acquisition {acquisition!r} needs; "
            f"valid: a surrogate with one ({', '.join(_with_uncertainty())}), ensemble_size >= 2, or "
            "acquisition 'mean'"
        )


@dataclass(frozen=True)
class GuidedConfig(Checked):
    """What every predictor-guided strategy is configured with.

    Attributes:
        num_init: Uniform random architectures evaluated before the surrogate is first fitted.
        batch_size: Architectures proposed per surrogate fit (the ``k`` of BANANAS).
        num_parents: Best architectures told so far whose mutations are the candidates.
        acquisition: How candidates are ranked: ``its``, ``ucb``, ``ei`` or ``mean``.
        beta: Exploration weight of ``ucb``.
        surrogate: The predictor, ``{name: <registered predictor>, params: {...}}``; its
            ``space`` is the search's and its ``random_state`` is drawn at every fit.
        ensemble_size: Copies of the surrogate fitted with different seeds; their mean and
            spread are the prediction and its uncertainty (1: the surrogate alone, whose own
            uncertainty estimate, if any, is used). The copies differ by their seed only,
            so the surrogate should be randomised (bootstrap, row subsampling, initialisation).
        local_search_after: Results told (successes and failures) after which the strategy
            turns to local search around the incumbent (see :class:`PredictorGuidedSearch`);
            ``None`` (default): never.
        restart_distance: In local search, architectures within this many differing
            positions of a local optimum already found are not centres again (default 3).
        warm_start: Choose the first ``num_init`` architectures by a zero-cost proxy over
            a pool of random ones (``None``, default: uniform samples); the proxy's compute
            time is charged to the search budget.
    """

    num_init: Annotated[int, Range(1, MAX_POPULATION)] = 10
    batch_size: Annotated[int, Range(1, MAX_POPULATION)] = 10
    num_parents: Annotated[int, Range(1, MAX_POPULATION)] = 10
    acquisition: Acquisition = "its"
    beta: Annotated[float, Range(0)] = 0.5
    surrogate: ComponentConfig = field(default_factory=_default_surrogate)
    ensemble_size: Annotated[int, Range(1, MAX_ENSEMBLE)] = 1
    local_search_after: Annotated[int | None, Range(1, MAX_COUNT)] = None
    restart_distance: Annotated[int, Range(1, MAX_POPULATION)] = 3
    warm_start: WarmStartConfig | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice(self.acquisition, "acquisition", ACQUISITIONS)
        check_surrogate(self.surrogate, self.acquisition, self.ensemble_size)


class PredictorGuidedSearch(Strategy):
    """Batches of candidates ranked by a surrogate fitted on every result told so far.

    The first ``num_init`` proposals are distinct uniform samples. After that, each time
    a batch has been told, the surrogate is fitted on every successful ``(architecture,
    fitness)`` pair, candidates are bred from the best ``num_parents`` architectures by
    the space's one-edit mutation (:meth:`candidates`; never an architecture proposed
    before), and the ``batch_size`` candidates with the best acquisition scores are
    proposed (the first of equal scores wins). When mutations give fewer than
    ``batch_size`` candidates, unproposed random samples join them.

    With ``warm_start``, the first batch is the ``num_init`` best architectures of a pool
    of random ones under a zero-cost proxy (Abdelfattah et al., ICLR 2021); the measured
    seconds of scoring the pool are charged to the budget (:meth:`take_cost`).

    With ``local_search_after``, once that many results have been told the strategy does
    local search, one proposal at a time (White et al., UAI 2021): the centre is the best
    architecture told that is not within ``restart_distance`` positions of a local optimum
    found before; its one-edit neighbours never proposed are proposed best predicted mean
    first (the surrogate is fitted once per centre), until one beats the centre, which
    then moves to it. A centre whose every neighbour has been proposed is a local optimum;
    the search restarts from the best architecture away from all of them, so it does not
    spend the rest of the budget next to one optimum.

    Failed evaluations are never parents nor training targets; they are not proposed
    again. While fewer successes than the surrogate needs exist, batches are uniform
    samples. A surrogate with ``partial_fit`` is kept and updated with the new pairs only;
    any other is fitted from scratch each time and not kept, so the state stays the
    results, the proposals in flight and the generator. ``fit_seconds`` totals the wall
    time spent fitting (see :meth:`summary`).

    The strategy works in batches, so it is ``synchronous``: the search loop tells a
    batch's results in the order they were asked, and a run's proposals do not depend on
    the executor.
    """

    Config: ClassVar[type] = GuidedConfig
    synchronous: ClassVar[bool] = True
    max_objectives: ClassVar[int] = 1
    # What the default surrogate (rows of one-hot ops) needs; the configured surrogate's
    # own needs are checked when the strategy is built.
    requires: ClassVar[frozenset[str]] = frozenset({"fixed_length"})

    def __init__(self, space: SearchSpace, num_objectives: int, rng: np.random.Generator, config: Any = None) -> None:
        super().__init__(space, num_objectives, rng, config)
        who = f"the surrogate {self.config.surrogate.name!r} of strategy {type(self).__name__}"
        self._template = _predictor(self.config.surrogate, space, who)
        self.archs: list[Arch] = []
        """Architectures told with a fitness, in the order told (the surrogate's training set)."""
        self.values: list[float] = []
        """Their fitness (first objective, larger is better)."""
        self._proposed: set[Arch] = set()
        self._queue: list[Arch] = []  # the batch not yet asked, last to be asked first
        self._outstanding = 0
        self._started = False
        self._model: ArchPredictor | None = None  # kept only when updated incrementally
        self._model_pairs = 0
        self.fit_seconds = 0.0
        self.num_fits = 0
        self.zero_cost_seconds = 0.0
        self._unbilled_seconds = 0.0
        self._told = 0
        self.local_optima: list[Arch] = []
        """Centres of the local-search phase whose every neighbour has been proposed."""
        self._centre: Arch | None = None
        self._centre_order: list[Arch] = []  # the centre's neighbours, best predicted last

    # ---------------------------------------------------------------------------- ask/tell
    def ask(self) -> Arch | None:
        if not self._queue:
            if self._outstanding:
                return None  # the batch's results decide the next batch
            batch = self._next_batch()
            if not batch:
                return None
            self._proposed.update(batch)
            self._queue = batch[::-1]
        self._outstanding += 1
        return self._queue.pop()

    def tell(self, arch: Arch, fitness: FitnessValues | None) -> None:
        self._outstanding = max(0, self._outstanding - 1)
        self._proposed.add(arch)
        self._told += 1
        if fitness is None or not math.isfinite(float(fitness[0])):
            return
        self.archs.append(arch)
        self.values.append(float(fitness[0]))

    def take_cost(self) -> float:
        """Seconds of zero-cost scoring not yet charged to the budget (then zero)."""
        seconds, self._unbilled_seconds = self._unbilled_seconds, 0.0
        return seconds

    def summary(self) -> dict[str, Any]:
        """Surrogate figures for a search summary: its name, fits and their wall time, and the
        zero-cost scoring time of a warm start (charged to the budget)."""
        out: dict[str, Any] = {
            "surrogate": self.config.surrogate.name, "surrogate_fits": self.num_fits, "fit_seconds": self.fit_seconds
        }
        if self.config.warm_start is not None:
            out["zero_cost_seconds"] = self.zero_cost_seconds
        if self.config.local_search_after is not None:
            out["local_optima"] = len(self.local_optima)
        return out

    # ---------------------------------------------------------------------------- batches
    @abc.abstractmethod
    def candidates(self, parents: Sequence[Arch]) -> list[Arch]:
        """Distinct architectures bred from ``parents`` (best first) that were never proposed."""

    def parents(self) -> list[Arch]:
        """The best ``num_parents`` architectures told so far (the earliest among equals)."""
        order = sorted(range(len(self.values)), key=lambda i: -self.values[i])
        return [self.archs[i] for i in order[: self.config.num_parents]]

    def _next_batch(self) -> list[Arch]:
        if not self._started:
            self._started = True
            return self._first_batch()
        if len(self.archs) < self._template.fewest_fit_archs():
            return self._unproposed_samples(self.config.batch_size, set())
        after = self.config.local_search_after
        if after is not None and self._told >= after:
            return self._local_search_step()
        model = self._fit()
        pool = self.candidates(self.parents())
        if len(pool) < self.config.batch_size:
            pool += self._unproposed_samples(self.config.batch_size - len(pool), set(pool))
        if not pool:
            return []
        if self.config.acquisition == "mean":
            mean, std = model.predict(pool), np.zeros(len(pool))
        else:
            mean, std = model.predict(pool, return_std=True)
        scores = acquire(self.config.acquisition, mean, std, max(self.values), self.rng, self.config.beta)
        order = np.argsort(-scores, kind="stable")[: self.config.batch_size]
        return [pool[int(i)] for i in order]

    def _first_batch(self) -> list[Arch]:
        n = self.config.num_init
        if self.config.warm_start is None:
            return self._unproposed_samples(n, set())
        batch, seconds = warm_start_batch(self.config.warm_start, self.space, n, self.rng, self._proposed)
        self.zero_cost_seconds += seconds
        self._unbilled_seconds += seconds
        return batch + self._unproposed_samples(n - len(batch), set(batch))

    # ------------------------------------------------------------------------ local search
    def _near_optimum(self, arch: Arch) -> bool:
        limit = self.config.restart_distance
        return any(sum(a != b for a, b in zip(arch, opt)) < limit for opt in self.local_optima)

    def _local_search_step(self) -> list[Arch]:
        """One proposal of the local-search phase (see the class docstring)."""
        order = sorted(range(len(self.values)), key=lambda i: -self.values[i])
        for i in order:
            centre = self.archs[i]
            if self._near_optimum(centre):
                continue
            if centre != self._centre:
                todo = [n for n in dict.fromkeys(self.space.neighbors(centre)) if n not in self._proposed]
                if not todo:
                    self.local_optima.append(centre)
                    continue
                mean = self._fit().predict(todo)
                ranked = np.argsort(-np.asarray(mean, dtype=np.float64), kind="stable")
                self._centre, self._centre_order = centre, [todo[int(j)] for j in ranked[::-1]]
            while self._centre_order and self._centre_order[-1] in self._proposed:
                self._centre_order.pop()
            if self._centre_order:
                return [self._centre_order.pop()]
            self.local_optima.append(centre)
            self._centre = None
        # Every architecture told is near a local optimum: explore at random.
        return self._unproposed_samples(1, set())

    def _unproposed_samples(self, n: int, exclude: set[Arch]) -> list[Arch]:
        """Up to ``n`` distinct uniform samples never proposed (fewer when a small space is
        nearly exhausted: the draws are bounded)."""
        out: list[Arch] = []
        for _ in range(100 * n):
            if len(out) == n:
                break
            arch = self.space.sample(self.rng)
            if arch in self._proposed or arch in exclude:
                continue
            exclude.add(arch)
            out.append(arch)
        return out

    def _new_model(self) -> ArchPredictor:
        from sklearn.base import clone

        from predictors import EnsemblePredictor

        seed = int(self.rng.integers(2**31 - 1))
        model: ArchPredictor = clone(self._template)
        if "random_state" in model.get_params(deep=False):
            model.set_params(random_state=seed)
        if self.config.ensemble_size > 1:
            model = EnsemblePredictor(estimators=[model] * self.config.ensemble_size, random_state=seed, space=self.space)
        return model

    def _fit(self) -> ArchPredictor:
        """The surrogate fitted on every successful pair (timed into ``fit_seconds``)."""
        start = time.perf_counter()
        y = np.asarray(self.values, dtype=np.float64)
        model: Any = self._model
        if model is not None:
            model.partial_fit(self.archs[self._model_pairs :], y[self._model_pairs :])
        else:
            model = self._new_model().fit(self.archs, y)
            if hasattr(model, "partial_fit"):
                self._model = model
        self._model_pairs = len(self.archs)
        self.fit_seconds += time.perf_counter() - start
        self.num_fits += 1
        return model


# ----------------------------------------------------------------------------- BANANAS
@dataclass(frozen=True)
class BANANASConfig(GuidedConfig):
    """Hyper-parameters of BANANAS (defaults: ``num_init`` 10, ``batch_size`` 10,
    ``num_parents`` 10, ``acquisition`` its, a 50-tree random forest as the surrogate).

    Attributes:
        num_candidates: One-edit mutations drawn per batch, spread over the parents in
            turn (default 100); repeats and architectures proposed before are dropped.
    """

    num_candidates: Annotated[int, Range(1, MAX_ARCHS)] = 100


class BANANAS(PredictorGuidedSearch):
    """BANANAS (White et al., AAAI 2021): Bayesian optimisation with a predictor ensemble.

    Each batch, the surrogate (the paper's is an ensemble of MLPs on the path encoding:
    ``surrogate: {name: bananas}``) is fitted on everything evaluated; ``num_candidates``
    mutations of the best ``num_parents`` architectures are scored by the acquisition
    (independent Thompson sampling by default, as the paper recommends) and the
    ``batch_size`` best are proposed. See :class:`PredictorGuidedSearch` for failures,
    the first batch and refitting.
    """

    Config: ClassVar[type] = BANANASConfig

    def candidates(self, parents: Sequence[Arch]) -> list[Arch]:
        found: dict[Arch, None] = {}
        for i in range(self.config.num_candidates):
            child = self.space.mutate(parents[i % len(parents)], self.rng)
            if child not in self._proposed:
                found.setdefault(child)
        return list(found)
