"""Training a network from scratch and evaluating it, reproducibly.

The recipe is NAS-Bench-201's (Dong & Yang, ICLR 2020): SGD with Nesterov momentum 0.9,
weight decay 5e-4 on all parameters, cross-entropy, and a cosine learning-rate schedule
decaying from ``lr`` to ``min_lr`` (Loshchilov & Hutter, SGDR, ICLR 2017). The schedule is
stepped after every optimiser step (not every epoch), so it is smooth also for short runs.

Every random draw derives from the ``seed`` argument: shuffling and augmentation use
generators seeded from it (see :meth:`evonas.data.DataSplits.loader`), and the run
executes inside ``torch.random.fork_rng`` seeded with it, so the global torch state is
neither read nor changed. On the CPU the same seed gives identical curves. On CUDA,
training uses automatic mixed precision and channels-last tensors by default.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import torch
from torch import nn
from torch.utils.data import DataLoader

from evonas.data import DataSplits
from evonas.errors import ConfigError
from evonas.models import count_parameters
from evonas.training._device import check_device_spec, resolve_channels_last, select_device

M = TypeVar("M", bound=nn.Module)


@dataclass(frozen=True)
class TrainConfig:
    """How to train a network from scratch.

    Attributes:
        epochs: Passes over the training split.
        batch_size: Training batch size.
        lr: Initial learning rate.
        momentum: SGD momentum.
        nesterov: Nesterov momentum (needs ``momentum > 0``).
        weight_decay: L2 penalty on all parameters.
        min_lr: Learning rate at the end of the cosine schedule.
        grad_clip: Clip the gradients' global L2 norm to this value; None: no clipping.
        label_smoothing: Label smoothing of the training loss (Szegedy et al., CVPR 2016);
            evaluation losses are plain cross-entropy.
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        amp: Automatic mixed precision: ``"auto"`` (on for CUDA, off on the CPU), true
            (float16 with loss scaling on CUDA, bfloat16 on the CPU) or false.
        channels_last: Channels-last memory format: ``"auto"`` (on for CUDA and for CPUs with
            oneDNN, see :func:`~evonas.training.prefers_channels_last`), true or false.
        num_workers: DataLoader worker processes (0: load in the training process, best
            for in-memory datasets).
        eval_batch_size: Batch size of validation and test passes.
        val_every: Evaluate on the validation split every this many epochs; the last
            epoch is always evaluated (curves hold NaN for the epochs in between). Raise
            it when only the final model matters, e.g. ensemble members.
        num_threads: torch's intra-op CPU threads while training (restored afterwards);
            None keeps torch's setting (all cores). The default 1 suits NAS-Bench-201-sized
            networks on small images, which gain little from intra-op parallelism and slow
            down by an order of magnitude when threads compete for shared cores; parallel
            evaluations (Ray) use the other cores.

    Raises:
        ConfigError: A value is out of range; the message quotes it.
    """

    epochs: int = 10
    batch_size: int = 64
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    min_lr: float = 0.0
    grad_clip: float | None = None
    label_smoothing: float = 0.0
    device: str = "auto"
    amp: Literal["auto"] | bool = "auto"
    channels_last: Literal["auto"] | bool = "auto"
    num_workers: int = 0
    eval_batch_size: int = 256
    val_every: int = 1
    num_threads: int | None = 1

    def __post_init__(self) -> None:
        for key in ("epochs", "batch_size", "eval_batch_size", "val_every"):
            _check_int(key, getattr(self, key), minimum=1)
        _check_int("num_workers", self.num_workers, minimum=0)
        if self.num_threads is not None:
            _check_int("num_threads", self.num_threads, minimum=1)
        for key in ("lr", "momentum", "weight_decay", "min_lr", "label_smoothing"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ConfigError(f"train.{key} must be a finite number; got {value!r}")
        if self.lr <= 0:
            raise ConfigError(f"train.lr must be positive; got {self.lr!r}")
        if not 0 <= self.momentum < 1:
            raise ConfigError(f"train.momentum must be in [0, 1); got {self.momentum!r}")
        if self.nesterov and self.momentum == 0:
            raise ConfigError("train.nesterov needs a positive train.momentum; got momentum 0")
        if self.weight_decay < 0:
            raise ConfigError(f"train.weight_decay must be non-negative; got {self.weight_decay!r}")
        if not 0 <= self.min_lr <= self.lr:
            raise ConfigError(f"train.min_lr must be in [0, lr={self.lr}]; got {self.min_lr!r}")
        if self.grad_clip is not None and (
            isinstance(self.grad_clip, bool) or not isinstance(self.grad_clip, (int, float)) or not self.grad_clip > 0
        ):
            raise ConfigError(f"train.grad_clip must be a positive number or unset; got {self.grad_clip!r}")
        if not 0 <= self.label_smoothing < 1:
            raise ConfigError(f"train.label_smoothing must be in [0, 1); got {self.label_smoothing!r}")
        try:
            check_device_spec(self.device)
        except ConfigError as exc:
            raise ConfigError(f"train.device: {exc}") from None
        for key in ("amp", "channels_last", "nesterov"):
            value = getattr(self, key)
            if not (isinstance(value, bool) or (key != "nesterov" and value == "auto")):
                valid = "true, false" if key == "nesterov" else "'auto', true, false"
                raise ConfigError(f"invalid value {value!r} for train.{key}; valid values: {valid}")


def _check_int(key: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        kind = "a positive" if minimum == 1 else "a non-negative"
        unset = " or unset" if key == "num_threads" else ""
        raise ConfigError(f"train.{key} must be {kind} integer{unset}; got {value!r}")


@dataclass(frozen=True, eq=False)
class EvalResult:
    """Loss and accuracy of a model on one data split.

    Attributes:
        loss: Mean cross-entropy (NaN for an empty split).
        acc: Top-1 accuracy in percent (NaN for an empty split).
        num_samples: Samples evaluated.
        logits: With ``return_logits``: float32 logits on the CPU, in loader order.
            Shapes: ``(num_samples, num_classes)``.
        targets: With ``return_logits``: the labels, in the same order. Shapes: ``(num_samples,)``.
    """

    loss: float
    acc: float
    num_samples: int
    logits: torch.Tensor | None = None
    targets: torch.Tensor | None = None


@dataclass(frozen=True)
class TrainResult:
    """The outcome of :func:`train_model`.

    Attributes:
        curves: Per-epoch lists ``train_loss``, ``train_acc`` (running values over the
            epoch, on augmented data), ``val_loss``, ``val_acc`` (after the epoch; NaN when
            there is no validation split or the epoch was skipped by ``val_every``) and
            ``lr`` (at the epoch's first step).
        train_loss: Training loss of the last epoch.
        train_acc: Training accuracy of the last epoch, in percent.
        val_loss: Validation loss after the last epoch.
        val_acc: Validation accuracy after the last epoch, in percent.
        test_loss: Test loss of the final model.
        test_acc: Test accuracy of the final model, in percent.
        epochs: Epochs run (fewer than configured when the loss diverged).
        diverged: The training loss became NaN or infinite; training stopped.
        wall_time_s: Wall-clock seconds of training and evaluation.
        num_params: Parameters of the model.
        device: The device trained on, e.g. ``"cpu"`` or ``"cuda:0"``.
        val_eval: The final validation pass (with logits and labels when
            :func:`train_model` was asked for them), or None.
        test_eval: The same for the test pass.
    """

    curves: dict[str, list[float]]
    train_loss: float
    train_acc: float
    val_loss: float
    val_acc: float
    test_loss: float
    test_acc: float
    epochs: int
    diverged: bool
    wall_time_s: float
    num_params: int
    device: str
    val_eval: EvalResult | None = None
    test_eval: EvalResult | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of all fields."""
        return {
            "curves": {k: list(v) for k, v in self.curves.items()},
            **{k: getattr(self, k) for k in (
                "train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc",
                "epochs", "diverged", "wall_time_s", "num_params", "device",
            )},
        }


CURVES = ("train_loss", "train_acc", "val_loss", "val_acc", "lr")


def seeded_model(factory: Callable[[], M], seed: int) -> M:
    """Build a model with its weight initialisation seeded by ``seed``.

    ``factory`` runs inside ``torch.random.fork_rng`` with the CPU generator seeded, so the
    initial weights depend on ``seed`` only and the global torch state is left unchanged.
    Build on the CPU; move the model afterwards.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return factory()


def _resolve(flag: Literal["auto"] | bool, device: torch.device) -> bool:
    return device.type == "cuda" if flag == "auto" else bool(flag)


def _amp_dtype(device: torch.device) -> torch.dtype:
    return torch.float16 if device.type == "cuda" else torch.bfloat16


def evaluate_model(
    model: nn.Module,
    loader: DataLoader,
    device: str | torch.device | None = None,
    *,
    amp: bool = False,
    channels_last: bool = False,
    return_logits: bool = False,
) -> EvalResult:
    """Cross-entropy loss and accuracy of ``model`` over ``loader``, in eval mode.

    The model's train/eval mode is restored afterwards.

    Args:
        model: A classifier returning logits.
        loader: Yields ``(x, y)`` batches.
        device: Where to compute; default: the device of the model's parameters.
        amp: Autocast the forward pass (float16 on CUDA, bfloat16 on the CPU).
        channels_last: Feed channels-last inputs.
        return_logits: Also return the logits and labels (on the CPU).

    Shapes:
        ``x``: ``(B, C, H, W)``; ``y``: ``(B,)``; logits ``(B, num_classes)``.
    """
    if device is None:
        first = next(model.parameters(), None)
        dev = first.device if first is not None else torch.device("cpu")
    else:
        dev = select_device(device) if isinstance(device, str) else torch.device(device)
    was_training = model.training
    model.eval()
    total_loss = torch.zeros((), dtype=torch.float64, device=dev)
    correct = torch.zeros((), dtype=torch.int64, device=dev)
    count = 0
    all_logits: list[torch.Tensor] = []
    all_targets: list[torch.Tensor] = []
    try:
        with torch.inference_mode():
            for x, y in loader:
                x, y = _to_device(x, y, dev, channels_last)
                with torch.autocast(dev.type, dtype=_amp_dtype(dev), enabled=amp):
                    logits = model(x)
                logits = logits.float()
                total_loss += nn.functional.cross_entropy(logits, y, reduction="sum").double()
                correct += (logits.argmax(dim=1) == y).sum()
                count += int(y.shape[0])
                if return_logits:
                    all_logits.append(logits.cpu())
                    all_targets.append(y.cpu())
    finally:
        model.train(was_training)
    if count == 0:
        loss = acc = float("nan")
    else:
        loss = float(total_loss) / count
        acc = 100.0 * float(correct) / count
    if return_logits:
        num_classes = all_logits[0].shape[1] if all_logits else 0
        return EvalResult(
            loss, acc, count,
            torch.cat(all_logits) if all_logits else torch.empty(0, num_classes),
            torch.cat(all_targets) if all_targets else torch.empty(0, dtype=torch.int64),
        )
    return EvalResult(loss, acc, count)


def _to_device(
    x: torch.Tensor, y: torch.Tensor, device: torch.device, channels_last: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    x = x.to(device, non_blocking=True)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x, y.to(device, non_blocking=True)


def train_model(
    model: nn.Module,
    splits: DataSplits,
    config: TrainConfig,
    seed: int,
    progress: bool = False,
    return_logits: bool = False,
) -> TrainResult:
    """Train ``model`` in place on ``splits.train``; evaluate on ``val`` every epoch and on ``test`` at the end.

    See the module docstring for the recipe and the seeding. The model is moved to the
    configured device (and to channels-last when enabled) and left there in eval mode.

    Args:
        model: A classifier returning logits, with freshly initialised weights (see
            :func:`seeded_model`).
        splits: The data (:func:`evonas.data.load_dataset`).
        config: Optimiser, schedule and device settings.
        seed: Seed of shuffling, augmentation and any other random draw during training.
        progress: Show a tqdm bar over epochs.
        return_logits: Keep the logits and labels of the final validation and test passes
            in ``val_eval`` and ``test_eval`` (saves a second pass when they are needed).

    Raises:
        ConfigError: The configured device is not available.
    """
    start = time.perf_counter()
    device = select_device(config.device)
    threads = torch.get_num_threads()
    if config.num_threads is not None:
        torch.set_num_threads(config.num_threads)
    try:
        return _train(model, splits, config, seed, progress, device, start, return_logits)
    finally:
        torch.set_num_threads(threads)


def _train(
    model: nn.Module,
    splits: DataSplits,
    config: TrainConfig,
    seed: int,
    progress: bool,
    device: torch.device,
    start: float,
    return_logits: bool = False,
) -> TrainResult:
    use_amp = _resolve(config.amp, device)
    use_cl = resolve_channels_last(config.channels_last, device)
    pin = device.type == "cuda"
    model.to(device)
    if use_cl:
        model.to(memory_format=torch.channels_last)
    loader_args = dict(num_workers=config.num_workers, pin_memory=pin)
    train_loader = splits.loader("train", config.batch_size, seed=seed, **loader_args)
    val_loader = splits.loader("val", config.eval_batch_size, shuffle=False, **loader_args)
    test_loader = splits.loader("test", config.eval_batch_size, shuffle=False, **loader_args)
    steps_per_epoch = len(train_loader)
    if steps_per_epoch == 0:
        raise ConfigError(f"training split of {splits.name!r} is empty; nothing to train on")

    optimizer = torch.optim.SGD(
        model.parameters(), lr=config.lr, momentum=config.momentum,
        nesterov=config.nesterov, weight_decay=config.weight_decay,
    )
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=config.epochs * steps_per_epoch, eta_min=config.min_lr
    )
    scaler = torch.amp.GradScaler(device.type, enabled=use_amp and device.type == "cuda")
    criterion = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    curves: dict[str, list[float]] = {k: [] for k in CURVES}
    evaluate = dict(amp=use_amp, channels_last=use_cl)
    diverged = False
    val = None

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=config.epochs, desc="train", unit="epoch")
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        for epoch in range(1, config.epochs + 1):
            curves["lr"].append(optimizer.param_groups[0]["lr"])
            model.train()
            total_loss = torch.zeros((), dtype=torch.float64, device=device)
            correct = torch.zeros((), dtype=torch.int64, device=device)
            count = 0
            for x, y in train_loader:
                x, y = _to_device(x, y, device, use_cl)
                optimizer.zero_grad(set_to_none=True)
                with torch.autocast(device.type, dtype=_amp_dtype(device), enabled=use_amp):
                    logits = model(x)
                    loss = criterion(logits, y)
                scaler.scale(loss).backward()
                if config.grad_clip is not None:
                    scaler.unscale_(optimizer)
                    nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
                scaler.step(optimizer)
                scaler.update()
                scheduler.step()
                n = int(y.shape[0])
                total_loss += loss.detach().double() * n
                correct += (logits.detach().argmax(dim=1) == y).sum()
                count += n
            train_loss = float(total_loss) / count
            curves["train_loss"].append(train_loss)
            curves["train_acc"].append(100.0 * float(correct) / count)
            diverged = not math.isfinite(train_loss)
            last = diverged or epoch == config.epochs
            if last or epoch % config.val_every == 0:
                val = evaluate_model(model, val_loader, device, return_logits=return_logits and last, **evaluate)
                curves["val_loss"].append(val.loss)
                curves["val_acc"].append(val.acc)
            else:
                curves["val_loss"].append(float("nan"))
                curves["val_acc"].append(float("nan"))
            if bar is not None:
                bar.set_postfix(loss=f"{train_loss:.3f}", val_acc=f"{curves['val_acc'][-1]:.2f}")
                bar.update(1)
            if diverged:
                break
    if bar is not None:
        bar.close()
    test = evaluate_model(model, test_loader, device, return_logits=return_logits, **evaluate)
    model.eval()
    return TrainResult(
        curves=curves,
        train_loss=curves["train_loss"][-1],
        train_acc=curves["train_acc"][-1],
        val_loss=curves["val_loss"][-1],
        val_acc=curves["val_acc"][-1],
        test_loss=test.loss,
        test_acc=test.acc,
        epochs=len(curves["train_loss"]),
        diverged=diverged,
        wall_time_s=time.perf_counter() - start,
        num_params=count_parameters(model),
        device=str(device),
        val_eval=val,
        test_eval=test,
    )
