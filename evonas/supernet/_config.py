"""The YAML config of a supernet training run (``evonas supernet train --config ...``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

from evonas.config import (
    MAX_ARCHS,
    MAX_BATCH_SIZE,
    MAX_COUNT,
    MAX_SEED,
    Checked,
    ComponentConfig,
    IsPath,
    Range,
    Registered,
    check_int,
)
from evonas.data import DatasetConfig
from evonas.training import ComputeConfig, OptimConfig


@dataclass(frozen=True)
class SupernetTrainConfig(Checked):
    """The optimisation recipe (``train`` section).

    SGD with (Nesterov) momentum, a linear warm-up then a cosine decay of the learning
    rate per step (Loshchilov & Hutter, SGDR, ICLR 2017), and gradient-norm clipping.

    Attributes:
        steps: Optimiser steps (each on one batch); the training budget.
        batch_size: Images per batch.
        archs_per_step: Sampler proposals per step; their gradients are accumulated
            (the fair sampler's proposals are ``num_ops`` paths each).
        warmup_steps: Steps of linear learning-rate warm-up from ``optim.lr / warmup_steps``.
        optim: The optimiser (:class:`~evonas.training.OptimConfig`); ``lr`` is the peak
            learning rate, ``min_lr`` the one at the end of the cosine decay. Default
            ``lr`` 0.05 and ``grad_clip`` 5.0 when the section is left out; a written
            ``optim`` section starts from :class:`~evonas.training.OptimConfig`'s defaults.
        compute: Device, precision, memory format and CPU threads
            (:class:`~evonas.training.ComputeConfig`).
    """

    steps: Annotated[int, Range(1, MAX_COUNT)] = 1000
    batch_size: Annotated[int, Range(1, MAX_BATCH_SIZE)] = 64
    archs_per_step: Annotated[int, Range(1, MAX_BATCH_SIZE)] = 1
    warmup_steps: Annotated[int, Range(0, MAX_COUNT)] = 0
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=0.05, grad_clip=5.0))
    compute: ComputeConfig = field(default_factory=ComputeConfig)


@dataclass(frozen=True)
class SupernetEvalConfig(Checked):
    """How an architecture is evaluated with inherited weights (``evaluation`` section).

    Attributes:
        bn_recalibration: Re-estimate batch-norm statistics for every architecture on
            ``bn_batches`` training batches before evaluating it (default true).
        bn_batches: Training batches (of ``batch_size``, not augmented) for re-estimation.
        val_images: Validation images every architecture is evaluated on (a fixed,
            seeded subset; null: the whole validation split).
        batch_size: Batch size of re-estimation and evaluation passes.
        cache_size: Evaluations kept per evaluator (least recently used are dropped).
    """

    bn_recalibration: bool = True
    bn_batches: Annotated[int, Range(1, MAX_COUNT)] = 4
    val_images: Annotated[int | None, Range(1, MAX_COUNT)] = 1000
    batch_size: Annotated[int, Range(1, MAX_BATCH_SIZE)] = 250
    cache_size: Annotated[int, Range(0, MAX_ARCHS)] = 100_000


@dataclass(frozen=True)
class ProxyConfig(Checked):
    """The proxy-validation loop (``proxy`` section).

    Every ``every`` steps from step ``start`` on, ``archs_per_round`` uniformly sampled
    architectures are evaluated with the current weights and join the memory; once it
    holds ``min_memory`` entries the predictor is fitted on it and handed to the sampler
    (Li et al., "Neural Architecture Search via Proxy Validation", TPAMI 2022).

    Attributes:
        every: Steps between rounds (0: no proxy loop).
        start: Step of the first round (0: at step ``every``). Losses measured early in
            training rank architectures poorly, so a predictor meant for the end of
            training gets better labels from later rounds.
        archs_per_round: Architectures evaluated per round (at least 2 with ``normalize``).
        final_round: Also run a round after the last step (its losses come from the final
            weights, the best labels the predictor can get).
        normalize: Standardise each round's losses (zero mean, unit variance) before they
            enter the memory, which removes the drift of the loss level as training goes
            on; the predictor then predicts losses in per-round standard units.
        min_memory: Memory entries needed before the predictor is fitted.
        memory_size: Most recent entries used for fitting (null: all).
        predictor: Registered predictor of the ``predictors`` package (``gae``).
        predictor_params: Its hyper-parameters.
        ensemble: Independently seeded fits of the predictor whose predictions are
            averaged (``predictors.EnsemblePredictor``; 1: a single fit). A predictor
            fitted on a few hundred noisy supernet losses varies from seed to seed; the
            average is steadier.
    """

    every: Annotated[int, Range(0, MAX_COUNT)] = 0
    start: Annotated[int, Range(0, MAX_COUNT)] = 0
    archs_per_round: Annotated[int, Range(1, MAX_ARCHS)] = 20
    final_round: bool = True
    normalize: bool = True
    min_memory: Annotated[int, Range(2, MAX_ARCHS)] = 20
    memory_size: Annotated[int | None, Range(2, MAX_ARCHS)] = None
    predictor: str = "gae"
    predictor_params: dict[str, Any] = field(default_factory=dict)
    ensemble: Annotated[int, Range(1, 100)] = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.normalize:
            check_int(self.archs_per_round, "proxy.archs_per_round", 2)

    @property
    def enabled(self) -> bool:
        """Whether the proxy loop runs at all."""
        return self.every > 0

    def round_steps(self, total_steps: int) -> range:
        """The step counts after which a (non-final) round runs in a run of ``total_steps``."""
        if self.every <= 0:
            return range(0)
        return range(self.start or self.every, total_steps, self.every)


@dataclass(frozen=True)
class SupernetRunConfig(Checked):
    """A whole supernet training run.

    Attributes:
        dataset: The data (:class:`~evonas.data.DatasetConfig`); a relative ``root`` in a
            config file is relative to that file.
        space: The search space, ``{name, params}`` (default ``{name: nb201}``).
        supernet: The registered supernet serving that space and its size, ``{name,
            params}`` (default ``{name: nb201}``: ``channels`` 16, ``cells_per_stage`` 1).
        sampler: The registered sampler and its parameters, ``{name, params}``
            (default ``{name: uniform}``).
        train: The optimisation recipe.
        evaluation: Evaluation with inherited weights.
        proxy: The proxy-validation loop.
        seed: Seed of data order, augmentation, sampling and initialisation.
        checkpoint_every: Steps between checkpoints.
        log_every: Steps between ``step`` records of the run log.
        run_dir: Where the run directory goes (default ``runs/<config name>-<time>``);
            relative to the config file.
        progress: Show a progress bar.
        table: NAS-Bench-201 table for ``evonas supernet rank`` (null: ``$EVONAS_NB201``);
            relative to the config file like ``dataset.root``.
    """

    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    space: Annotated[ComponentConfig, Registered("space")] = field(default_factory=lambda: ComponentConfig("nb201"))
    supernet: Annotated[ComponentConfig, Registered("supernet")] = field(
        default_factory=lambda: ComponentConfig("nb201")
    )
    sampler: Annotated[ComponentConfig, Registered("sampler")] = field(
        default_factory=lambda: ComponentConfig("uniform")
    )
    train: SupernetTrainConfig = field(default_factory=SupernetTrainConfig)
    evaluation: SupernetEvalConfig = field(default_factory=SupernetEvalConfig)
    proxy: ProxyConfig = field(default_factory=ProxyConfig)
    seed: Annotated[int, Range(0, MAX_SEED)] = 0
    checkpoint_every: Annotated[int, Range(1, MAX_COUNT)] = 200
    log_every: Annotated[int, Range(1, MAX_COUNT)] = 50
    run_dir: Annotated[str | None, IsPath()] = None
    progress: bool = True
    table: Annotated[str | None, IsPath()] = None
