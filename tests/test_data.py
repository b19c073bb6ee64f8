"""Datasets: seeded disjoint splits, normalisation, augmentation, loaders, caches and errors.

Split sizes of ``digits`` (1,797 images), worked out by hand: test = ceil(0.2 * 1797) = 360,
validation = ceil(0.1 * 1437) = 144, train = 1437 - 144 = 1293.
"""

from __future__ import annotations

import io
import os
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from evonas.config import from_dict
from evonas.data import (
    CIFAR10_CLASSES,
    CIFAR10_MEAN,
    DATASETS,
    DataSplits,
    DatasetConfig,
    ImageTensorDataset,
    load_dataset,
)
from evonas.errors import ConfigError, DataError, UnknownChoiceError


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    """Every test prepares data in a cache of its own, never in ~/.cache or the repo."""
    monkeypatch.setenv("EVONAS_CACHE", str(tmp_path_factory.mktemp("evonas-cache")))


def _rows(ds: ImageTensorDataset) -> set[int]:
    return set(ds.indices.tolist())


# ---------------------------------------------------------------------------- digits
def test_digits_split_sizes_disjoint_and_stratified():
    s = load_dataset("digits")
    assert (len(s.train), len(s.val), len(s.test)) == (1293, 144, 360)
    assert (s.num_classes, s.in_channels, s.image_size, s.input_shape) == (10, 1, (8, 8), (1, 8, 8))
    train, val, test = _rows(s.train), _rows(s.val), _rows(s.test)
    assert not (train & val) and not (train & test) and not (val & test)
    assert train | val | test == set(range(1797))
    # stratified: each class has 36 +- 1 test images (classes hold 174..183 images)
    counts = np.bincount(s.test.labels.numpy(), minlength=10)
    assert counts.min() >= 35 and counts.max() <= 37


def test_digits_splits_are_reproducible_per_seed():
    a, b, c = load_dataset("digits", seed=3), load_dataset("digits", seed=3), load_dataset("digits", seed=4)
    for split in ("train", "val", "test"):
        assert torch.equal(a.split(split).indices, b.split(split).indices)
    assert not torch.equal(a.test.indices, c.test.indices)


def test_digits_items_are_normalised_with_training_statistics():
    s = load_dataset("digits")
    x, y = s.train[0]
    assert x.shape == (1, 8, 8) and x.dtype == torch.float32 and isinstance(y, int)
    xs, _ = s.train.batch(range(len(s.train)))
    assert abs(float(xs.mean())) < 1e-5
    assert float(xs.std(unbiased=False)) == pytest.approx(1.0, abs=1e-5)
    # stored values are 0..16: pixel 0 of the first image maps to (v / 16 - mean) / std
    raw = float(s.train.images[s.train.indices[0], 0, 0, 0])
    assert float(x[0, 0, 0]) == pytest.approx((raw / 16 - s.mean[0]) / s.std[0], abs=1e-6)
    assert s.train.augment is False


def test_limits_take_seeded_subsets_of_each_split():
    full = load_dataset("digits", seed=1)
    small = load_dataset("digits", seed=1, max_train=100, max_val=20, max_test=30)
    assert (len(small.train), len(small.val), len(small.test)) == (100, 20, 30)
    assert _rows(small.train) <= _rows(full.train)
    assert _rows(small.val) <= _rows(full.val)
    assert _rows(small.test) <= _rows(full.test)
    again = load_dataset("digits", seed=1, max_train=100, max_val=20, max_test=30)
    assert torch.equal(small.train.indices, again.train.indices)


def test_val_fraction_zero_gives_an_empty_validation_split():
    s = load_dataset("digits", val_fraction=0.0, test_fraction=0.5)
    assert (len(s.train), len(s.val), len(s.test)) == (898, 0, 899)


def test_explicit_normalisation_is_used():
    s = load_dataset("digits", mean=[0.5], std=[0.25])
    raw = float(s.test.images[s.test.indices[0], 0, 3, 3])
    assert float(s.test[0][0][0, 3, 3]) == pytest.approx((raw / 16 - 0.5) / 0.25)


