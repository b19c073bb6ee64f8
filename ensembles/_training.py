"""Training ensemble members from scratch, as evaluator tasks any executor can run.

:class:`MemberTrainer` has the evaluator interface (``evaluate(arch, seed)``), so the
serial executor runs it in-process and :class:`~evonas.executors.RayExecutor` runs it as
Ray tasks, with GPUs when ``gpus_per_eval`` reserves them. A task returns everything the
driver needs inside the :class:`~evonas.evaluation.Evaluation` - the logits on the
validation and test splits, the labels they belong to, and the trained weights as
``torch.save`` bytes - and never writes files itself, so it works the same on a
multi-node cluster whose workers do not share the driver's file system.
"""

from __future__ import annotations

import io
import math
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ensembles._members import Member
from evonas.data import DatasetConfig, DataSplits
from evonas.errors import ConfigError, DataError
from evonas.evaluation import Evaluation
from evonas.models import NB201Network
from evonas.spaces import Arch, NB201Space
from evonas.training import TrainConfig, seeded_model, train_model

CHECKPOINT_FILE = "model.pt"
"""Name of a member's checkpoint (its ``state_dict``) inside its directory."""

METRIC_NAMES: tuple[str, ...] = ("val_acc", "val_loss", "test_acc", "test_loss", "train_acc", "params")


@lru_cache(maxsize=2)
def _load_splits(config: DatasetConfig) -> DataSplits:
    # Once per worker process: a Ray worker trains many members on the same data.
    return config.load()


def _state_bytes(model: torch.nn.Module) -> bytes:
    buffer = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, buffer)
    return buffer.getvalue()


