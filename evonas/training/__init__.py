"""Training networks from scratch: configs, device choice, seeded trainer, evaluation loop."""

from __future__ import annotations

from evonas.training._config import ComputeConfig, OptimConfig, TrainConfig
from evonas.training._device import (
    DEVICE_CHOICES,
    amp_dtype,
    check_device_spec,
    prefers_channels_last,
    resolve_amp,
    resolve_channels_last,
    select_device,
)
from evonas.training._trainer import (
    CURVES,
    TRAIN_METRICS,
    EvalResult,
    TrainResult,
    evaluate_batches,
    evaluate_model,
    seeded_model,
    weights_finite,
    train_model,
)

__all__ = [
    "CURVES",
    "TRAIN_METRICS",
    "DEVICE_CHOICES",
    "ComputeConfig",
    "EvalResult",
    "OptimConfig",
    "TrainConfig",
    "TrainResult",
    "amp_dtype",
    "check_device_spec",
    "evaluate_batches",
    "evaluate_model",
    "prefers_channels_last",
    "resolve_amp",
    "resolve_channels_last",
    "seeded_model",
    "weights_finite",
    "select_device",
    "train_model",
]