# ----------------------------------------------------------------------- augmentation
def test_random_crop_and_flip_yield_shifted_or_mirrored_crops():
    image = torch.arange(16, dtype=torch.uint8).view(1, 1, 4, 4) + 1
    ds = ImageTensorDataset(image, torch.zeros(1, dtype=torch.int64), mean=[0.0], std=[1.0], scale=1.0,
                            augment=True, pad=1, seed=0)
    padded = torch.nn.functional.pad(image[0].float(), (1, 1, 1, 1))
    candidates = [padded[:, dy:dy + 4, dx:dx + 4] for dy in range(3) for dx in range(3)]
    candidates += [c.flip(-1) for c in candidates]
    seen = set()
    for _ in range(200):
        x, _ = ds[0]
        match = [i for i, c in enumerate(candidates) if torch.equal(x, c)]
        assert len(match) == 1
        seen.add(match[0])
    assert len(seen) == 18  # all 9 offsets, each with and without the flip


def test_train_loaders_are_seeded_including_augmentation():
    s = load_dataset("digits", augment=True, max_train=200)
    assert s.train.augment and not s.val.augment and not s.test.augment

    def first_batch(seed: int, **kw: object) -> tuple[torch.Tensor, torch.Tensor]:
        return next(iter(s.loader("train", 32, seed=seed, **kw)))

    x1, y1 = first_batch(5)
    x2, y2 = first_batch(5)
    x3, _ = first_batch(6)
    assert torch.equal(x1, x2) and torch.equal(y1, y2)
    assert not torch.equal(x1, x3)
    # the same in worker processes: the loader's generator seeds the workers' augmentation
    w1, _ = first_batch(5, num_workers=2)
    w2, _ = first_batch(5, num_workers=2)
    assert torch.equal(w1, w2)


def test_datasets_pickle_with_their_augmentation_state():
    s = load_dataset("digits", augment=True, max_train=50)
    s.train.batch([0])  # advance the generator
    clone = pickle.loads(pickle.dumps(s.train))
    assert torch.equal(clone.batch(range(50))[0], s.train.batch(range(50))[0])


@pytest.mark.slow
def test_loader_workers_started_by_spawn():
    # spawn/forkserver workers unpickle the dataset (forkserver is the default from Python 3.14)
    s = load_dataset("digits", augment=True, max_train=64)
    ctx = torch.multiprocessing.get_context("spawn")
    loader = s.loader("train", 32, seed=1)
    spawned = DataLoader(loader.dataset, batch_size=32, num_workers=1, multiprocessing_context=ctx)
    x, y = next(iter(spawned))
    assert x.shape == (32, 1, 8, 8) and y.shape == (32,)


def test_eval_loaders_keep_order():
    s = load_dataset("digits")
    xs, ys = zip(*s.loader("test", 100))
    assert torch.equal(torch.cat(ys), s.test.labels)
    assert torch.equal(torch.cat(xs), s.test.batch(range(len(s.test)))[0])


def test_loader_rejects_bad_arguments():
    s = load_dataset("digits", max_train=10)
    with pytest.raises(ConfigError, match="unknown split 'valid'"):
        s.loader("valid", 4)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="invalid value 0 for 'batch_size'; expected an integer >= 1"):
        s.loader("train", 0)


# ---------------------------------------------------------------------------- errors
def test_unknown_dataset_lists_the_registry():
    with pytest.raises(UnknownChoiceError, match="unknown dataset 'cifar-11'; valid choices: cifar10, cifar100, digit"):
        load_dataset("cifar-11")
    with pytest.raises(UnknownChoiceError, match="fashion-mnist, imagefolder, mnist"):
        DatasetConfig(name="cifar-11")
    assert DATASETS.names() == ["cifar10", "cifar100", "digits", "fashion-mnist", "imagefolder", "mnist"]