class MemberTrainer:
    """Train one candidate network from scratch and return its logits and weights.

    The network is NAS-Bench-201's (:class:`~evonas.models.NB201Network`) with ``C``
    channels and ``N`` cells per stage, trained by :func:`evonas.training.train_model`.
    ``evaluate(arch, seed)`` seeds the initialisation, shuffling and augmentation with
    ``seed``; on the CPU the same ``(arch, seed)`` gives the same member.

    Args:
        dataset: The data; loaded once per process on first use.
        train: The training recipe.
        channels: ``C`` of the network.
        cells_per_stage: ``N`` of the network.

    Attributes:
        metric_names: ``val_acc``, ``val_loss``, ``test_acc``, ``test_loss``,
            ``train_acc`` (percent / cross-entropy) and ``params``.

    The evaluation's ``info`` holds ``val_logits`` and ``test_logits`` (float32 arrays,
    shapes ``(N_val, C)`` and ``(N_test, C)``), ``val_labels`` and ``test_labels``
    (int64 arrays in the same order), ``state_dict`` (``torch.save`` bytes of the
    trained weights on the CPU), ``num_params``, ``epochs``, ``diverged``, ``device``
    and the per-epoch ``curves``.
    """

    metric_names: tuple[str, ...] = METRIC_NAMES

    def __init__(
        self,
        dataset: DatasetConfig,
        train: TrainConfig,
        channels: int = 16,
        cells_per_stage: int = 5,
    ) -> None:
        for key, value in (("channels", channels), ("cells_per_stage", cells_per_stage)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{key} must be a positive integer; got {value!r}")
        self.dataset = dataset
        self.train = train
        self.channels = channels
        self.cells_per_stage = cells_per_stage
        self.space = NB201Space()

    def build_network(self, arch: Arch, num_classes: int, in_channels: int, seed: int) -> NB201Network:
        """The untrained network of ``arch``, its initialisation seeded by ``seed``."""
        arch = self.space.validate(arch)
        return seeded_model(
            lambda: NB201Network(
                arch, C=self.channels, N=self.cells_per_stage, num_classes=num_classes, in_channels=in_channels
            ),
            seed,
        )

    def evaluate(self, arch: Arch, seed: int) -> Evaluation:
        """Train ``arch`` with ``seed``; return metrics, logits, labels and weights."""
        arch = self.space.validate(arch)
        splits = _load_splits(self.dataset)
        model = self.build_network(arch, splits.num_classes, splits.in_channels, seed)
        # The final validation and test passes of training keep their logits: no second pass.
        result = train_model(model, splits, self.train, seed, return_logits=True)
        val, test = result.val_eval, result.test_eval
        assert val is not None and test is not None and val.logits is not None and test.logits is not None
        return Evaluation(
            metrics={
                "val_acc": val.acc,
                "val_loss": val.loss,
                "test_acc": test.acc,
                "test_loss": test.loss,
                "train_acc": result.train_acc,
                "params": float(result.num_params),
            },
            cost=result.wall_time_s,
            info={
                "val_logits": val.logits.numpy().astype(np.float32),
                "test_logits": test.logits.numpy().astype(np.float32),
                "val_labels": val.targets.numpy().astype(np.int64),
                "test_labels": test.targets.numpy().astype(np.int64),
                "state_dict": _state_bytes(model),
                "num_params": int(result.num_params),
                "epochs": int(result.epochs),
                "diverged": bool(result.diverged),
                "device": result.device,
                "curves": {k: [float(v) for v in vals] for k, vals in result.curves.items()},
            },
        )

    def __repr__(self) -> str:
        return (
            f"MemberTrainer(dataset={self.dataset!r}, train={self.train!r}, "
            f"channels={self.channels}, cells_per_stage={self.cells_per_stage})"
        )


def member_from_evaluation(
    name: str,
    arch: Arch,
    seed: int,
    evaluation: Evaluation,
    val_labels: np.ndarray,
    test_labels: np.ndarray,
    network: dict[str, int],
) -> Member:
    """The :class:`Member` of a successful :class:`MemberTrainer` evaluation.

    Args:
        name: The member's name.
        arch: Its architecture.
        seed: Its training seed (recorded).
        evaluation: The trainer's result.
        val_labels: The validation labels the driver holds; the task's must be equal.
        test_labels: The same for the test split.
        network: ``channels``, ``cells_per_stage``, ``num_classes``, ``in_channels``,
            recorded so :func:`load_member_model` can rebuild the network.

    Raises:
        DataError: The evaluation failed, diverged, or its labels differ from the
            driver's (the worker loaded other data, e.g. another file on another node).
    """
    if evaluation.failed:
        raise DataError(f"member {name!r} failed to train: {evaluation.error}")
    info = evaluation.info
    if info.get("diverged") or not all(np.isfinite(info[k]).all() for k in ("val_logits", "test_logits")):
        raise DataError(f"member {name!r} diverged: its training loss or logits are not finite")
    for split, expected in (("val", val_labels), ("test", test_labels)):
        got = np.asarray(info[f"{split}_labels"])
        if got.shape != expected.shape or not np.array_equal(got, expected):
            raise DataError(
                f"member {name!r}: the worker's {split} labels (shape {got.shape}) differ from the driver's "
                f"(shape {expected.shape}); both must load the same dataset"
            )
    metrics = {k: (float(v) if math.isfinite(float(v)) else repr(float(v))) for k, v in evaluation.metrics.items()}
    return Member(
        name=name,
        val_logits=info["val_logits"],
        test_logits=info["test_logits"],
        arch=tuple(arch),
        num_params=int(info["num_params"]),
        checkpoint=CHECKPOINT_FILE,
        metadata={
            "seed": int(seed),
            "network": dict(network),
            "metrics": metrics,
            "train_time_s": float(evaluation.cost),
            "epochs": int(info["epochs"]),
            "device": str(info["device"]),
        },
    )


def load_member_model(directory: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> NB201Network:
    """Rebuild a saved member's trained network from its directory.

    Reads ``member.yaml`` (architecture and network size) and the checkpoint
    (``model.pt``, a ``state_dict``), without retraining.

    Args:
        directory: A member directory written by an ensemble build.
        map_location: Where to load the weights.

    Returns:
        The network in eval mode.

    Raises:
        DataError: The member, its network size or its checkpoint is missing or malformed.
    """
    path = Path(directory)
    member = Member.load(path)
    network = member.metadata.get("network")
    keys = ("channels", "cells_per_stage", "num_classes", "in_channels")
    if not isinstance(network, dict) or any(k not in network for k in keys) or member.arch is None:
        raise DataError(f"{path} does not record the architecture and network size ({', '.join(keys)})")
    checkpoint = Path(member.checkpoint or CHECKPOINT_FILE)
    if not checkpoint.is_absolute():
        checkpoint = path / checkpoint
    if not checkpoint.is_file():
        raise DataError(f"checkpoint {str(checkpoint)!r} of member {member.name!r} does not exist")
    model = NB201Network(
        member.arch, C=network["channels"], N=network["cells_per_stage"],
        num_classes=network["num_classes"], in_channels=network["in_channels"],
    )
    try:
        state = torch.load(checkpoint, map_location=map_location, weights_only=True)
        model.load_state_dict(state)
    except (RuntimeError, OSError, EOFError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"cannot load checkpoint {str(checkpoint)!r}: {first}") from None
    return model.eval()
