"""Training ensemble members from scratch, as tasks any executor can run.

:class:`MemberTrainer` is an executor :class:`~evonas.executors.Worker`:
``run(arch, seed)`` builds the candidate's network with the configured decoder
(:func:`evonas.models.build_network`), trains it with :func:`evonas.training.train_model`
and returns a :class:`MemberResult` - metrics, the logits on the validation and test
splits, the labels they belong to, and the trained weights as ``torch.save`` bytes. The
serial executor runs it in-process and :class:`~evonas.executors.RayExecutor` as Ray
tasks, with GPUs when ``gpus_per_eval`` reserves them. A task never writes files itself,
so it works the same on a multi-node cluster whose workers do not share the driver's
file system; the driver turns each result into a :class:`~ensembles.Member`
(:func:`member_from_result`) and saves it.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ensembles._members import Member
from evonas._json import jsonable
from evonas.config import ComponentConfig
from evonas.data import DatasetConfig, cached_splits
from evonas.errors import DataError
from evonas.models import build_network, check_decoder
from evonas.spaces import Arch, SearchSpace
from evonas.training import TRAIN_METRICS, EvalResult, TrainConfig, seeded_model, train_model

CHECKPOINT_FILE = "model.pt"
"""Name of a member's checkpoint (its ``state_dict``) inside its directory."""

METRIC_NAMES = TRAIN_METRICS
"""The metrics of a :class:`MemberResult` (accuracies in percent, losses cross-entropy,
``params_M`` parameters in millions)."""


@dataclass(frozen=True, eq=False)
class MemberResult:
    """What training one candidate produced (the value of a :class:`MemberTrainer` task).

    Attributes:
        metrics: :data:`METRIC_NAMES` to values.
        val_logits: Final logits on the validation split, float32, in split order.
        test_logits: The same on the test split.
        val_labels: The validation labels, in the same order, int64.
        test_labels: The test labels, int64.
        state_dict: ``torch.save`` bytes of the trained weights, on the CPU.
        num_params: Parameters of the network.
        epochs: Epochs run (fewer than configured when training diverged).
        diverged: The training loss became NaN or infinite; training stopped.
        train_loss: Training loss of the last epoch run.
        device: The device trained on.
        seconds: Wall time of training and evaluation.
        curves: Per-epoch training curves (see :class:`evonas.training.TrainResult`).

    Shapes:
        val_logits: ``(N_val, C)``; test_logits: ``(N_test, C)``; val_labels: ``(N_val,)``;
        test_labels: ``(N_test,)``.
    """

    metrics: dict[str, float]
    val_logits: np.ndarray
    test_logits: np.ndarray
    val_labels: np.ndarray
    test_labels: np.ndarray
    state_dict: bytes
    num_params: int
    epochs: int
    diverged: bool
    train_loss: float
    device: str
    seconds: float
    curves: dict[str, list[float]]


class MemberFailure(Exception):
    """A trained candidate that cannot join the pool: its training diverged, its logits
    are not finite, or its worker loaded other data than the driver."""


def _state_bytes(model: torch.nn.Module) -> bytes:
    buffer = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, buffer)
    return buffer.getvalue()


def _logits_and_labels(result: EvalResult | None, split: str) -> tuple[np.ndarray, np.ndarray]:
    if result is None or result.logits is None or result.targets is None:
        # train_model keeps both whenever it is asked to return logits.
        raise RuntimeError(f"training returned no {split} logits")
    return result.logits.numpy().astype(np.float32), result.targets.numpy().astype(np.int64)


class MemberTrainer:
    """Train one candidate network from scratch; an executor worker.

    ``run(arch, seed)`` seeds the initialisation, shuffling and augmentation with
    ``seed``; on the CPU the same ``(arch, seed)`` gives the same member. The trainer is a
    small picklable value (the data loads once per process, on first use).

    Args:
        space: The search space of the architectures.
        dataset: The data; loaded once per process (:func:`evonas.data.cached_splits`).
        train: The training recipe.
        network: The decoder and its parameters (default: NAS-Bench-201's network).

    Raises:
        CapabilityError: The decoder builds networks of another space.
    """

    def __init__(
        self,
        space: SearchSpace,
        dataset: DatasetConfig,
        train: TrainConfig,
        network: ComponentConfig | None = None,
    ) -> None:
        self.space = space
        self.dataset = dataset
        self.train = train
        self.network = ComponentConfig("nb201") if network is None else network
        check_decoder(self.network, space)

    def run(self, arch: Arch, seed: int) -> MemberResult:
        """Train ``arch`` with ``seed``; return its metrics, logits, labels and weights."""
        arch = self.space.validate(arch)
        splits = cached_splits(self.dataset)
        model = seeded_model(
            lambda: build_network(self.network, self.space, arch, splits.num_classes, splits.in_channels), seed
        )
        # The final validation and test passes of training keep their logits: no second pass.
        result = train_model(model, splits, self.train, seed, return_logits=True)
        val_logits, val_labels = _logits_and_labels(result.val_eval, "validation")
        test_logits, test_labels = _logits_and_labels(result.test_eval, "test")
        return MemberResult(
            metrics=result.metrics(),
            val_logits=val_logits,
            test_logits=test_logits,
            val_labels=val_labels,
            test_labels=test_labels,
            state_dict=_state_bytes(model),
            num_params=int(result.num_params),
            epochs=int(result.epochs),
            diverged=bool(result.diverged),
            train_loss=float(result.train_loss),
            device=result.device,
            seconds=float(result.wall_time_s),
            curves={k: [float(v) for v in values] for k, values in result.curves.items()},
        )

    def __repr__(self) -> str:
        return (
            f"MemberTrainer(space={self.space!r}, dataset={self.dataset!r}, train={self.train!r}, "
            f"network={self.network!r})"
        )


