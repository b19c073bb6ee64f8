"""Evaluate an architecture by training its network from scratch.

The network comes from the configured decoder (:func:`evonas.models.build_network`; the
NAS-Bench-201 network for ``nb201``) and is trained with :func:`evonas.training.train_model`.
The dataset is loaded lazily, once per process (:func:`evonas.data.cached_splits`), so
the evaluator itself stays a small picklable value that can be shipped to Ray workers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Annotated, Any

from evonas._json import jsonable
from evonas.config import ComponentConfig, Registered
from evonas.data import DatasetConfig, DataSplits, cached_splits
from evonas.evaluation._base import Evaluation
from evonas.models import build_network, check_decoder
from evonas.spaces import Arch, SearchSpace
from evonas.training import TRAIN_METRICS, TrainConfig, TrainResult, seeded_model, train_model

METRIC_NAMES = TRAIN_METRICS


@dataclass(frozen=True)
class TrainingEvaluatorConfig:
    """YAML form of a :class:`TrainingEvaluator`.

    Example::

        dataset: {name: digits, val_fraction: 0.2}
        train: {epochs: 10, batch_size: 64, optim: {lr: 0.05}}
        network: {name: nb201, params: {channels: 8, cells_per_stage: 1}}

    Attributes:
        dataset: The data (:class:`~evonas.data.DatasetConfig`).
        train: The recipe (:class:`~evonas.training.TrainConfig`).
        network: The registered decoder that builds the network, and its size.
    """

    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    network: Annotated[ComponentConfig, Registered("decoder")] = field(default_factory=lambda: ComponentConfig("nb201"))


class TrainingEvaluator:
    """Train the network of an architecture and report its accuracies.

    ``evaluate(arch, seed)`` seeds the weight initialisation, shuffling and augmentation
    with ``seed``; on the CPU the result is identical for the same ``(arch, seed)``.
    Training whose loss became NaN or infinite is a failed evaluation.

    Args:
        space: The search space of the architectures.
        dataset: The data and its splits (loaded on first use in each process).
        train: The training recipe.
        network: The decoder and its parameters (default: NAS-Bench-201's network).

    Attributes:
        metric_names: ``val_acc``, ``val_loss``, ``test_acc``, ``test_loss``,
            ``train_acc`` (accuracies in percent, losses cross-entropy) and ``params_M``
            (parameters in millions).

    The evaluation's ``cost`` is the training wall time in seconds; ``info`` holds the
    per-epoch ``curves``, the ``device`` and the ``epochs`` run.

    Raises:
        CapabilityError: The decoder builds networks of another space.
    """

    metric_names: tuple[str, ...] = METRIC_NAMES

    def __init__(
        self,
        space: SearchSpace,
        dataset: DatasetConfig | None = None,
        train: TrainConfig | None = None,
        network: ComponentConfig | None = None,
    ) -> None:
        self.space = space
        self.dataset = DatasetConfig() if dataset is None else dataset
        self.train = TrainConfig() if train is None else train
        self.network = ComponentConfig("nb201") if network is None else network
        check_decoder(self.network, space)

    def splits(self) -> DataSplits:
        """The dataset splits, loaded once per process."""
        return cached_splits(self.dataset)

    def evaluate(self, arch: Arch, seed: int) -> Evaluation:
        """Train ``arch``'s network with ``seed`` and return its metrics."""
        arch = self.space.validate(arch)
        splits = self.splits()
        model = seeded_model(
            lambda: build_network(self.network, self.space, arch, splits.num_classes, splits.in_channels), seed
        )
        result = train_model(model, splits, self.train, seed)
        info: dict[str, Any] = {"curves": result.curves, "device": result.device, "epochs": result.epochs}
        metrics = result.metrics()
        if result.diverged:
            return Evaluation(
                metrics=metrics, cost=result.wall_time_s, failed=True, info=jsonable(info),
                error=f"training diverged: {_divergence(result)}",
            )
        return Evaluation(metrics=metrics, cost=result.wall_time_s, info=jsonable(info))

    def __repr__(self) -> str:
        return (
            f"TrainingEvaluator(space={self.space!r}, dataset={self.dataset!r}, train={self.train!r}, "
            f"network={self.network!r})"
        )


def _divergence(result: TrainResult) -> str:
    """Which loss of a diverged training stopped being finite, and when."""
    for name, value in (("the loss", result.train_loss), ("the validation loss", result.val_loss)):
        if not math.isfinite(value):
            return f"{name} became {value!r} in epoch {result.epochs}"
    return f"the test loss of the trained network is {result.test_loss!r}"


def build_training(config: TrainingEvaluatorConfig, *, space: SearchSpace) -> TrainingEvaluator:
    """The ``training`` evaluator entry."""
    return TrainingEvaluator(space, config.dataset, config.train, config.network)
