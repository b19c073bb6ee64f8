"""The proxy-validation loop's memory, its predictor, and the predictor as an evaluator.

Li et al., "Neural Architecture Search via Proxy Validation", TPAMI 2022: architectures
evaluated with supernet weights during training give ``(architecture, validation loss)``
pairs; a graph auto-encoder predictor (``predictors.GAEPredictor``, pre-trained on
unlabelled architectures) is fitted on them, and its predictions score architectures
at almost no cost, e.g. the one-edit neighbours of the neighbourhood-aware fitness.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from evonas.config import check_int
from evonas.errors import ConfigError
from evonas.evaluation import Evaluation
from evonas.spaces import Arch, SearchSpace

PROXY_METRIC = "proxy_val_loss"


@dataclass
class ProxyMemory:
    """Evaluated architectures and their validation losses, in the order they came.

    Attributes:
        entries: ``(architecture, loss, step, round)`` tuples.
        rounds: Rounds added so far.
    """

    entries: list[tuple[Arch, float, int, int]] = field(default_factory=list)
    rounds: int = 0

    def add_round(self, archs: Sequence[Arch], losses: Sequence[float], step: int, normalize: bool) -> list[float]:
        """Add one round of evaluations made with the same weights; return the stored values.

        With ``normalize`` the round's losses are standardised (zero mean, unit standard
        deviation over the round), which removes the drift of the loss level between
        rounds of a training run; non-finite losses are stored as the round's worst.
        """
        values = np.asarray(losses, dtype=np.float64)
        finite = np.isfinite(values)
        if not finite.any():
            return []
        values[~finite] = values[finite].max()
        if normalize:
            spread = values.std()
            values = (values - values.mean()) / (spread if spread > 0 else 1.0)
        for arch, v in zip(archs, values.tolist()):
            self.entries.append((tuple(arch), float(v), int(step), self.rounds))
        self.rounds += 1
        return values.tolist()

    def pairs(self, memory_size: int | None = None) -> list[tuple[Arch, float]]:
        """The latest value of each architecture among the most recent ``memory_size`` entries."""
        recent = self.entries if memory_size is None else self.entries[-memory_size:]
        latest: dict[Arch, float] = {}
        for arch, value, _, _ in recent:
            latest.pop(arch, None)  # keep insertion order = order of the latest value
            latest[arch] = value
        return list(latest.items())

    def archs(self) -> set[Arch]:
        """Every architecture the memory has seen."""
        return {a for a, _, _, _ in self.entries}

    def __len__(self) -> int:
        return len(self.entries)


def make_proxy_predictor(name: str, params: dict[str, Any] | None = None, space: SearchSpace | None = None) -> Any:
    """The unfitted registered predictor ``name`` with hyper-parameters ``params``; a
    predictor with a ``space`` hyper-parameter gets ``space.name`` unless ``params`` sets it.

    Raises:
        UnknownChoiceError: ``name`` is not a registered predictor.
        ParamError: A hyper-parameter is unknown or invalid (checked here, before any work).
    """
    from predictors import make_predictor

    predictor = make_predictor(name, **(params or {}))
    if space is not None and "space" in predictor.get_params(deep=False) and "space" not in (params or {}):
        predictor.set_params(space=space.name)
    check = getattr(predictor, "check_params", None)
    if callable(check):
        check()
    return predictor


def fit_proxy_predictor(
    memory: Sequence[tuple[Arch, float]],
    name: str = "gae",
    params: dict[str, Any] | None = None,
    seed: int = 0,
    ensemble: int = 1,
    space: SearchSpace | None = None,
) -> Any:
    """Fit the registered predictor ``name`` on ``(architecture, loss)`` pairs.

    ``random_state`` defaults to ``seed`` unless ``params`` sets it. With ``ensemble`` > 1
    the result is a ``predictors.EnsemblePredictor`` of that many copies, fitted with
    ``random_state`` = seed, seed + 1, ...: its prediction is their mean and
    ``predict(..., return_std=True)`` also gives their spread.

    Args:
        memory: The ``(architecture, loss)`` pairs.
        name: The registered predictor.
        params: Its hyper-parameters.
        seed: Its ``random_state`` unless ``params`` sets one.
        ensemble: Independently seeded fits averaged (1: a single fit).
        space: The space of the architectures (see :func:`make_proxy_predictor`).

    Raises:
        UnknownChoiceError: ``name`` is not a registered predictor.
        ParamError: A hyper-parameter is unknown or invalid.
        ConfigError: Fewer than two pairs, or ``ensemble`` < 1.
    """
    from predictors import EnsemblePredictor

    if len(memory) < 2:
        raise ConfigError(f"the proxy predictor needs at least 2 evaluated architectures; got {len(memory)}")
    check_int(ensemble, "proxy.ensemble", 1)
    params = dict(params or {})
    predictor = make_proxy_predictor(name, params, space)
    seeded = "random_state" in predictor.get_params(deep=False)
    start = int(params.get("random_state", seed)) if seeded else 0
    if seeded:
        predictor.set_params(random_state=start)
    if ensemble > 1:
        predictor = EnsemblePredictor(estimators=[predictor] * ensemble, random_state=start)
    archs = [a for a, _ in memory]
    y = np.asarray([v for _, v in memory], dtype=np.float64)
    return predictor.fit(archs, y)


class PredictorEvaluator:
    """A fitted predictor as an :class:`~evonas.evaluation.Evaluator`.

    Predictions are cached; :meth:`evaluate_many` predicts a whole list in one batch,
    so a fitness that scores an architecture's neighbours pays one predictor call.

    Args:
        predictor: A fitted estimator with ``predict(archs)`` (e.g. ``GAEPredictor``).
        space: The search space of the architectures.
        metric: The metric name of the predictions.
        cache_size: Predictions kept (least recently used dropped).

    Attributes:
        metric_names: ``(metric,)``; the cost of an evaluation is its wall time.
    """

    def __init__(
        self, predictor: Any, space: SearchSpace, metric: str = PROXY_METRIC, cache_size: int = 100_000
    ) -> None:
        if not hasattr(predictor, "predict"):
            raise ConfigError(f"PredictorEvaluator needs an estimator with predict(); got {type(predictor).__name__}")
        self.predictor = predictor
        self.metric = metric
        self.metric_names: tuple[str, ...] = (metric,)
        self.cache_size = cache_size
        self.space = space
        self._cache: collections.OrderedDict[Arch, float] = collections.OrderedDict()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_cache"] = collections.OrderedDict()
        return state

    def evaluate(self, arch: Sequence[int], seed: int = 0) -> Evaluation:
        """The predicted metric of ``arch`` (deterministic; ``seed`` is unused)."""
        return self.evaluate_many([arch])[0]

    def evaluate_many(self, archs: Sequence[Sequence[int]], seeds: Sequence[int] | None = None) -> list[Evaluation]:
        """Predictions for ``archs`` in one predictor call for the uncached ones (``seeds``
        are unused: predictions are deterministic)."""
        start = time.perf_counter()
        genotypes = [self.space.validate(a) for a in archs]
        todo = list(dict.fromkeys(g for g in genotypes if g not in self._cache))
        if todo:
            values = np.asarray(self.predictor.predict(todo), dtype=np.float64).reshape(-1)
            for g, v in zip(todo, values.tolist()):
                self._cache[g] = float(v)
        out = []
        cost = (time.perf_counter() - start) / max(len(genotypes), 1)
        for g in genotypes:
            self._cache.move_to_end(g)
            out.append(Evaluation(metrics={self.metric: self._cache[g]}, cost=cost))
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return out
