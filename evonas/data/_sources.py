"""The registered datasets: where images come from and how they are decoded once.

Every entry of :data:`DATASETS` is a function ``source(root, **options) -> SourceImages``
returning all images of the dataset as ``uint8`` tensors; splitting, normalisation and
augmentation are applied uniformly by :func:`evonas.data.load_dataset`. The options an
entry accepts are its keyword arguments (``download``, ``image_size``). torchvision and
scikit-learn are imported only when an entry is used.
"""

from __future__ import annotations

import gzip
import os
import shutil
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from evonas._registry import Registry
from evonas.data._cache import (
    build_dir_atomically,
    cache_dir,
    extract_tar_safely,
    fingerprint,
    save_arrays_atomically,
)
from evonas.errors import ConfigError, DataError


@dataclass(frozen=True, eq=False)
class SourceImages:
    """All images of a dataset, before splitting.

    Attributes:
        train_images: ``uint8``, shape ``(N, C, H, W)``.
        train_labels: ``int64``, shape ``(N,)``.
        test_images: The dataset's own test images (same layout), or None when it has no
            test split (one is then held out of the training images).
        test_labels: Labels of ``test_images`` or None.
        classes: Class names, indexed by label.
        scale: Factor mapping stored values to ``[0, 1]``.
        mean: Usual per-channel normalisation means, or None to compute them from the
            training split.
        std: Usual per-channel standard deviations, or None.
        augment: Whether random crop + flip is on by default (32x32 natural images).
    """

    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor | None
    test_labels: torch.Tensor | None
    classes: tuple[str, ...]
    scale: float = 1.0 / 255.0
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    augment: bool = False


Source = Callable[..., SourceImages]

DATASETS: Registry[Source] = Registry("dataset")
"""Dataset name -> ``source(root, **options) -> SourceImages``."""

# NAS-Bench-201's normalisation (Dong & Yang 2020, from the usual CIFAR statistics)
CIFAR10_MEAN = (125.3 / 255, 123.0 / 255, 113.9 / 255)
CIFAR10_STD = (63.0 / 255, 62.1 / 255, 66.7 / 255)
CIFAR100_MEAN = (129.3 / 255, 124.1 / 255, 112.4 / 255)
CIFAR100_STD = (68.2 / 255, 65.4 / 255, 70.4 / 255)
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def _nchw(array: np.ndarray) -> torch.Tensor:
    """``(N, H, W)`` or ``(N, H, W, C)`` uint8 array -> contiguous ``(N, C, H, W)`` tensor."""
    t = torch.from_numpy(np.ascontiguousarray(array))
    if t.dim() == 3:
        return t.unsqueeze(1).contiguous()
    return t.permute(0, 3, 1, 2).contiguous()


def _no_root(name: str, root: Path | None) -> None:
    if root is not None:
        raise ConfigError(f"dataset {name!r} ships with its library and takes no root; got root={str(root)!r}")


# ----------------------------------------------------------------------------- digits
@DATASETS.register("digits")
def digits(root: Path | None = None) -> SourceImages:
    """scikit-learn's 8x8 handwritten digits (1,797 greyscale images, values 0..16, 10 classes).

    Alpaydin & Kaynak, UCI Optical Recognition of Handwritten Digits. There is no test
    split: :func:`~evonas.data.load_dataset` holds one out.
    """
    _no_root("digits", root)
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = _nchw(bunch.images.astype(np.uint8))
    labels = torch.from_numpy(bunch.target.astype(np.int64))
    return SourceImages(
        train_images=images,
        train_labels=labels,
        test_images=None,
        test_labels=None,
        classes=tuple(str(c) for c in bunch.target_names),
        scale=1.0 / 16.0,
    )


# -------------------------------------------------------------------- MNIST-like idx
_IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