def member_from_result(
    name: str,
    arch: Arch,
    seed: int,
    result: MemberResult,
    val_labels: np.ndarray,
    test_labels: np.ndarray,
    space: ComponentConfig,
    network: ComponentConfig,
    in_channels: int,
) -> Member:
    """The :class:`Member` of a :class:`MemberTrainer` result.

    Args:
        name: The member's name.
        arch: Its architecture.
        seed: Its training seed (recorded).
        result: The trainer's result.
        val_labels: The validation labels the driver holds; the task's must be equal.
        test_labels: The same for the test split.
        space: The space section of the build (recorded with the member).
        network: The decoder section of the build (recorded, so that
            :func:`load_member_model` can rebuild the network).
        in_channels: Image channels of the data (recorded likewise).

    Raises:
        MemberFailure: Training diverged, the logits are not finite, or the task's labels
            differ from the driver's (the worker loaded other data, e.g. another file on
            another node).
    """
    if result.diverged:
        raise MemberFailure(f"training diverged: the loss became {result.train_loss!r} in epoch {result.epochs}")
    for split, logits in (("validation", result.val_logits), ("test", result.test_logits)):
        if not np.isfinite(logits).all():
            raise MemberFailure(f"its {split} logits are not finite")
    for split, got, expected in (("val", result.val_labels, val_labels), ("test", result.test_labels, test_labels)):
        if got.shape != expected.shape or not np.array_equal(got, expected):
            raise MemberFailure(
                f"the worker's {split} labels (shape {got.shape}) differ from the driver's "
                f"(shape {expected.shape}); both must load the same dataset"
            )
    return Member(
        name=name,
        val_logits=result.val_logits,
        test_logits=result.test_logits,
        arch=tuple(arch),
        space=space,
        network=network,
        num_params=result.num_params,
        in_channels=in_channels,
        checkpoint=CHECKPOINT_FILE,
        metadata={
            "seed": int(seed),
            "metrics": jsonable(result.metrics),
            "train_time_s": result.seconds,
            "epochs": result.epochs,
            "device": result.device,
            "curves": jsonable(result.curves),
        },
    )


def load_member_model(directory: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> torch.nn.Module:
    """Rebuild a saved member's trained network from its directory, without retraining.

    Reads ``member.yaml`` (space, decoder, architecture, input channels) and builds the
    network with the recorded decoder (:func:`evonas.models.build_network`), then loads
    the checkpoint (``model.pt``, a ``state_dict``).

    Args:
        directory: A member directory written by an ensemble build.
        map_location: Where to load the weights.

    Returns:
        The network in eval mode.

    Raises:
        DataError: The member, its network record or its checkpoint is missing or malformed.
        UnknownChoiceError: The recorded space or decoder is not registered (load its plugin).
    """
    path = Path(directory)
    member = Member.load(path)
    if member.arch is None or member.network is None or member.in_channels is None:
        raise DataError(f"{path} does not record the architecture, the network decoder and the input channels")
    checkpoint = Path(member.checkpoint or CHECKPOINT_FILE)
    if not checkpoint.is_absolute():
        checkpoint = path / checkpoint
    if not checkpoint.is_file():
        raise DataError(f"checkpoint {str(checkpoint)!r} of member {member.name!r} does not exist")
    model = build_network(member.network, member.built_space(), member.arch, member.num_classes, member.in_channels)
    try:
        state = torch.load(checkpoint, map_location=map_location, weights_only=True)
        model.load_state_dict(state)
    except (RuntimeError, OSError, EOFError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"cannot load checkpoint {str(checkpoint)!r}: {first}") from None
    return model.eval()


__all__ = [
    "CHECKPOINT_FILE",
    "METRIC_NAMES",
    "MemberFailure",
    "MemberResult",
    "MemberTrainer",
    "load_member_model",
    "member_from_result",
]
