"""Zero-cost warm start: the first architectures a search evaluates chosen by a zero-cost proxy.

Abdelfattah, Mehrotra, Dudziak & Lane, "Zero-Cost Proxies for Lightweight NAS", ICLR 2021
(section 5, "warmup"): score many random architectures with a proxy that needs one
minibatch and no training, and evaluate the best-scoring ones first. The scores come from
evonas's own scorer (:class:`predictors.ZeroCostScorer`, real images, seeded
initialisation); the wall time of computing them is measured per architecture and charged
to the search budget through :meth:`~evonas.strategies.Strategy.take_cost`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated

import numpy as np

from evonas.config import (
    MAX_ARCHS,
    MAX_BATCH_SIZE,
    MAX_SEED,
    Checked,
    ComponentConfig,
    IsPath,
    Range,
    check_choice,
)
from evonas.spaces import Arch, SearchSpace

if TYPE_CHECKING:
    from predictors import ZeroCostScorer

WARM_START_PROXIES: tuple[str, ...] = ("naswot", "jacob_cov", "synflow", "snip", "grad_norm", "params", "flops")
"""Proxies a warm start can rank by (those of :data:`predictors.PROXIES`)."""


def _small_network() -> ComponentConfig:
    return ComponentConfig("nb201", {"channels": 16, "cells_per_stage": 1})


@dataclass(frozen=True)
class WarmStartConfig(Checked):
    """How the first batch of a guided search is chosen by a zero-cost proxy.

    Attributes:
        proxy: The proxy ranking the pool (one of :data:`WARM_START_PROXIES`; default
            ``naswot``, Mellor et al., ICML 2021).
        num_scored: Distinct random architectures scored (the pool); the ``num_init``
            best-scoring ones are evaluated first (default 100).
        pool_seed: Seed of the pool's draw; ``None`` (default) draws it from the strategy's
            generator, so every run seed scores its own pool. A fixed seed gives every run
            the same pool (and lets a process reuse the scores across runs).
        data_root: Images of the minibatch, e.g. ``cifar10-jpg-small.tar.gz`` of the shared
            data (relative to the config file); ``None``: the dataset's default location.
        dataset: Registered dataset name (default ``imagefolder``).
        batch_size: Images in the minibatch (default 32).
        data_seed: Chooses the minibatch.
        init_seed: Seeds the networks' initialisation.
        network: The registered decoder building the scored networks (default NAS-Bench-201's
            network with one cell per stage, which keeps scoring cheap on a CPU).
    """

    proxy: str = "naswot"
    num_scored: Annotated[int, Range(1, MAX_ARCHS)] = 100
    pool_seed: Annotated[int | None, Range(0, MAX_SEED)] = None
    data_root: Annotated[str | None, IsPath()] = None
    dataset: str = "imagefolder"
    batch_size: Annotated[int, Range(2, MAX_BATCH_SIZE)] = 32
    data_seed: Annotated[int, Range(0, MAX_SEED)] = 0
    init_seed: Annotated[int, Range(0, MAX_SEED)] = 0
    network: ComponentConfig = field(default_factory=_small_network)

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice(self.proxy, "warm_start.proxy", WARM_START_PROXIES)

    def scorer(self, space: SearchSpace) -> ZeroCostScorer:
        """The :class:`~predictors.ZeroCostScorer` of these settings for ``space`` (memory cache only)."""
        from predictors import ZeroCostScorer

        return ZeroCostScorer(
            data_root=self.data_root, dataset=self.dataset, batch_size=self.batch_size, data_seed=self.data_seed,
            init_seed=self.init_seed, network=self.network, cache_dir=None, space=space,
        )


# Per process: (scorer settings, proxy) -> arch -> (score, measured seconds of computing it).
# A score is a deterministic function of the settings and the architecture, so runs of one
# process share it; each run is still charged the seconds it took to compute.
_MEASURED: dict[tuple[str, str], dict[Arch, tuple[float, float]]] = {}
# (scorer settings) -> measured seconds of loading the minibatch.
_MINIBATCH_SECONDS: dict[str, float] = {}


def zero_cost_scores(config: WarmStartConfig, space: SearchSpace, archs: Sequence[Arch]) -> tuple[np.ndarray, float]:
    """The proxy's score of every architecture and the measured seconds of computing them.

    Each architecture is scored by :func:`predictors._zc_scorer.score_architecture` on the
    scorer's minibatch, timed alone; the seconds returned are the sum of those times over
    ``archs`` plus the time of loading the minibatch, as measured when first computed in
    this process (later calls reuse scores and times).

    Returns:
        ``(scores, seconds)``; ``scores`` is ``float64``, ``-inf`` where the proxy cannot
        score a network. Shapes: ``scores`` is ``(len(archs),)``.
    """
    from predictors._zc_scorer import score_architecture

    scorer = config.scorer(space)
    key = scorer.cache_key
    memo = _MEASURED.setdefault((key, config.proxy), {})
    missing = [a for a in dict.fromkeys(archs) if a not in memo]
    if missing:
        if key not in _MINIBATCH_SECONDS:
            start = time.perf_counter()
            batch = scorer.minibatch()
            _MINIBATCH_SECONDS[key] = time.perf_counter() - start
        else:
            batch = scorer.minibatch()
        network = scorer.network_config()
        for arch in missing:
            start = time.perf_counter()
            score = score_architecture(arch, (config.proxy,), batch, space, network, config.init_seed)[config.proxy]
            memo[arch] = (float(score), time.perf_counter() - start)
    scores = np.array([memo[a][0] for a in archs], dtype=np.float64)
    seconds = _MINIBATCH_SECONDS.get(key, 0.0) + sum(memo[a][1] for a in dict.fromkeys(archs))
    return scores, seconds


def warm_start_batch(
    config: WarmStartConfig, space: SearchSpace, n: int, rng: np.random.Generator, exclude: set[Arch]
) -> tuple[list[Arch], float]:
    """The ``n`` best-scoring architectures of a pool of ``config.num_scored`` random ones.

    Args:
        config: The warm start's settings.
        space: The search space.
        n: Architectures to return (the first batch of the search).
        rng: Draws the pool when ``config.pool_seed`` is ``None``.
        exclude: Architectures never to return (proposed before).

    Returns:
        The architectures, best score first (the first drawn among equal scores), and the
        measured seconds of scoring the pool.
    """
    pool_rng = rng if config.pool_seed is None else np.random.default_rng(config.pool_seed)
    pool: dict[Arch, None] = {}
    for _ in range(100 * config.num_scored):
        if len(pool) == config.num_scored:
            break
        arch = space.sample(pool_rng)
        if arch not in exclude:
            pool.setdefault(arch)
    archs = list(pool)
    if not archs:
        return [], 0.0
    scores, seconds = zero_cost_scores(config, space, archs)
    order = np.argsort(-scores, kind="stable")[:n]
    return [archs[int(i)] for i in order], seconds
