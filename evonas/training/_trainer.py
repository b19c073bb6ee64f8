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
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
from torch import nn
from torch.utils.data import DataLoader

from evonas.data import DataSplits
from evonas.errors import ConfigError
from evonas.models import count_parameters
from evonas.training._config import TrainConfig
from evonas.training._device import amp_dtype, select_device

M = TypeVar("M", bound=nn.Module)


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
        diverged: The training loss, or the loss of the trained network on the validation
            or test split, became NaN or infinite (training stopped when it was noticed).
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

    def metrics(self) -> dict[str, float]:
        """The metrics of a trained network, as evaluators report them (see :data:`TRAIN_METRICS`)."""
        return {
            "val_acc": self.val_acc,
            "val_loss": self.val_loss,
            "test_acc": self.test_acc,
            "test_loss": self.test_loss,
            "train_acc": self.train_acc,
            "params_M": self.num_params / 1e6,
        }

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

TRAIN_METRICS: tuple[str, ...] = ("val_acc", "val_loss", "test_acc", "test_loss", "train_acc", "params_M")
"""What :meth:`TrainResult.metrics` reports: accuracies in percent, cross-entropy losses,
parameters in millions."""


def seeded_model(factory: Callable[[], M], seed: int) -> M:
    """Build a model with its weight initialisation seeded by ``seed``.

    ``factory`` runs inside ``torch.random.fork_rng`` with the CPU generator seeded, so the
    initial weights depend on ``seed`` only and the global torch state is left unchanged.
    Build on the CPU; move the model afterwards.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return factory()


def weights_finite(model: nn.Module) -> bool:
    """Whether every parameter of ``model`` is finite (a diverged network's are not)."""
    return all(bool(torch.isfinite(p).all()) for p in model.parameters())


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
    try:
        return evaluate_batches(model, loader, dev, amp=amp, channels_last=channels_last, return_logits=return_logits)
    finally:
        model.train(was_training)


def evaluate_batches(
    forward: Callable[[torch.Tensor], torch.Tensor],
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    device: torch.device,
    *,
    amp: bool = False,
    channels_last: bool = False,
    return_logits: bool = False,
) -> EvalResult:
    """The evaluation loop: summed cross-entropy and correct predictions over ``batches``.

    The caller sets the mode of whatever ``forward`` runs (:func:`evaluate_model` does it
    for a module; the supernet evaluator passes one path of its supernet).

    Args:
        forward: Maps an input batch to logits.
        batches: ``(x, y)`` pairs (a DataLoader or fixed tensors).
        device: Where to compute.
        amp: Autocast the forward pass (float16 on CUDA, bfloat16 on the CPU).
        channels_last: Feed channels-last inputs.
        return_logits: Also return the logits and labels (on the CPU).

    Shapes:
        ``x``: ``(B, C, H, W)``; ``y``: ``(B,)``; logits ``(B, num_classes)``.
    """
    total_loss = torch.zeros((), dtype=torch.float64, device=device)
    correct = torch.zeros((), dtype=torch.int64, device=device)
    count = 0
    all_logits: list[torch.Tensor] = []
    all_targets: list[torch.Tensor] = []
    with torch.inference_mode():
        for x, y in batches:
            x, y = _to_device(x, y, device, channels_last)
            with torch.autocast(device.type, dtype=amp_dtype(device), enabled=amp):
                logits = forward(x)
            logits = logits.float()
            total_loss += nn.functional.cross_entropy(logits, y, reduction="sum").double()
            correct += (logits.argmax(dim=1) == y).sum()
            count += int(y.shape[0])
            if return_logits:
                all_logits.append(logits.cpu())
                all_targets.append(y.cpu())
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
    device, use_amp, use_cl = config.compute.resolve()
    threads = torch.get_num_threads()
    if config.compute.num_threads is not None:
        torch.set_num_threads(config.compute.num_threads)
    try:
        return _train(model, splits, config, seed, progress, device, use_amp, use_cl, start, return_logits)
    finally:
        torch.set_num_threads(threads)


def _train(
    model: nn.Module,
    splits: DataSplits,
    config: TrainConfig,
    seed: int,
    progress: bool,
    device: torch.device,
    use_amp: bool,
    use_cl: bool,
    start: float,
    return_logits: bool = False,
) -> TrainResult:
    pin = device.type == "cuda"
    model.to(device)
    if use_cl:
        model.to(memory_format=torch.channels_last)
    workers = config.num_workers
    train_loader = splits.loader("train", config.batch_size, seed=seed, num_workers=workers, pin_memory=pin)
    val_loader = splits.loader("val", config.eval_batch_size, shuffle=False, num_workers=workers, pin_memory=pin)
    test_loader = splits.loader("test", config.eval_batch_size, shuffle=False, num_workers=workers, pin_memory=pin)
    steps_per_epoch = len(train_loader)
    if steps_per_epoch == 0:
        raise ConfigError(f"training split of {splits.name!r} is empty; nothing to train on")

    optimizer = config.optim.sgd(model.parameters())
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=config.epochs * steps_per_epoch, eta_min=config.optim.min_lr
    )
    scaler = torch.amp.GradScaler(device.type, enabled=use_amp and device.type == "cuda")
    criterion = nn.CrossEntropyLoss(label_smoothing=config.optim.label_smoothing)
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
                with torch.autocast(device.type, dtype=amp_dtype(device), enabled=use_amp):
                    logits = model(x)
                    loss = criterion(logits, y)
                scaler.scale(loss).backward()
                if config.optim.grad_clip is not None:
                    scaler.unscale_(optimizer)
                    config.optim.clip(model)
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
                # a network whose outputs are no longer finite has diverged, whatever its training loss
                diverged = diverged or (val.num_samples > 0 and not math.isfinite(val.loss))
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
    diverged = diverged or (test.num_samples > 0 and not math.isfinite(test.loss))
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
