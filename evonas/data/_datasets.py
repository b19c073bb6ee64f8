"""Seeded train / validation / test splits of the registered datasets.

:func:`load_dataset` asks a :data:`~evonas.data.DATASETS` entry for all images, then:

1. test split: the dataset's own, or — for datasets without one (``digits``) — a
   stratified, seeded ``test_fraction`` of the images (default 0.2);
2. validation split: a stratified, seeded ``val_fraction`` of the remaining training images;
3. ``max_train`` / ``max_val`` / ``max_test``: seeded random subsets of each split;
4. normalisation: given ``mean``/``std``, else the dataset's usual values, else computed
   from the training split; augmentation (random crop + flip) on the training split only.

The three splits are disjoint, and the same ``seed`` always gives the same splits.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from evonas.data._sources import DATASETS, SourceImages, as_path, source_options
from evonas.data._tensors import ImageTensorDataset, seed_worker
from evonas.config import MAX_COUNT, MAX_SEED, check_int, check_number
from evonas.errors import ConfigError

Split = Literal["train", "val", "test"]
SPLITS: tuple[str, ...] = ("train", "val", "test")
DEFAULT_TEST_FRACTION = 0.2


@dataclass(frozen=True, eq=False)
class DataSplits:
    """Train, validation and test splits of one dataset, plus what a network needs to know.

    Attributes:
        name: The dataset's registry name.
        train: Training split (augmented when enabled). Items are ``(x, y)``: ``x`` a
            normalised float32 tensor of shape ``(in_channels, *image_size)``, ``y`` an int.
            :func:`load_dataset` gives :class:`ImageTensorDataset`\\ s; any map-style
            torch ``Dataset`` with such items works with :meth:`loader`.
        val: Validation split (never augmented); may be empty when ``val_fraction=0``.
        test: Test split (never augmented).
        num_classes: Number of classes (labels are ``0..num_classes-1``).
        in_channels: Image channels.
        image_size: ``(H, W)``.
        classes: Class names, indexed by label.
        mean: Per-channel normalisation means.
        std: Per-channel normalisation standard deviations.
    """

    name: str
    train: Dataset
    val: Dataset
    test: Dataset
    num_classes: int
    in_channels: int
    image_size: tuple[int, int]
    classes: tuple[str, ...] = ()
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """``(in_channels, H, W)`` of one image."""
        return (self.in_channels, *self.image_size)

    def split(self, split: Split) -> Dataset:
        """The dataset of ``split`` (``"train"``, ``"val"`` or ``"test"``)."""
        if split not in SPLITS:
            raise ConfigError(f"unknown split {split!r}; valid splits: {', '.join(SPLITS)}")
        return getattr(self, split)

    def loader(
        self,
        split: Split,
        batch_size: int,
        *,
        shuffle: bool | None = None,
        seed: int = 0,
        num_workers: int = 0,
        pin_memory: bool | None = None,
        drop_last: bool = False,
    ) -> DataLoader:
        """A DataLoader over ``split`` whose randomness derives from ``seed`` only.

        Shuffling uses a ``torch.Generator`` seeded from ``seed``; the training split's
        augmentation gets its own generator, also derived from ``seed``, so two loaders
        with the same seed and ``num_workers`` yield the same batches in the same order.

        Args:
            split: ``"train"``, ``"val"`` or ``"test"``.
            batch_size: Samples per batch.
            shuffle: Reshuffle every epoch; default True for ``"train"`` only.
            seed: Seed of the shuffling and augmentation.
            num_workers: Loader worker processes (0: load in this process).
            pin_memory: Page-locked batches for fast GPU copies; default: when CUDA is available.
            drop_last: Drop the last incomplete batch.

        Raises:
            ConfigError: Unknown split or a non-positive batch size.
        """
        dataset = self.split(split)
        check_int(batch_size, "batch_size", 1)
        check_int(num_workers, "num_workers", 0)
        shuffle_seed, augment_seed = (int(s) for s in np.random.SeedSequence(seed).generate_state(2))
        if isinstance(dataset, ImageTensorDataset) and dataset.augment:
            dataset = dataset.reseeded(augment_seed)
        return DataLoader(
            dataset,
            batch_size=batch_size,
            shuffle=(split == "train") if shuffle is None else shuffle,
            generator=torch.Generator().manual_seed(shuffle_seed),
            num_workers=num_workers,
            worker_init_fn=seed_worker if num_workers > 0 else None,
            persistent_workers=num_workers > 0,
            pin_memory=torch.cuda.is_available() if pin_memory is None else pin_memory,
            drop_last=drop_last,
        )


def load_dataset(
    name: str,
    root: str | os.PathLike[str] | None = None,
    *,
    val_fraction: float = 0.1,
    seed: int = 0,
    max_train: int | None = None,
    max_val: int | None = None,
    max_test: int | None = None,
    test_fraction: float | None = None,
    augment: bool | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    **options: object,
) -> DataSplits:
    """Load the registered dataset ``name`` and split it (see the module docstring).

    Args:
        name: A name in :data:`~evonas.data.DATASETS`: ``digits``, ``mnist``,
            ``fashion-mnist``, ``imagefolder``, ``cifar10``, ``cifar100``.
        root: Where the data is (meaning depends on the dataset; ``digits`` takes none).
        val_fraction: Share of the training images held out for validation, in ``[0, 1)``.
        seed: Seed of the splits and subsets.
        max_train: Keep at most this many training images (seeded random subset).
        max_val: Same for validation.
        max_test: Same for test.
        test_fraction: For datasets without a test split: the share held out for testing
            (default 0.2). Not allowed for datasets that have one.
        augment: Random crop + horizontal flip on the training split; default: the
            dataset's (on for 32x32 colour images, off otherwise).
        mean: Per-channel normalisation means of pixels in ``[0, 1]``; default: the
            dataset's usual values, else computed from the training split.
        std: Per-channel normalisation standard deviations, as ``mean``.
        **options: Dataset-specific options: ``download`` (mnist, fashion-mnist, cifar10,
            cifar100; default False) and ``image_size`` (imagefolder).

    Raises:
        UnknownChoiceError: ``name`` is not registered.
        ConfigError: An invalid value or an option the dataset does not take.
        DataError: The data is missing or unreadable; the message names the path and
            what is expected there.
    """
    source = DATASETS.get(name)
    _check_split_args(val_fraction, seed, max_train, max_val, max_test, test_fraction)
    accepted = source_options(name)
    for key in options:
        if key not in accepted:
            raise ConfigError(
                f"dataset {name!r} does not take option {key!r}; its options: {', '.join(accepted) or '(none)'}"
            )
    images: SourceImages = source(as_path(root), **options)

    labels = images.train_labels.numpy()
    num_classes = len(images.classes)
    state = np.random.SeedSequence(seed).generate_state(4)
    all_rows = np.arange(len(labels))
    if images.test_images is None or images.test_labels is None:
        fraction = DEFAULT_TEST_FRACTION if test_fraction is None else test_fraction
        pool, test_rows = _split(all_rows, labels, fraction, int(state[0]), num_classes)
        test_images, test_labels = images.train_images, images.train_labels
    else:
        if test_fraction is not None:
            raise ConfigError(
                f"dataset {name!r} has its own test split; test_fraction must be left unset, got {test_fraction!r}"
            )
        pool = all_rows
        test_images, test_labels = images.test_images, images.test_labels
        test_rows = np.arange(len(test_labels))
    train_rows, val_rows = _split(pool, labels[pool], val_fraction, int(state[1]), num_classes)
    rng = np.random.default_rng(state[2])
    train_rows = _subset(train_rows, max_train, rng)
    val_rows = _subset(val_rows, max_val, rng)
    test_rows = _subset(test_rows, max_test, rng)

    channels = int(images.train_images.shape[1])
    mean_t, std_t = _normalisation(images, train_rows, channels, mean, std)
    do_augment = images.augment if augment is None else bool(augment)
    height, width = (int(s) for s in images.train_images.shape[2:])
    pad = max(1, round(height / 8))
    def view(pixels: torch.Tensor, labels: torch.Tensor, rows: np.ndarray, augment: bool = False) -> ImageTensorDataset:
        return ImageTensorDataset(pixels, labels, torch.from_numpy(rows), mean=mean_t, std=std_t, scale=images.scale,
                                  augment=augment, pad=pad, seed=int(state[3]))

    return DataSplits(
        name=name,
        train=view(images.train_images, images.train_labels, train_rows, augment=do_augment),
        val=view(images.train_images, images.train_labels, val_rows),
        test=view(test_images, test_labels, test_rows),
        num_classes=num_classes,
        in_channels=channels,
        image_size=(height, width),
        classes=images.classes,
        mean=mean_t,
        std=std_t,
    )


def _check_split_args(
    val_fraction: float,
    seed: int,
    max_train: int | None,
    max_val: int | None,
    max_test: int | None,
    test_fraction: float | None,
) -> None:
    check_number(val_fraction, "val_fraction", 0, 1, high_open=True)
    check_number(test_fraction, "test_fraction", 0, 1, low_open=True, high_open=True, optional=True)
    check_int(seed, "seed", 0, MAX_SEED)
    for key, value in (("max_train", max_train), ("max_val", max_val), ("max_test", max_test)):
        check_int(value, key, 1, MAX_COUNT, optional=True)


def _split(
    rows: np.ndarray, labels: np.ndarray, fraction: float, seed: int, num_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """Split ``rows`` into ``(keep, held_out)`` with ``fraction`` held out, stratified when possible."""
    if fraction == 0 or len(rows) == 0:
        return np.sort(rows), rows[:0]
    from sklearn.model_selection import train_test_split

    n_out = math.ceil(fraction * len(rows))
    counts = np.bincount(labels, minlength=num_classes)
    feasible = n_out >= num_classes and len(rows) - n_out >= num_classes and counts[counts > 0].min() >= 2
    stratify = labels if feasible else None
    keep, out = train_test_split(rows, test_size=n_out, random_state=seed, stratify=stratify)
    return np.sort(keep), np.sort(out)


def _subset(rows: np.ndarray, limit: int | None, rng: np.random.Generator) -> np.ndarray:
    if limit is None or limit >= len(rows):
        return rows
    return np.sort(rng.choice(rows, size=limit, replace=False))


def _normalisation(
    images: SourceImages,
    train_rows: np.ndarray,
    channels: int,
    mean: Sequence[float] | None,
    std: Sequence[float] | None,
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    for key, value in (("mean", mean), ("std", std)):
        if value is not None and len(value) != channels:
            raise ConfigError(f"{key} needs {channels} values (one per channel); got {list(value)!r}")
    for i, s in enumerate(std or ()):
        check_number(s, f"std[{i}]", 0, low_open=True)
    if mean is None or std is None:
        if images.mean is not None and images.std is not None:
            computed = (images.mean, images.std)
        else:
            computed = _channel_stats(images.train_images, train_rows, images.scale)
        mean = computed[0] if mean is None else mean
        std = computed[1] if std is None else std
    return tuple(float(m) for m in mean), tuple(float(s) for s in std)


def _channel_stats(
    images: torch.Tensor, rows: np.ndarray, scale: float, chunk: int = 4096
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and standard deviation of ``images[rows] * scale``, in float64 chunks."""
    c = images.shape[1]
    total = torch.zeros(c, dtype=torch.float64)
    total_sq = torch.zeros(c, dtype=torch.float64)
    count = 0
    index = torch.from_numpy(rows)
    for start in range(0, len(index), chunk):
        x = images[index[start : start + chunk]].to(torch.float64) * scale
        total += x.sum(dim=(0, 2, 3))
        total_sq += (x * x).sum(dim=(0, 2, 3))
        count += x.shape[0] * x.shape[2] * x.shape[3]
    if count == 0:
        return (0.0,) * c, (1.0,) * c
    m = total / count
    var = (total_sq / count - m * m).clamp_min(0.0)
    s = var.sqrt().clamp_min(1e-6)
    return tuple(m.tolist()), tuple(s.tolist())
