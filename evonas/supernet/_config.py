"""The YAML config of a supernet training run (``evonas supernet train --config ...``)."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from evonas.config import to_dict
from evonas.data import DatasetConfig
from evonas.errors import ConfigError
from evonas.spaces import SPACES
from evonas.training._device import check_device_spec

SUPPORTED_SPACES = ("nb201",)


def _int(where: str, value: Any, minimum: int, optional: bool = False) -> None:
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        more = " or null" if optional else ""
        raise ConfigError(f"{where} must be an integer >= {minimum}{more}; got {value!r}")


def _number(where: str, value: Any, low: float, high: float = math.inf, low_open: bool = False) -> None:
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
    ok = ok and (value > low if low_open else value >= low) and value <= high
    if not ok:
        bound = f"> {low}" if low_open else f">= {low}"
        upper = "" if high == math.inf else f" and <= {high}"
        raise ConfigError(f"{where} must be a number {bound}{upper}; got {value!r}")


@dataclass(frozen=True)
class SupernetSpec:
    """Size of the supernet (``supernet`` section).

    Attributes:
        channels: ``C``, channels of the first stage (default 16).
        cells_per_stage: ``N``, cells per stage (default 1; NAS-Bench-201 uses 5).
    """

    channels: int = 16
    cells_per_stage: int = 1

    def __post_init__(self) -> None:
        _int("supernet.channels", self.channels, 1)
        _int("supernet.cells_per_stage", self.cells_per_stage, 1)


@dataclass(frozen=True)
class SamplerConfig:
    """Which sampler proposes the trained architectures (``sampler`` section).

    Attributes:
        name: ``uniform``, ``novelty``, ``importance`` or ``fair``.
        params: The sampler's parameters (see its ``Config``).
    """

    name: str = "uniform"
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SupernetTrainConfig:
    """The optimisation recipe (``train`` section).

    SGD with (Nesterov) momentum, a linear warm-up then a cosine decay of the learning
    rate per step, and gradient-norm clipping.

    Attributes:
        steps: Optimiser steps (each on one batch); the training budget.
        batch_size: Images per batch.
        archs_per_step: Sampler proposals per step; their gradients are accumulated
            (the fair sampler's proposals are ``num_ops`` paths each).
        lr: Peak learning rate.
        min_lr: Learning rate at the end of the cosine decay.
        warmup_steps: Steps of linear learning-rate warm-up from ``lr / warmup_steps``.
        momentum: SGD momentum.
        nesterov: Nesterov momentum.
        weight_decay: L2 penalty.
        grad_clip: Clip the gradients' global L2 norm (null: no clipping).
        label_smoothing: Label smoothing of the training loss.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        amp: Mixed precision: ``auto`` (on for CUDA), true or false.
        channels_last: Channels-last memory format: ``auto`` (on for CUDA and for CPUs
            with oneDNN, where it trains 1.4-1.9x faster), true or false.
        num_threads: torch CPU threads while training (null: torch's default).
    """

    steps: int = 1000
    batch_size: int = 64
    archs_per_step: int = 1
    lr: float = 0.05
    min_lr: float = 0.0
    warmup_steps: int = 0
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    grad_clip: float | None = 5.0
    label_smoothing: float = 0.0
    device: str = "auto"
    amp: Literal["auto"] | bool = "auto"
    channels_last: Literal["auto"] | bool = "auto"
    num_threads: int | None = 1

    def __post_init__(self) -> None:
        _int("train.steps", self.steps, 1)
        _int("train.batch_size", self.batch_size, 1)
        _int("train.archs_per_step", self.archs_per_step, 1)
        _int("train.warmup_steps", self.warmup_steps, 0)
        _int("train.num_threads", self.num_threads, 1, optional=True)
        _number("train.lr", self.lr, 0.0, low_open=True)
        _number("train.min_lr", self.min_lr, 0.0, self.lr)
        _number("train.momentum", self.momentum, 0.0, 0.999999)
        _number("train.weight_decay", self.weight_decay, 0.0)
        _number("train.label_smoothing", self.label_smoothing, 0.0, 0.999999)
        if self.grad_clip is not None:
            _number("train.grad_clip", self.grad_clip, 0.0, low_open=True)
        if self.nesterov and self.momentum == 0:
            raise ConfigError("train.nesterov needs a positive train.momentum; got momentum 0")
        try:
            check_device_spec(self.device)
        except ConfigError as exc:
            raise ConfigError(f"train.device: {exc}") from None


@dataclass(frozen=True)
class SupernetEvalConfig:
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
    bn_batches: int = 4
    val_images: int | None = 1000
    batch_size: int = 250
    cache_size: int = 100_000

    def __post_init__(self) -> None:
        _int("evaluation.bn_batches", self.bn_batches, 1)
        _int("evaluation.val_images", self.val_images, 1, optional=True)
        _int("evaluation.batch_size", self.batch_size, 1)
        _int("evaluation.cache_size", self.cache_size, 0)


@dataclass(frozen=True)
class ProxyConfig:
    """The proxy-validation loop (``proxy`` section).

    Every ``every`` steps from step ``start`` on, ``archs_per_round`` uniformly sampled architectures are
    evaluated with the current weights and join the memory; once it holds ``min_memory``
    entries the predictor is fitted on it and handed to the sampler (Li et al., "Neural
    Architecture Search via Proxy Validation", TPAMI 2022).

    Attributes:
        every: Steps between rounds (0: no proxy loop).
        start: Step of the first round (0: at step ``every``). Losses measured early in
            training rank architectures poorly (on a 27-epoch CIFAR-10 run, rounds of
            30 cells at 10-30 % of training ranked them at Kendall tau 0.31 / 0.21 for
            the uniform / novelty sampler, those from 40 % on at 0.48 / 0.41), so a
            predictor meant for the end of training gets better labels from later rounds.
        archs_per_round: Architectures evaluated per round.
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
            averaged (``predictors.EnsemblePredictor``; 1: a single fit). A GAE fitted on a
            few hundred noisy supernet losses varies from seed to seed; on the memory of a
            27-epoch CIFAR-10 run, 5 fits averaged ranked 200 unseen cells at Kendall tau
            0.48 / 0.46 (uniform / novelty sampler) against 0.44 / 0.44 for the mean
            single fit.
    """

    every: int = 0
    start: int = 0
    archs_per_round: int = 20
    final_round: bool = True
    normalize: bool = True
    min_memory: int = 20
    memory_size: int | None = None
    predictor: str = "gae"
    predictor_params: dict[str, Any] = field(default_factory=dict)
    ensemble: int = 1

    def round_steps(self, total_steps: int) -> range:
        """The step counts after which a (non-final) round runs in a run of ``total_steps``."""
        if self.every <= 0:
            return range(0)
        return range(self.start or self.every, total_steps, self.every)

    def __post_init__(self) -> None:
        _int("proxy.every", self.every, 0)
        _int("proxy.start", self.start, 0)
        _int("proxy.ensemble", self.ensemble, 1)
        _int("proxy.archs_per_round", self.archs_per_round, 2 if self.normalize else 1)
        _int("proxy.min_memory", self.min_memory, 2)
        _int("proxy.memory_size", self.memory_size, 2, optional=True)


@dataclass(frozen=True)
class SupernetRunConfig:
    """A whole supernet training run.

    Attributes:
        dataset: The data (:class:`~evonas.data.DatasetConfig`); a relative ``root`` in a
            config file is relative to that file.
        space: The search space (``nb201``).
        supernet: Its size.
        sampler: The sampler and its parameters.
        train: The optimisation recipe.
        evaluation: Evaluation with inherited weights.
        proxy: The proxy-validation loop.
        seed: Seed of data order, augmentation, sampling and initialisation.
        checkpoint_every: Steps between checkpoints.
        log_every: Steps between ``step`` records of the run log.
        run_dir: Where the run directory goes (default ``runs/<config name>-<time>``).
        progress: Show a progress bar.
        table: NAS-Bench-201 table for ``evonas supernet rank`` (null: ``$EVONAS_NB201``);
            relative to the config file like ``dataset.root``.
    """

    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    space: str = "nb201"
    supernet: SupernetSpec = field(default_factory=SupernetSpec)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    train: SupernetTrainConfig = field(default_factory=SupernetTrainConfig)
    evaluation: SupernetEvalConfig = field(default_factory=SupernetEvalConfig)
    proxy: ProxyConfig = field(default_factory=ProxyConfig)
    seed: int = 0
    checkpoint_every: int = 200
    log_every: int = 50
    run_dir: str | None = None
    progress: bool = True
    table: str | None = None

    def __post_init__(self) -> None:
        SPACES.get(self.space)
        if self.space not in SUPPORTED_SPACES:
            raise ConfigError(f"the supernet supports space {', '.join(map(repr, SUPPORTED_SPACES))}; got {self.space!r}")
        _int("seed", self.seed, 0)
        from evonas.config import from_dict
        from evonas.supernet._samplers import SAMPLERS

        from_dict(SAMPLERS.get(self.sampler.name).Config, self.sampler.params, "sampler.params")
        _int("checkpoint_every", self.checkpoint_every, 1)
        _int("log_every", self.log_every, 1)


def resolve_paths(data: dict[str, Any], base: str | os.PathLike[str] | None) -> dict[str, Any]:
    """Make the relative ``dataset.root`` and ``table`` of a raw config absolute against ``base``."""
    if base is None:
        return data
    out = dict(data)
    dataset = out.get("dataset")
    if isinstance(dataset, dict) and isinstance(dataset.get("root"), str):
        out["dataset"] = {**dataset, "root": _absolute(dataset["root"], base)}
    if isinstance(out.get("table"), str):
        out["table"] = _absolute(out["table"], base)
    return out


def _absolute(path: str, base: str | os.PathLike[str]) -> str:
    p = Path(path).expanduser()
    return str(p if p.is_absolute() or not path else (Path(base) / p).resolve())


def resolved_dict(config: SupernetRunConfig) -> dict[str, Any]:
    """The YAML-ready form of ``config`` with the sampler's and predictor's defaults filled in."""
    from evonas.supernet._samplers import SAMPLERS
    from evonas.config import from_dict

    sampler_cls = SAMPLERS.get(config.sampler.name)
    params = to_dict(from_dict(sampler_cls.Config, config.sampler.params, "sampler.params"))
    return to_dict(replace(config, sampler=replace(config.sampler, params=params)))
