"""Datasets with explicit, seeded train / validation / test splits.

``load_dataset("digits")`` or ``DatasetConfig(name="mnist", root=...).load()`` give a
:class:`DataSplits`; ``splits.loader("train", 64, seed=s)`` a seeded DataLoader. New
datasets register a source with ``@DATASETS.register("name")``.
"""

from __future__ import annotations

from evonas.data._cache import CACHE_ENV_VAR, cache_dir
from evonas.data._config import DatasetConfig, cached_splits
from evonas.data._datasets import SPLITS, DataSplits, load_dataset
from evonas.data._sources import (
    CIFAR10_CLASSES,
    CIFAR10_MEAN,
    CIFAR10_STD,
    CIFAR100_MEAN,
    CIFAR100_STD,
    DATASETS,
    SourceImages,
)
from evonas.data._tensors import ImageTensorDataset

__all__ = [
    "CACHE_ENV_VAR",
    "CIFAR10_CLASSES",
    "CIFAR10_MEAN",
    "CIFAR10_STD",
    "CIFAR100_MEAN",
    "CIFAR100_STD",
    "DATASETS",
    "SPLITS",
    "DataSplits",
    "DatasetConfig",
    "ImageTensorDataset",
    "SourceImages",
    "cache_dir",
    "cached_splits",
    "load_dataset",
]
