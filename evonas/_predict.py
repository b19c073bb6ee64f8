"""``evonas predict RUN_DIR PATH...``: class probabilities of image files from an exported ensemble.

Every image is checked (channels and size, :func:`evonas.export.image_pixels`) before
any is classified, and all predictions are made before anything is written, so bad
input ends with one error line and no output. The CSV has the columns ``path``,
``label``, ``class``, ``confidence`` and one ``prob_<class>`` per class.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from evonas.config import MAX_BATCH_SIZE, check_int, from_dict
from evonas.errors import DataError
from evonas.export import EnsembleModel, Preprocessing, check_image, image_pixels, load_ensemble

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")


def find_images(paths: Sequence[str | os.PathLike[str]]) -> list[Path]:
    """The image files of ``paths``: files as given, folders searched recursively (sorted).

    Symbolic links to folders are not followed; a file named twice is listed once.

    Raises:
        DataError: A path does not exist, a file is not an image (by its suffix), or no
            image is found.
    """
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            inside = []
            for folder, dirs, files in os.walk(path):
                dirs[:] = [d for d in dirs if not d.startswith(".")]
                inside += [Path(folder) / f for f in files if f.lower().endswith(IMAGE_SUFFIXES) and not f.startswith(".")]
            found += sorted(inside)
        elif path.is_file():
            if not path.name.lower().endswith(IMAGE_SUFFIXES):
                raise DataError(f"{str(path)!r} is not an image file; expected one of {', '.join(IMAGE_SUFFIXES)}")
            found.append(path)
        else:
            raise DataError(f"{str(path)!r} does not exist; expected image files or folders of them")
    unique = list(dict.fromkeys(found))
    if not unique:
        shown = ", ".join(repr(str(p)) for p in paths)
        raise DataError(f"no image files ({', '.join(IMAGE_SUFFIXES)}) found in {shown}")
    return unique


def _pixels(path: Path, preprocessing: Preprocessing) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return image_pixels(image, preprocessing, repr(str(path)))
    except (UnidentifiedImageError, OSError) as exc:
        raise DataError(f"cannot read image {str(path)!r}: {exc}") from None


def _check_header(path: Path, preprocessing: Preprocessing) -> None:
    """Check mode and size, from the file's header where that suffices."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            check_image(image, preprocessing, repr(str(path)))
    except (UnidentifiedImageError, OSError) as exc:
        raise DataError(f"cannot read image {str(path)!r}: {exc}") from None


@torch.no_grad()
def predict_files(model: EnsembleModel, files: Sequence[Path], batch_size: int = 256) -> np.ndarray:
    """The ensemble's probabilities of image files.

    Args:
        model: The loaded ensemble.
        files: Image files.
        batch_size: Images per forward pass.

    Returns:
        float64 probabilities. Shapes: ``(len(files), K)``.

    Raises:
        DataError: An unreadable image, or one of other channels or size.
    """
    check_int(batch_size, "--batch-size", 1, MAX_BATCH_SIZE)
    spec = from_dict(Preprocessing, model.preprocessing, "preprocessing")
    for path in files:
        _check_header(path, spec)
    out = []
    for start in range(0, len(files), batch_size):
        pixels = np.stack([_pixels(p, spec) for p in files[start : start + batch_size]])
        out.append(model(model.preprocess(pixels)).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, len(model.classes)))


def predictions_csv(files: Sequence[Path], probs: np.ndarray, classes: Sequence[str]) -> str:
    """The CSV text of :func:`predict_files`' result (see the module docstring)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["path", "label", "class", "confidence", *(f"prob_{c}" for c in classes)])
    labels = probs.argmax(axis=1)
    for path, label, row in zip(files, labels, probs):
        writer.writerow([str(path), int(label), classes[int(label)], f"{row[label]:.8g}", *(f"{p:.8g}" for p in row)])
    return buffer.getvalue()


def _check_output(output: Path, force: bool) -> None:
    if output.is_dir():
        raise DataError(f"--output {str(output)!r} is a folder; give the path of a CSV file")
    if os.path.lexists(output) and not force:
        raise DataError(f"--output {str(output)!r} already exists; pass --force to overwrite it")
    if not output.parent.is_dir():
        raise DataError(f"the folder of --output {str(output)!r} does not exist")


def predict_command(args: argparse.Namespace) -> int:
    """Run ``evonas predict`` (arguments of the ``predict`` sub-command)."""
    from evonas.runs import atomic_write_bytes

    output = None if args.output is None else Path(args.output)
    if output is not None:
        _check_output(output, args.force)
    check_int(args.batch_size, "--batch-size", 1, MAX_BATCH_SIZE)
    model = load_ensemble(args.run_dir)
    files = find_images(args.paths)
    probs = predict_files(model, files, args.batch_size)
    text = predictions_csv(files, probs, model.classes)
    if output is None:
        sys.stdout.write(text)
        return 0
    _check_output(output, args.force)
    atomic_write_bytes(output, text.encode())
    print(f"{len(files)} predictions of ensemble {model.label!r} written to {output}")
    return 0


__all__ = ["IMAGE_SUFFIXES", "find_images", "predict_command", "predict_files", "predictions_csv"]
