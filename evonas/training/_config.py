"""The training vocabulary shared by every trainer: optimiser, compute, recipe.

:class:`OptimConfig` (SGD with momentum, schedule end point, clipping, label smoothing)
and :class:`ComputeConfig` (device, mixed precision, memory format, CPU threads) are
composed into the standalone trainer's :class:`TrainConfig` (``train.optim``,
``train.compute``) and into the supernet's training section, so both read the same
keys with the same checks and resolve ``auto`` the same way.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Annotated, Literal

import torch
from torch import nn

from evonas.config import MAX_BATCH_SIZE, MAX_COUNT, MAX_WORKERS, Checked, Range
from evonas.errors import ConfigError
from evonas.training._device import check_device_spec, resolve_amp, resolve_channels_last, select_device


@dataclass(frozen=True)
class OptimConfig(Checked):
    """SGD with (Nesterov) momentum and weight decay, plus gradient clipping.

    The recipe of NAS-Bench-201 (Dong & Yang, ICLR 2020): Nesterov momentum 0.9, weight
    decay 5e-4 on all parameters, a cosine learning-rate decay to ``min_lr`` (Loshchilov &
    Hutter, SGDR, ICLR 2017).

    Attributes:
        lr: Initial (peak) learning rate.
        min_lr: Learning rate at the end of the cosine decay (at most ``lr``).
        momentum: SGD momentum, in ``[0, 1)``.
        nesterov: Nesterov momentum (needs ``momentum > 0``).
        weight_decay: L2 penalty on all parameters.
        grad_clip: Clip the gradients' global L2 norm to this value; null: no clipping.
        label_smoothing: Label smoothing of the training loss (Szegedy et al., CVPR 2016);
            evaluation losses are plain cross-entropy.
    """

    lr: Annotated[float, Range(0, low_open=True)] = 0.1
    min_lr: Annotated[float, Range(0)] = 0.0
    momentum: Annotated[float, Range(0, 1, high_open=True)] = 0.9
    nesterov: bool = True
    weight_decay: Annotated[float, Range(0)] = 5e-4
    grad_clip: Annotated[float | None, Range(0, low_open=True)] = None
    label_smoothing: Annotated[float, Range(0, 1, high_open=True)] = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.min_lr > self.lr:
            raise ConfigError(f"invalid value {self.min_lr!r} for 'min_lr'; expected a number <= lr ({self.lr!r})")
        if self.nesterov and self.momentum == 0:
            raise ConfigError("invalid value True for 'nesterov'; Nesterov momentum needs momentum > 0, got 0")

    def sgd(self, parameters: Iterable[nn.Parameter]) -> torch.optim.SGD:
        """The SGD optimiser of these settings over ``parameters``."""
        return torch.optim.SGD(
            parameters, lr=self.lr, momentum=self.momentum, nesterov=self.nesterov, weight_decay=self.weight_decay
        )

    def clip(self, model: nn.Module) -> None:
        """Clip the gradients of ``model`` to ``grad_clip`` (nothing when unset)."""
        if self.grad_clip is not None:
            nn.utils.clip_grad_norm_(model.parameters(), self.grad_clip)


@dataclass(frozen=True)
class ComputeConfig(Checked):
    """Where and how tensors are computed.

    Attributes:
        device: ``auto`` (CUDA when available, else the CPU), ``cpu``, ``cuda`` or ``cuda:N``.
        amp: Automatic mixed precision: ``auto`` (on for CUDA, off on the CPU), true
            (float16 with loss scaling on CUDA, bfloat16 on the CPU) or false.
        channels_last: Channels-last memory format: ``auto`` (on for CUDA and for CPUs with
            oneDNN, see :func:`~evonas.training.prefers_channels_last`), true or false.
        num_threads: torch's intra-op CPU threads while training (restored afterwards);
            null keeps torch's setting. The default 1 suits NAS-Bench-201-sized networks on
            small images, which gain little from intra-op parallelism and slow down badly
            when threads compete for shared cores; parallel evaluations use the others.
    """

    device: str = "auto"
    amp: Literal["auto"] | bool = "auto"
    channels_last: Literal["auto"] | bool = "auto"
    num_threads: Annotated[int | None, Range(1, MAX_WORKERS)] = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        check_device_spec(self.device)

    def resolve(self) -> tuple[torch.device, bool, bool]:
        """``(device, amp, channels_last)`` with every ``auto`` decided on this machine.

        Raises:
            ConfigError: The device is not available.
        """
        device = select_device(self.device)
        return device, resolve_amp(self.amp, device), resolve_channels_last(self.channels_last, device)


@dataclass(frozen=True)
class TrainConfig(Checked):
    """How to train a network from scratch (the ``train`` section).

    Attributes:
        epochs: Passes over the training split.
        batch_size: Training batch size.
        eval_batch_size: Batch size of validation and test passes.
        val_every: Evaluate on the validation split every this many epochs; the last
            epoch is always evaluated (curves hold NaN for the epochs in between). Raise
            it when only the final model matters, e.g. ensemble members.
        num_workers: DataLoader worker processes (0: load in the training process, best
            for in-memory datasets).
        optim: The optimiser (:class:`OptimConfig`).
        compute: Device, precision and threads (:class:`ComputeConfig`).

    Raises:
        ConfigError: A value is out of range; the message quotes it.
    """

    epochs: Annotated[int, Range(1, MAX_COUNT)] = 10
    batch_size: Annotated[int, Range(1, MAX_BATCH_SIZE)] = 64
    eval_batch_size: Annotated[int, Range(1, MAX_BATCH_SIZE)] = 256
    val_every: Annotated[int, Range(1, MAX_COUNT)] = 1
    num_workers: Annotated[int, Range(0, MAX_WORKERS)] = 0
    optim: OptimConfig = field(default_factory=OptimConfig)
    compute: ComputeConfig = field(default_factory=ComputeConfig)