def test_bad_values_raise_config_errors(tmp_path):
    with pytest.raises(ConfigError, match=r"invalid value 1.0 for 'val_fraction'; expected a finite number in \[0, 1\)"):
        load_dataset("digits", val_fraction=1.0)
    with pytest.raises(ConfigError, match=r"invalid value 0 for 'max_train'; expected an integer in \[1, \d+\] or null"):
        DatasetConfig(max_train=0)
    with pytest.raises(ConfigError, match="does not take option 'image_size'"):
        load_dataset("digits", image_size=8)
    with pytest.raises(ConfigError, match="takes no root"):
        load_dataset("digits", "/tmp")
    with pytest.raises(ConfigError, match="own test split; test_fraction"):
        load_dataset("imagefolder", _tiny_tree(tmp_path / "tree"), test_fraction=0.1)
    with pytest.raises(ConfigError, match="cannot be downloaded"):
        DatasetConfig(name="digits", download=True)
    with pytest.raises(ConfigError, match="needs 1 values"):
        load_dataset("digits", mean=[0.1, 0.2])


def test_missing_data_raise_data_errors_naming_the_path(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(DataError, match=f"mnist root '{missing}' is not a directory"):
        load_dataset("mnist", missing)
    with pytest.raises(DataError, match=r"fashion-mnist files not found in .*train-images-idx3-ubyte\[\.gz\]"):
        load_dataset("fashion-mnist", tmp_path)
    with pytest.raises(DataError, match=f"cifar-10-batches-py/ folder in '{tmp_path}'"):
        load_dataset("cifar10", tmp_path)
    with pytest.raises(DataError, match="needs a root"):
        load_dataset("imagefolder")
    with pytest.raises(DataError, match=f"imagefolder root '{missing}' does not exist"):
        load_dataset("imagefolder", missing)
    with pytest.raises(DataError, match="does not hold an ImageFolder tree with train/<class>"):
        load_dataset("imagefolder", tmp_path)


# ------------------------------------------------------------------------ imagefolder
def _tiny_tree(root: Path, sizes: tuple[int, int] = (6, 6)) -> Path:
    """A two-class ImageFolder tree of small PNGs: 6 train and 2 test images per class."""
    from PIL import Image

    if root.exists():
        return root
    rng = np.random.default_rng(0)
    for split, n in (("train", 6), ("test", 2)):
        for label in ("ants", "bees"):
            folder = root / split / label
            folder.mkdir(parents=True)
            for i in range(n):
                size = sizes[i % len(sizes)]
                pixels = rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{i}.png")
    return root


def test_imagefolder_tree_is_decoded_once_and_normalised(tmp_path):
    tree = _tiny_tree(tmp_path / "tree")
    s = load_dataset("imagefolder", tree, val_fraction=0.25)
    assert (len(s.train), len(s.val), len(s.test)) == (9, 3, 4)
    assert s.classes == ("ants", "bees") and s.input_shape == (3, 6, 6)
    assert s.train.augment is False  # not 32x32
    xs, _ = s.train.batch(range(9))
    assert torch.allclose(xs.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-5)
    cached = list(Path(os.environ["EVONAS_CACHE"]).glob("imagefolder/tree-*/arrays-native.npz"))
    assert len(cached) == 1
    again = load_dataset("imagefolder", tree, val_fraction=0.25)
    assert torch.equal(again.train.images, s.train.images)


def test_imagefolder_sizes_must_agree_or_be_resized(tmp_path):
    tree = _tiny_tree(tmp_path / "mixed", sizes=(6, 5))
    with pytest.raises(DataError, match="set the image_size option"):
        load_dataset("imagefolder", tree)
    s = DatasetConfig(name="imagefolder", root=str(tree), image_size=4).load()
    assert s.input_shape == (3, 4, 4)


def _tar_with(path: Path, members: list[tarfile.TarInfo]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for m in members:
            data = b"x" * m.size if m.isfile() else None
            tar.addfile(m, io.BytesIO(data) if data is not None else None)
    return path


def test_unsafe_archives_are_refused(tmp_path):
    escape = tarfile.TarInfo("../escaped.txt")
    escape.size = 1
    with pytest.raises(DataError, match="member '../escaped.txt' outside its root"):
        load_dataset("imagefolder", _tar_with(tmp_path / "escape.tar.gz", [escape]))
    assert not (Path(os.environ["EVONAS_CACHE"]) / "imagefolder" / "escaped.txt").exists()
    link = tarfile.TarInfo("train/link")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    with pytest.raises(DataError, match="not a regular file or directory"):
        load_dataset("imagefolder", _tar_with(tmp_path / "link.tar.gz", [link]))


def test_imagefolder_from_archive(tmp_path):
    tree = _tiny_tree(tmp_path / "src" / "pets")
    archive = tmp_path / "pets.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tree, arcname="pets")  # the tree may sit in one top-level folder
    s = load_dataset("imagefolder", archive, val_fraction=0.25)
    assert (len(s.train), len(s.val), len(s.test)) == (9, 3, 4)
    direct = load_dataset("imagefolder", tree, val_fraction=0.25)
    assert torch.equal(s.test.images, direct.test.images)


# --------------------------------------------------------------------------- configs
def test_dataset_config_from_yaml_mapping():
    cfg = from_dict(DatasetConfig, {"name": "digits", "val_fraction": 0.2, "mean": [0.3], "std": [0.4]})
    assert cfg.mean == (0.3,) and hash(cfg) == hash(DatasetConfig(val_fraction=0.2, mean=(0.3,), std=(0.4,)))
    s = cfg.load()
    assert isinstance(s, DataSplits) and len(s.val) == 288  # ceil(0.2 * 1437)
    with pytest.raises(ConfigError, match="unknown key 'dataset.bogus'"):
        from_dict(DatasetConfig, {"bogus": 1}, "dataset")


# ------------------------------------------------------------------------- real data
def test_mnist_from_shared_idx_files(shared_data):
    root = shared_data / "images" / "mnist-idx"
    s = load_dataset("mnist", root, max_test=1000)
    assert (len(s.train), len(s.val), len(s.test)) == (54000, 6000, 1000)
    assert (s.num_classes, s.input_shape) == (10, (1, 28, 28))
    assert s.mean == (0.1307,) and s.std == (0.3081,)
    assert not _rows(s.train) & _rows(s.val)
    # the gunzipped torchvision layout is built in the cache, not next to the shared files
    cache = Path(os.environ["EVONAS_CACHE"])
    assert len(list(cache.glob("idx/MNIST-*/MNIST/raw/train-images-idx3-ubyte"))) == 1
    assert sorted(p.name for p in root.iterdir()) == sorted(f"{n}.gz" for n in (
        "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", "train-images-idx3-ubyte", "train-labels-idx1-ubyte"))
    x, y = s.test[0]
    assert x.shape == (1, 28, 28) and 0 <= y < 10


def test_fashion_mnist_from_the_debian_package():
    root = Path("/usr/share/datasets/fashion-mnist")
    if not root.is_dir():  # a system package, not ../shared/data: skipped even in CI
        pytest.skip(f"{root} absent: apt-get install dataset-fashion-mnist")
    s = load_dataset("fashion-mnist", root, max_train=500)
    assert (len(s.train), len(s.val), len(s.test)) == (500, 6000, 10000)
    assert s.classes[0] == "T-shirt/top"


def test_cifar10_small_archive(shared_data):
    s = load_dataset("imagefolder", shared_data / "images" / "cifar10-jpg-small.tar.gz")
    assert (len(s.train), len(s.val), len(s.test)) == (4500, 500, 1000)
    assert s.classes == CIFAR10_CLASSES and s.input_shape == (3, 32, 32)
    assert s.mean == CIFAR10_MEAN and s.train.augment
    # the README's channel means of the pixels, 0.491 / 0.482 / 0.447
    pixels = s.train.images[s.train.indices].float() / 255
    assert pixels.mean(dim=(0, 2, 3)).tolist() == pytest.approx([0.491, 0.482, 0.447], abs=0.01)
    assert np.bincount(s.test.labels.numpy()).tolist() == [100] * 10
