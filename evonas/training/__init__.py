"""Training networks from scratch: config, device choice, seeded trainer, evaluation."""

from __future__ import annotations

from evonas.training._device import DEVICE_CHOICES, prefers_channels_last, resolve_channels_last, select_device
from evonas.training._trainer import (
    CURVES,
    EvalResult,
    TrainConfig,
    TrainResult,
    evaluate_model,
    seeded_model,
    train_model,
)

__all__ = [
    "CURVES",
    "DEVICE_CHOICES",
    "EvalResult",
    "TrainConfig",
    "TrainResult",
    "evaluate_model",
    "prefers_channels_last",
    "resolve_channels_last",
    "seeded_model",
    "select_device",
    "train_model",
]
