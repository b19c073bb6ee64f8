"""Evaluate an architecture by training its network from scratch.

The network is NAS-Bench-201's (:class:`evonas.models.NB201Network`), trained with
:func:`evonas.training.train_model`. The dataset is loaded lazily, once per process, and
cached by its :class:`~evonas.data.DatasetConfig`, so the evaluator itself stays a small
picklable value that can be shipped to Ray workers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from evonas.data import DatasetConfig, DataSplits
from evonas.errors import ConfigError
from evonas.evaluation._base import Evaluation
from evonas.models import NB201Network
from evonas.spaces import Arch, NB201Space
from evonas.training import TrainConfig, seeded_model, train_model

METRIC_NAMES: tuple[str, ...] = ("val_acc", "val_loss", "test_acc", "test_loss", "train_acc", "params_M")


@lru_cache(maxsize=4)
def _load_splits(config: DatasetConfig) -> DataSplits:
    return config.load()


def _check_size(key: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{key} must be a positive integer; got {value!r}")


class TrainingEvaluator:
    """Train the NAS-Bench-201 network of an architecture and report its accuracies.

    ``evaluate(arch, seed)`` seeds the weight initialisation, shuffling and augmentation
    with ``seed``; on the CPU the result is identical for the same ``(arch, seed)``.

    Args:
        dataset: The data and its splits (loaded on first use in each process).
        train: The training recipe.
        channels: ``C``, channels of the network's first stage (16 in NAS-Bench-201).
        cells_per_stage: ``N``, cells per stage (5 in NAS-Bench-201).

    Attributes:
        metric_names: ``val_acc``, ``val_loss``, ``test_acc``, ``test_loss``,
            ``train_acc`` (accuracies in percent, losses cross-entropy) and ``params_M``
            (parameters in millions).

    The evaluation's ``cost`` is the training wall time in seconds; ``info`` holds the
    per-epoch ``curves``, the ``device`` and the ``epochs`` run (plus ``diverged`` when
    the loss became non-finite).
    """

    metric_names: tuple[str, ...] = METRIC_NAMES

    def __init__(
        self,
        dataset: DatasetConfig | None = None,
        train: TrainConfig | None = None,
        channels: int = 16,
        cells_per_stage: int = 5,
    ) -> None:
        _check_size("channels", channels)
        _check_size("cells_per_stage", cells_per_stage)
        self.dataset = DatasetConfig() if dataset is None else dataset
        self.train = TrainConfig() if train is None else train
        self.channels = channels
        self.cells_per_stage = cells_per_stage
        self.space = NB201Space()

    def splits(self) -> DataSplits:
        """The dataset splits, loaded once per process."""
        return _load_splits(self.dataset)

    def evaluate(self, arch: Arch, seed: int) -> Evaluation:
        """Train ``arch``'s network with ``seed`` and return its metrics."""
        arch = self.space.validate(arch)
        splits = self.splits()
        model = seeded_model(
            lambda: NB201Network(
                arch, C=self.channels, N=self.cells_per_stage,
                num_classes=splits.num_classes, in_channels=splits.in_channels,
            ),
            seed,
        )
        result = train_model(model, splits, self.train, seed)
        info: dict[str, Any] = {"curves": result.curves, "device": result.device, "epochs": result.epochs}
        if result.diverged:
            info["diverged"] = True
        return Evaluation(
            metrics={
                "val_acc": result.val_acc,
                "val_loss": result.val_loss,
                "test_acc": result.test_acc,
                "test_loss": result.test_loss,
                "train_acc": result.train_acc,
                "params_M": result.num_params / 1e6,
            },
            cost=result.wall_time_s,
            info=_finite_json(info),
        )

    def __repr__(self) -> str:
        return (
            f"TrainingEvaluator(dataset={self.dataset!r}, train={self.train!r}, "
            f"channels={self.channels}, cells_per_stage={self.cells_per_stage})"
        )


def _finite_json(value: Any) -> Any:
    """``info`` must be JSON: non-finite floats (diverged losses) become their repr."""
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, dict):
        return {k: _finite_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_json(v) for v in value]
    return value


@dataclass(frozen=True)
class TrainingEvaluatorConfig:
    """YAML form of a :class:`TrainingEvaluator`.

    Example::

        dataset: {name: digits, val_fraction: 0.2}
        train: {epochs: 10, batch_size: 64, lr: 0.05}
        channels: 8
        cells_per_stage: 1

    Attributes:
        dataset: The data (:class:`~evonas.data.DatasetConfig`).
        train: The recipe (:class:`~evonas.training.TrainConfig`).
        channels: ``C`` of the network.
        cells_per_stage: ``N`` of the network.
    """

    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    channels: int = 16
    cells_per_stage: int = 5

    def __post_init__(self) -> None:
        _check_size("channels", self.channels)
        _check_size("cells_per_stage", self.cells_per_stage)

    def build(self) -> TrainingEvaluator:
        """The evaluator this config describes."""
        return TrainingEvaluator(self.dataset, self.train, self.channels, self.cells_per_stage)