def _find_idx_files(folder: Path) -> list[Path] | None:
    """The four canonical idx files in ``folder`` (each gzipped or not), or None."""
    found = []
    for name in _IDX_FILES:
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                found.append(candidate)
                break
        else:
            return None
    return found


def _has_raw(base: Path, tv_name: str) -> bool:
    """Whether ``base`` is a torchvision root with the uncompressed idx files."""
    return all((base / tv_name / "raw" / f).is_file() for f in _IDX_FILES)


def _gunzip_into(files: list[Path], raw: Path) -> None:
    raw.mkdir(parents=True)
    for src in files:
        dst = raw / src.name.removesuffix(".gz")
        opener = gzip.open if src.suffix == ".gz" else open
        try:
            with opener(src, "rb") as fin, open(dst, "wb") as fout:
                shutil.copyfileobj(fin, fout)
        except (OSError, EOFError) as exc:
            raise DataError(f"cannot read idx file {str(src)!r}: {exc}") from None


def _idx_dataset(
    name: str, tv_name: str, root: Path | None, download: bool, mean: float, std: float
) -> SourceImages:
    import torchvision

    tv_class = getattr(torchvision.datasets, tv_name)
    expected = ", ".join(f"{f}[.gz]" for f in _IDX_FILES)
    if root is None:
        base = cache_dir("torchvision")
    else:
        if not root.is_dir():
            raise DataError(f"{name} root {str(root)!r} is not a directory; expected a folder with {expected}")
        base = root
        if not _has_raw(root, tv_name):
            files = _find_idx_files(root) or _find_idx_files(root / tv_name / "raw")
            if files is not None:
                # torchvision wants uncompressed files in <root>/<Class>/raw; the source
                # folder may be read-only, so that layout is built in the cache
                base = cache_dir("idx", f"{tv_name}-{fingerprint(root)}")
                build_dir_atomically(base, lambda tmp: _gunzip_into(files, tmp / tv_name / "raw"))
    if not download and not _has_raw(base, tv_name):
        where = "the cache" if root is None else repr(str(root))
        raise DataError(
            f"{name} files not found in {where} ({str(base)!r}): pass root= a folder with {expected} "
            f"(or with {tv_name}/raw/ inside), or set download: true to let torchvision fetch them"
        )
    try:
        train = tv_class(str(base), train=True, download=download)
        test = tv_class(str(base), train=False, download=download)
    except (RuntimeError, OSError) as exc:
        raise DataError(f"cannot load {name} from {str(base)!r}: {exc}") from None
    return SourceImages(
        train_images=train.data.unsqueeze(1).contiguous(),
        train_labels=train.targets.to(torch.int64),
        test_images=test.data.unsqueeze(1).contiguous(),
        test_labels=test.targets.to(torch.int64),
        classes=tuple(train.classes),
        mean=(mean,),
        std=(std,),
    )


@DATASETS.register("mnist")
def mnist(root: Path | None = None, download: bool = False) -> SourceImages:
    """MNIST (LeCun et al. 1998): 60k/10k 28x28 greyscale digits, through torchvision.

    ``root``: a folder with the four original idx files (gzipped or not, e.g.
    ``../shared/data/images/mnist-idx``) or a torchvision root holding ``MNIST/raw``;
    default: the cache, filled only with ``download=True``.
    """
    return _idx_dataset("mnist", "MNIST", root, download, 0.1307, 0.3081)


@DATASETS.register("fashion-mnist")
def fashion_mnist(root: Path | None = None, download: bool = False) -> SourceImages:
    """Fashion-MNIST (Xiao et al. 2017): 60k/10k 28x28 greyscale clothing images.

    ``root``: a folder with the four idx files, e.g. ``/usr/share/datasets/fashion-mnist``
    from the Debian package ``dataset-fashion-mnist``, or a torchvision root holding
    ``FashionMNIST/raw``; default: the cache, filled only with ``download=True``.
    """
    return _idx_dataset("fashion-mnist", "FashionMNIST", root, download, 0.2860, 0.3530)


