"""The dataset part of YAML configs."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated, Any

from evonas.data._datasets import DataSplits, _check_split_args, load_dataset
from evonas.config import IsPath, check_int, check_number
from evonas.data._sources import DATASETS, source_options
from evonas.errors import ConfigError

MAX_IMAGE_SIZE = 4096
"""Largest side an image folder is resized to (``image_size``): every image is decoded at
this size into memory before training."""


@dataclass(frozen=True)
class DatasetConfig:
    """Which dataset to load and how to split it; :meth:`load` gives the splits.

    Values are checked on construction (the data itself only on :meth:`load`). The
    config is hashable, so processes can cache loaded splits by it.

    Attributes:
        name: Registered dataset (``digits``, ``mnist``, ``fashion-mnist``,
            ``imagefolder``, ``cifar10``, ``cifar100``). Default ``digits``.
        root: Where the data is; see each dataset (``digits`` takes none). Relative to
            the config file (or, given on the command line, to the current directory).
        val_fraction: Share of the training images held out for validation, in ``[0, 1)``.
        seed: Seed of the splits (not of training: evaluations of one run share splits).
        max_train: At most this many training images (seeded subset); None: all.
        max_val: Same for validation.
        max_test: Same for test.
        test_fraction: Held-out test share for datasets without a test split (``digits``;
            default 0.2 there).
        augment: Random crop + flip on training images; None: the dataset's default.
        mean: Per-channel normalisation means; None: the dataset's usual or computed.
        std: Per-channel normalisation standard deviations; None: as ``mean``.
        download: Let torchvision download mnist / fashion-mnist / cifar10 / cifar100.
        image_size: Resize imagefolder images to this square size; None: keep.

    Raises:
        UnknownChoiceError: ``name`` is not registered (the message lists the datasets).
        ConfigError: Any other invalid value.
    """

    name: str = "digits"
    root: Annotated[str | None, IsPath()] = None
    val_fraction: float = 0.1
    seed: int = 0
    max_train: int | None = None
    max_val: int | None = None
    max_test: int | None = None
    test_fraction: float | None = None
    augment: bool | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    download: bool = False
    image_size: int | None = None

    def __post_init__(self) -> None:
        DATASETS.get(self.name)
        _check_split_args(self.val_fraction, self.seed, self.max_train, self.max_val, self.max_test, self.test_fraction)
        options = source_options(self.name)
        if self.download and "download" not in options:
            raise ConfigError(f"dataset {self.name!r} cannot be downloaded; set download: false")
        if self.image_size is not None:
            if "image_size" not in options:
                raise ConfigError(f"dataset {self.name!r} does not take image_size; got {self.image_size!r}")
            check_int(self.image_size, "image_size", 1, MAX_IMAGE_SIZE, optional=True)
        for key in ("mean", "std"):
            value = getattr(self, key)
            if value is not None:
                object.__setattr__(self, key, tuple(float(v) for v in value))
        if self.mean is not None and self.std is not None and len(self.mean) != len(self.std):
            raise ConfigError(f"mean and std need the same length; got {list(self.mean)} and {list(self.std)}")
        for i, s in enumerate(self.std or ()):
            check_number(s, f"std[{i}]", 0, low_open=True)

    def load(self) -> DataSplits:
        """Load and split the dataset (see :func:`~evonas.data.load_dataset`)."""
        options: dict[str, Any] = {}
        if self.download:
            options["download"] = True
        if self.image_size is not None:
            options["image_size"] = self.image_size
        return load_dataset(
            self.name,
            self.root,
            val_fraction=self.val_fraction,
            seed=self.seed,
            max_train=self.max_train,
            max_val=self.max_val,
            max_test=self.max_test,
            test_fraction=self.test_fraction,
            augment=self.augment,
            mean=self.mean,
            std=self.std,
            **options,
        )


@lru_cache(maxsize=4)
def cached_splits(config: DatasetConfig) -> DataSplits:
    """``config.load()``, once per process: every evaluator and trainer of a process
    (a Ray worker trains many networks) shares the loaded splits of one config."""
    return config.load()