# ------------------------------------------------------------------------ CIFAR
def _cifar(name: str, tv_name: str, folder: str, root: Path | None, download: bool,
           mean: tuple[float, ...], std: tuple[float, ...]) -> SourceImages:
    import torchvision

    base = cache_dir("torchvision") if root is None else root
    if not download and not (base / folder).is_dir():
        raise DataError(
            f"{name} not found: expected torchvision's {folder}/ folder in {str(base)!r}; "
            "pass root= the folder that contains it, or set download: true"
        )
    tv_class = getattr(torchvision.datasets, tv_name)
    try:
        train = tv_class(str(base), train=True, download=download)
        test = tv_class(str(base), train=False, download=download)
    except (RuntimeError, OSError) as exc:
        raise DataError(f"cannot load {name} from {str(base)!r}: {exc}") from None
    return SourceImages(
        train_images=_nchw(train.data),
        train_labels=torch.as_tensor(train.targets, dtype=torch.int64),
        test_images=_nchw(test.data),
        test_labels=torch.as_tensor(test.targets, dtype=torch.int64),
        classes=tuple(train.classes),
        mean=mean,
        std=std,
        augment=True,
    )


@DATASETS.register("cifar10")
def cifar10(root: Path | None = None, download: bool = False) -> SourceImages:
    """CIFAR-10 (Krizhevsky 2009): 50k/10k 32x32 colour images, 10 classes, via torchvision.

    ``root``: the folder holding ``cifar-10-batches-py/``; default: the cache. Nothing is
    downloaded unless ``download=True``.
    """
    return _cifar("cifar10", "CIFAR10", "cifar-10-batches-py", root, download, CIFAR10_MEAN, CIFAR10_STD)


@DATASETS.register("cifar100")
def cifar100(root: Path | None = None, download: bool = False) -> SourceImages:
    """CIFAR-100 (Krizhevsky 2009): 50k/10k 32x32 colour images, 100 classes, via torchvision.

    ``root``: the folder holding ``cifar-100-python/``; default: the cache. Nothing is
    downloaded unless ``download=True``.
    """
    return _cifar("cifar100", "CIFAR100", "cifar-100-python", root, download, CIFAR100_MEAN, CIFAR100_STD)


# ------------------------------------------------------------------- image folders
_TREE_HINT = "an ImageFolder tree with train/<class>/<image> and test/<class>/<image>"


def _find_tree(folder: Path) -> Path | None:
    """``folder`` or its only subfolder, whichever holds ``train/`` and ``test/``."""
    if (folder / "train").is_dir() and (folder / "test").is_dir():
        return folder
    subs = [p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")]
    if len(subs) == 1 and (subs[0] / "train").is_dir() and (subs[0] / "test").is_dir():
        return subs[0]
    return None


def _decode_folder(folder: Path, image_size: int | None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    from PIL import Image
    from torchvision.datasets import ImageFolder

    try:
        tree = ImageFolder(str(folder))
    except (FileNotFoundError, OSError) as exc:
        raise DataError(f"cannot read image folder {str(folder)!r}: {exc}") from None
    arrays = []
    for path, _ in tree.samples:
        try:
            with Image.open(path) as opened:
                img = opened.convert("RGB")
                if image_size is not None and img.size != (image_size, image_size):
                    img = img.resize((image_size, image_size), Image.Resampling.BILINEAR)
                arrays.append(np.asarray(img, dtype=np.uint8))
        except OSError as exc:
            raise DataError(f"cannot decode image {path!r}: {exc}") from None
    shapes = {a.shape for a in arrays}
    if len(shapes) > 1:
        raise DataError(
            f"images in {str(folder)!r} have different sizes "
            f"({', '.join(str(s[:2]) for s in sorted(shapes)[:4])}, ...); "
            "set the image_size option to resize them to one square size"
        )
    images = np.stack(arrays).transpose(0, 3, 1, 2)
    return np.ascontiguousarray(images), np.asarray(tree.targets, dtype=np.int64), list(tree.classes)


@DATASETS.register("imagefolder")
def imagefolder(root: Path | None = None, image_size: int | None = None) -> SourceImages:
    """Any torchvision ``ImageFolder`` tree with ``train/`` and ``test/`` subfolders.

    ``root`` is the tree (or a folder whose only subfolder is the tree), or a
    ``.tar``/``.tar.gz`` archive of it, extracted once into the cache (members escaping
    the archive's root are refused). The decoded images are stored as ``uint8`` arrays in
    the cache, so only the first load decodes them. Images must share one size unless
    ``image_size`` resizes them to ``image_size x image_size``. CIFAR-10-like trees
    (CIFAR-10's ten class names, 32x32) use the CIFAR-10 normalisation and random crop +
    flip by default; otherwise means and standard deviations are computed from the
    training split and augmentation is on for 32x32 images only.
    """
    if root is None:
        raise DataError(f"dataset 'imagefolder' needs a root: {_TREE_HINT}, or a .tar.gz of one")
    if not root.exists():
        raise DataError(f"imagefolder root {str(root)!r} does not exist; expected {_TREE_HINT}, or a .tar.gz of one")
    is_archive = root.is_file()
    if is_archive and not tarfile.is_tarfile(root):
        raise DataError(f"imagefolder root {str(root)!r} is a file but not a tar archive; expected {_TREE_HINT}")
    stem = root.name.removesuffix(".gz").removesuffix(".tgz").removesuffix(".tar")
    entry = cache_dir("imagefolder", f"{stem}-{fingerprint(root)}")
    arrays_file = entry / f"arrays-{image_size or 'native'}.npz"
    if not arrays_file.is_file():
        if is_archive:
            extracted = build_dir_atomically(entry / "tree", lambda tmp: extract_tar_safely(root, tmp))
            tree = _find_tree(extracted)
        else:
            tree = _find_tree(root)
        if tree is None:
            raise DataError(f"imagefolder root {str(root)!r} does not hold {_TREE_HINT}")
        train_x, train_y, classes = _decode_folder(tree / "train", image_size)
        test_x, test_y, test_classes = _decode_folder(tree / "test", image_size)
        if classes != test_classes:
            raise DataError(
                f"imagefolder {str(root)!r}: train/ classes {classes} differ from test/ classes {test_classes}"
            )
        save_arrays_atomically(
            arrays_file,
            {"train_x": train_x, "train_y": train_y, "test_x": test_x, "test_y": test_y, "classes": np.array(classes)},
        )
    with np.load(arrays_file) as data:
        train_x, train_y = data["train_x"], data["train_y"]
        test_x, test_y = data["test_x"], data["test_y"]
        classes = [str(c) for c in data["classes"]]
    size = tuple(train_x.shape[2:])
    cifar_like = tuple(classes) == CIFAR10_CLASSES and size == (32, 32)
    return SourceImages(
        train_images=torch.from_numpy(train_x),
        train_labels=torch.from_numpy(train_y),
        test_images=torch.from_numpy(test_x),
        test_labels=torch.from_numpy(test_y),
        classes=tuple(classes),
        mean=CIFAR10_MEAN if cifar_like else None,
        std=CIFAR10_STD if cifar_like else None,
        augment=size == (32, 32),
    )


def source_options(name: str) -> tuple[str, ...]:
    """The options (keyword arguments besides ``root``) the dataset ``name`` accepts."""
    import inspect

    params = inspect.signature(DATASETS.get(name)).parameters
    return tuple(p for p in params if p != "root")


def as_path(root: str | os.PathLike[str] | None) -> Path | None:
    """``root`` as an expanded path (None stays None)."""
    return None if root is None or str(root) == "" else Path(root).expanduser()
