"""Exported ensembles: a chosen sub-ensemble of an ``ensemble`` run as a self-contained folder.

:func:`write_export` takes one row of a finished ensemble build (``evonas ensemble
build``) - a pruner's sub-ensemble or a baseline - and writes everything needed to use it
without the run directory, the training data or the config::

    EXPORT/
      ensemble.yaml          format, label, members (architecture, weight, space and decoder
                             sections, parameters, checksum), classes, preprocessing,
                             the row's validation / test accuracy, the source run
      members/<name>.pt      the member's trained weights (a ``state_dict``)
      members/<name>.yaml    a copy of the member's ``member.yaml``

:func:`load_ensemble` rebuilds it as an :class:`EnsembleModel`: an ``nn.Module`` whose
forward pass averages the members' softmax probabilities with the row's weights - the
combination of :func:`ensembles.combine_probs` (deep ensembles, Lakshminarayanan et al.,
NeurIPS 2017) - so it reproduces the row's test accuracy on the run's test split. Weights
are read with ``torch.load(weights_only=True)``: loading an export never unpickles code.

The preprocessing is the training pipeline's (:class:`evonas.data.ImageTensorDataset`):
8-bit pixels divided by 255 into ``[0, 1]``, then ``(x - mean) / std`` per channel with the
statistics of the run's training split. ``evonas predict`` applies it to image files.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import io
import math
import os
import pickle  # only for its error type: weights load with weights_only=True
import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import yaml
from torch import nn

from evonas._files import make_temp_dir
from evonas.config import ComponentConfig, from_dict, to_dict, yaml_mapping
from evonas.errors import ArchError, ConfigError, DataError, RunDirError, UnknownChoiceError

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

    from ensembles._evaluate import EnsembleRow
    from evonas.runs import RunDir

EXPORT_FORMAT = "evonas-ensemble-export/1"
EXPORT_FILE = "ensemble.yaml"
EXPORT_DIR = "export"
"""Where a pipeline run directory keeps its export (``RUN_DIR/export/``)."""
MEMBERS_DIR = "members"
PIXEL_SCALE = 1.0 / 255.0
INPUT_RULE = "8-bit pixels / 255 (to [0, 1]), then (x - mean) / std per channel; float32 (N, C, H, W)"
IMAGE_MODES = {1: "L", 3: "RGB"}
"""The PIL mode of an image with that many channels."""

_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
_EXPECTED = f"an export folder holding {EXPORT_FILE}, or a run directory holding {EXPORT_DIR}/{EXPORT_FILE}"


# ---------------------------------------------------------------------------- records
@dataclasses.dataclass(frozen=True)
class Preprocessing:
    """How images become the float batch an exported ensemble takes.

    Attributes:
        in_channels: Image channels ``C`` (1: greyscale, PIL mode ``L``; 3: ``RGB``).
        image_size: ``(H, W)``; images must have exactly this size.
        mean: Per-channel means of the pixels in ``[0, 1]`` (the training split's).
        std: Per-channel standard deviations, likewise.
        pixel_scale: Factor turning 8-bit pixels into ``[0, 1]``.
        input: The rule in words.
    """

    in_channels: int
    image_size: tuple[int, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    pixel_scale: float = PIXEL_SCALE
    input: str = INPUT_RULE

    def __post_init__(self) -> None:
        if self.in_channels < 1:
            raise ConfigError(f"in_channels must be >= 1; got {self.in_channels}")
        if len(self.image_size) != 2 or min(self.image_size) < 1:
            raise ConfigError(f"image_size must be [height, width] of positive integers; got {list(self.image_size)}")
        for key in ("mean", "std"):
            values = getattr(self, key)
            if len(values) != self.in_channels or not all(math.isfinite(v) for v in values):
                raise ConfigError(f"{key} needs {self.in_channels} finite values, one per channel; got {list(values)}")
        if min(self.std) <= 0 or not 0 < self.pixel_scale <= 1:
            raise ConfigError(f"std must be positive and pixel_scale in (0, 1]; got {list(self.std)}, {self.pixel_scale}")


@dataclasses.dataclass(frozen=True)
class ExportedMember:
    """One member of an export (its weights are ``members/<name>.pt``).

    Attributes:
        name: The member's name in its run (letters, digits, ``_ . -``).
        arch: Its architecture string in ``space``.
        weight: Its combination weight (the weights of an export sum to 1).
        space: The search space, ``{name, params}`` (from ``member.yaml``).
        network: The decoder that builds its network, ``{name, params}``.
        num_params: Trainable parameters, or None if unknown.
        sha256: Checksum of its weights file.
    """

    name: str
    arch: str
    weight: float
    space: ComponentConfig
    network: ComponentConfig
    num_params: int | None
    sha256: str

    def __post_init__(self) -> None:
        if not self.name or not set(self.name) <= _NAME_CHARS or not self.name[0].isalnum():
            raise ConfigError(f"member name {self.name!r} is invalid; use letters, digits, '_', '.' or '-'")
        if not math.isfinite(self.weight) or self.weight < 0:
            raise ConfigError(f"member {self.name!r}: weight must be a finite number >= 0; got {self.weight!r}")

    @property
    def weights_file(self) -> str:
        """Path of its weights inside the export."""
        return f"{MEMBERS_DIR}/{self.name}.pt"

    @property
    def member_file(self) -> str:
        """Path of its ``member.yaml`` copy inside the export."""
        return f"{MEMBERS_DIR}/{self.name}.yaml"


@dataclasses.dataclass(frozen=True)
class ExportRecord:
    """The contents of ``ensemble.yaml`` (see the module docstring).

    Attributes:
        format: :data:`EXPORT_FORMAT`.
        label: The row of the ensemble run that was exported.
        kind: ``"pruner"`` or ``"baseline"``.
        pruner: The registered pruner of the row, or None for a baseline.
        members: The members in the row's order.
        num_classes: Classes ``K``.
        classes: Class names, indexed by label.
        preprocessing: How images become inputs.
        val_acc: The row's validation accuracy in percent.
        test_acc: The row's test accuracy in percent.
        source: Where it came from: ``run_dir``, ``dataset`` (the run's dataset section),
            ``plugins`` (those the run loaded), ``created``, ``evonas`` version.
    """

    format: str
    label: str
    kind: str
    pruner: str | None
    members: tuple[ExportedMember, ...]
    num_classes: int
    classes: tuple[str, ...]
    preprocessing: Preprocessing
    val_acc: float
    test_acc: float
    source: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.format != EXPORT_FORMAT:
            raise ConfigError(f"format is {self.format!r}; expected {EXPORT_FORMAT!r}")
        if not self.members:
            raise ConfigError("members is empty; an export holds at least one member")
        names = [m.name for m in self.members]
        if len(set(names)) != len(names):
            raise ConfigError(f"member names must be unique; got {names}")
        if sum(m.weight for m in self.members) <= 0:
            raise ConfigError("the member weights are all zero")
        if self.num_classes < 2 or len(self.classes) != self.num_classes:
            raise ConfigError(f"classes must name all {self.num_classes} classes (at least 2); got {list(self.classes)}")


def _parse_record(data: Any, path: Path) -> ExportRecord:
    try:
        return from_dict(ExportRecord, data, "ensemble.yaml")
    except ConfigError as exc:
        raise DataError(
            f"{str(path)!r} is malformed: {' '.join(str(exc).split())}; expected an {EXPORT_FORMAT!r} file "
            "written by evonas.export.write_export"
        ) from None


# ------------------------------------------------------------------------------- rows
def select_row(rows: Sequence[EnsembleRow], label: str | None = None) -> EnsembleRow:
    """The row called ``label``; without one, the best pruner row.

    The best pruner row has the highest validation accuracy (never the test accuracy,
    which is held out); ties go to fewer members, then to the earlier row.

    Args:
        rows: The rows of an ensemble run (``result.json``), in their order.
        label: A row's label, or None.

    Raises:
        DataError: No row is called ``label``, or (``label=None``) no row is a pruner's;
            the message lists the labels.
    """
    labels = ", ".join(repr(r.label) for r in rows) or "(none)"
    if label is not None:
        for row in rows:
            if row.label == label:
                return row
        raise DataError(f"the ensemble run has no row {label!r}; valid labels: {labels}")
    pruners = [(i, r) for i, r in enumerate(rows) if r.kind == "pruner"]
    if not pruners:
        raise DataError(f"the ensemble run has no pruner row to export by default; choose a label among {labels}")

    def key(item: tuple[int, EnsembleRow]) -> tuple[float, int, int]:
        i, row = item
        val = row.val_acc if math.isfinite(row.val_acc) else -math.inf
        return (-val, row.num_members, i)

    return min(pruners, key=key)[1]


# ----------------------------------------------------------------------------- writing
def _no_symlinks(root: Path, path: Path) -> None:
    """Raise unless every component of ``path`` below ``root`` (and ``path``) is no symlink."""
    current = root
    for part in path.relative_to(root).parts:
        current = current / part
        if current.is_symlink():
            raise DataError(f"{str(current)!r} is a symbolic link; an export copies only files inside the run directory")


def _write_file(path: Path, data: bytes) -> None:
    with open(path, "xb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _load_state(data: bytes, where: str, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    try:
        state = torch.load(io.BytesIO(data), map_location=map_location, weights_only=True)
    except (RuntimeError, OSError, EOFError, ValueError, pickle.UnpicklingError) as exc:
        raise DataError(f"cannot read the weights {where}: {_short(exc)}") from None
    if not isinstance(state, dict):
        raise DataError(f"the weights {where} are a {type(state).__name__}, not a state_dict")
    return state


def _short(exc: BaseException, limit: int = 300) -> str:
    """``exc``'s message on one line, cut to ``limit`` characters (torch's run to pages)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _build_member(member: ExportedMember, preprocessing: Preprocessing, num_classes: int, where: str) -> nn.Module:
    """The untrained network of an exported member (its space and decoder must be registered)."""
    from evonas.models import build_network
    from evonas.spaces import SearchSpace

    try:
        space: SearchSpace = member.space.build("space")
        arch = space.parse(member.arch)
        return build_network(member.network, space, arch, num_classes, preprocessing.in_channels)
    except UnknownChoiceError as exc:
        raise DataError(
            f"{where}: {exc}; load the plugin that registers it first (--plugin, evonas.plugins.load_plugin)"
        ) from None
    except (ArchError, ConfigError) as exc:
        raise DataError(f"{where}: member {member.name!r} cannot be rebuilt: {' '.join(str(exc).split())}") from None


def _load_weights(network: nn.Module, state: dict[str, Any], where: str) -> None:
    try:
        network.load_state_dict(state)
    except RuntimeError as exc:
        raise DataError(f"the weights {where} do not fit the member's network: {_short(exc)}") from None


def _gather(run: RunDir, row: EnsembleRow, preprocessing: Preprocessing, num_classes: int
            ) -> tuple[list[ExportedMember], dict[str, bytes]]:
    """The exported members of ``row`` and the files to copy, checked by rebuilding each network."""
    from ensembles._members import Member
    from ensembles._training import CHECKPOINT_FILE

    run_path = Path(os.path.abspath(run.path))
    weights = np.asarray(row.weights, dtype=np.float64)
    if weights.shape != (len(row.members),) or not np.isfinite(weights).all() or (weights < 0).any() or weights.sum() <= 0:
        raise RunDirError(f"row {row.label!r} of {str(run_path)!r} has malformed weights {list(row.weights)}")
    weights = weights / weights.sum()
    members, files = [], {}
    for name, weight in zip(row.members, weights):
        directory = run_path / "pool" / "members" / name
        for file in (CHECKPOINT_FILE, "member.yaml", "logits.npz"):
            _no_symlinks(run_path, directory / file)
        member = Member.load(directory)
        if member.arch is None or member.network is None:
            raise DataError(f"{str(directory)!r} does not record the member's architecture and network decoder")
        if member.in_channels != preprocessing.in_channels or member.num_classes != num_classes:
            raise DataError(
                f"member {name!r} takes {member.in_channels} channels and predicts {member.num_classes} classes, "
                f"but the run's data has {preprocessing.in_channels} channels and {num_classes} classes"
            )
        state_bytes = run.read_bytes(f"pool/members/{name}/{CHECKPOINT_FILE}")  # never through a link
        exported = ExportedMember(
            name=member.name, arch=str(member.arch_str), weight=float(weight), space=member.space,
            network=member.network, num_params=member.num_params, sha256=hashlib.sha256(state_bytes).hexdigest(),
        )
        where = repr(str(directory / CHECKPOINT_FILE))
        network = _build_member(exported, preprocessing, num_classes, where)
        _load_weights(network, _load_state(state_bytes, where), where)
        members.append(exported)
        files[exported.weights_file] = state_bytes
        files[exported.member_file] = run.read_bytes(f"pool/members/{name}/member.yaml")
    return members, files


def _check_target(target: Path, overwrite: bool) -> None:
    if os.path.lexists(target) and not overwrite:
        raise DataError(f"{str(target)!r} already exists; pass overwrite=True to replace the export")


def _install(tmp: Path, target: Path, overwrite: bool) -> None:
    """Rename the finished ``tmp`` to ``target``; an existing target (if ``overwrite``) is
    moved aside first and deleted after, so readers see the old or the new export."""
    _check_target(target, overwrite)  # again: another process may have written it meanwhile
    old = None
    if os.path.lexists(target):
        if target.is_symlink() or not target.is_dir():
            target.unlink()  # the link itself, never what it points to
        else:
            old = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
            os.rename(target, old)
    try:
        os.rename(tmp, target)
    except OSError as exc:
        if old is not None:
            os.rename(old, target)
        raise DataError(f"cannot move the export into {str(target)!r}: {exc.strerror}") from None
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def write_export(
    ensemble_run_dir: str | os.PathLike[str],
    target_dir: str | os.PathLike[str],
    label: str | None = None,
    *,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Write one row of a finished ensemble run as a self-contained export folder.

    The classes and the preprocessing (channels, size, normalisation) are those of the
    run's own dataset config, so they are exactly what the members were trained with.
    Every member's network is rebuilt and its weights loaded before anything is written.
    The folder is built beside ``target_dir`` and renamed into place; files of the run
    directory are read only when they are regular files reached without symbolic links.

    Args:
        ensemble_run_dir: A run directory of kind ``ensemble`` (``evonas ensemble build``)
            with its ``result.json``.
        target_dir: The export folder to create (e.g. ``RUN_DIR/export``).
        label: The row to export (a pruner's label or a baseline); None: the best pruner
            row by validation accuracy (see :func:`select_row`).
        overwrite: Replace an existing export at ``target_dir``.

    Returns:
        The contents of the written ``ensemble.yaml``.

    Raises:
        RunDirError: Not an ensemble run directory, or it has no result yet.
        DataError: An unknown ``label`` (the message lists the rows), a missing or
            malformed member, or ``target_dir`` exists and ``overwrite`` is false.
    """
    from ensembles._config import EnsembleConfig
    from ensembles._evaluate import EnsembleRow
    from evonas import __version__
    from evonas.data import cached_splits
    from evonas.runs import RESULT, open_run

    run, _ = open_run(ensemble_run_dir, kind="ensemble")
    run_path = Path(os.path.abspath(run.path))
    target = Path(os.path.abspath(target_dir))
    _check_target(target, overwrite)
    if not (run_path / RESULT).is_file():
        raise RunDirError(f"ensemble run {str(run_path)!r} has no {RESULT} yet; resume it to finish the build")
    summary = run.read_json(RESULT)
    try:
        rows = [EnsembleRow.from_dict(r) for r in summary["rows"]]
    except (KeyError, TypeError, ValueError, AttributeError):
        raise RunDirError(f"{str(run_path / RESULT)!r} has no well-formed 'rows'") from None
    row = select_row(rows, label)
    config = from_dict(EnsembleConfig, run.config)
    splits = cached_splits(config.dataset)
    preprocessing = Preprocessing(
        in_channels=int(splits.in_channels),
        image_size=tuple(int(s) for s in splits.image_size),
        mean=tuple(float(m) for m in splits.mean),
        std=tuple(float(s) for s in splits.std),
    )
    num_classes = int(splits.num_classes)
    classes = tuple(str(c) for c in splits.classes) or tuple(str(i) for i in range(num_classes))
    members, files = _gather(run, row, preprocessing, num_classes)
    record = ExportRecord(
        format=EXPORT_FORMAT, label=row.label, kind=row.kind, pruner=row.pruner, members=tuple(members),
        num_classes=num_classes, classes=classes, preprocessing=preprocessing,
        val_acc=float(row.val_acc), test_acc=float(row.test_acc),
        source={
            "run_dir": str(run_path),
            "dataset": to_dict(config.dataset),
            "plugins": list(run.meta.get("plugins") or []),
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "evonas": __version__,
        },
    )
    data = to_dict(record)
    if target.parent.is_relative_to(run_path):
        _no_symlinks(run_path, target.parent)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = make_temp_dir(target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        (tmp / MEMBERS_DIR).mkdir()
        for relative, content in files.items():
            _write_file(tmp / relative, content)
        _write_file(tmp / EXPORT_FILE, yaml.safe_dump(data, sort_keys=False).encode())
        _install(tmp, target, overwrite)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return data


# ----------------------------------------------------------------------------- reading
def export_dir(path: str | os.PathLike[str]) -> Path:
    """The export folder of ``path``: an export folder, its ``ensemble.yaml``, or a run
    directory holding ``export/ensemble.yaml``.

    Raises:
        DataError: None of those; the message says what ``path`` is and what to do.
    """
    p = Path(path)
    if p.is_file() and p.name == EXPORT_FILE:
        return p.parent
    for candidate in (p, p / EXPORT_DIR):
        if (candidate / EXPORT_FILE).is_file():
            return candidate
    if not p.exists():
        raise DataError(f"{str(p)!r} does not exist; expected {_EXPECTED}")
    if not p.is_dir():
        raise DataError(f"{str(p)!r} is not a folder; expected {_EXPECTED}")
    kind = _run_kind(p)
    if kind == "pipeline":
        raise DataError(f"{str(p)!r} has no export: run `evonas run --resume {p}` to finish the pipeline")
    if kind == "ensemble":
        raise DataError(
            f"ensemble run {str(p)!r} has no export: write one with "
            f"evonas.export.write_export({str(p)!r}, {str(p / EXPORT_DIR)!r})"
        )
    if kind is not None:
        raise DataError(f"{str(p)!r} is a {kind!r} run, which has no export; expected {_EXPECTED}")
    raise DataError(f"{str(p)!r} is neither an export nor a run directory; expected {_EXPECTED}")


def _run_kind(path: Path) -> str | None:
    from evonas.runs import CONFIG, META

    if not (path / CONFIG).is_file() or not (path / META).is_file():
        return None
    try:
        meta = yaml_mapping((path / META).read_bytes(), repr(str(path / META)), DataError)
    except (OSError, DataError):
        return "unreadable"
    kind = meta.get("kind")
    return str(kind) if kind is not None else "unknown"


def _read_record(folder: Path) -> ExportRecord:
    path = folder / EXPORT_FILE
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read {str(path)!r}: {exc.strerror}") from None
    data = yaml_mapping(raw, repr(str(path)), DataError)
    if data.get("format") != EXPORT_FORMAT:
        raise DataError(f"{str(path)!r} is not an {EXPORT_FORMAT!r} file; its format is {data.get('format')!r}")
    return _parse_record(data, path)


def read_export(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The checked contents of an export's ``ensemble.yaml`` (see :func:`export_dir` for ``path``).

    Raises:
        DataError: No export at ``path``, or a malformed ``ensemble.yaml``.
    """
    return to_dict(_read_record(export_dir(path)))


def load_ensemble(path: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> EnsembleModel:
    """Load an exported ensemble for inference.

    Args:
        path: An export folder (written by :func:`write_export`), or a run directory that
            holds one as ``export/`` (an ``evonas run`` pipeline).
        map_location: The device of the model.

    Returns:
        The ensemble in eval mode.

    Raises:
        DataError: No export at ``path``, a malformed ``ensemble.yaml``, a missing or
            altered weights file, or a space / decoder that is not registered (load the
            plugin that registers it first).
    """
    folder = export_dir(path)
    record = _read_record(folder)
    networks = []
    for member in record.members:
        file = folder / member.weights_file
        where = repr(str(file))
        try:
            data = file.read_bytes()
        except FileNotFoundError:
            raise DataError(
                f"member {member.name!r} of {str(folder / EXPORT_FILE)!r}: its weights {where} are missing; "
                "the export is incomplete, write it again"
            ) from None
        except OSError as exc:
            raise DataError(f"cannot read the weights {where}: {exc.strerror}") from None
        if hashlib.sha256(data).hexdigest() != member.sha256:
            raise DataError(f"the weights {where} differ from those exported (sha256 mismatch); write the export again")
        network = _build_member(member, record.preprocessing, record.num_classes, repr(str(folder / EXPORT_FILE)))
        _load_weights(network, _load_state(data, where, map_location), where)
        networks.append(network)
    model = EnsembleModel(
        networks,
        members=[m.name for m in record.members],
        weights=[m.weight for m in record.members],
        classes=record.classes,
        preprocessing=record.preprocessing,
        label=record.label,
        info=to_dict(record),
    )
    return model.to(map_location).eval()


# ------------------------------------------------------------------------------ images
def check_image(image: PILImage, preprocessing: Preprocessing, where: str = "image") -> PILImage:
    """``image`` in the mode the ensemble takes, checked against ``preprocessing``.

    A palette image is first converted to its natural mode (RGB, or L when its colours
    are all grey; with transparency RGBA / LA), a bilevel one to L and a YCbCr or CMYK one
    to RGB; the image must then have the expected channels (1: mode L, 3: mode RGB) and
    exactly the size. Other images are checked from their header, without decoding.

    Args:
        image: The image.
        preprocessing: What the ensemble takes.
        where: How to name the image in errors (e.g. its file).

    Raises:
        DataError: Other channels or another size; the message names the image, its size
            and channels and the expected ones.
    """
    image = _natural(image)
    height, width = preprocessing.image_size
    expected_mode = IMAGE_MODES.get(preprocessing.in_channels, f"{preprocessing.in_channels} channels")
    if image.mode != expected_mode or image.size != (width, height):
        raise DataError(
            f"{where} is {image.size[0]}x{image.size[1]} with {len(image.getbands())} channel(s) (mode {image.mode}); "
            f"the ensemble takes images of {width}x{height} (width x height) with {preprocessing.in_channels} "
            f"channel(s) (mode {expected_mode})"
        )
    return image


def image_pixels(image: PILImage, preprocessing: Preprocessing, where: str = "image") -> np.ndarray:
    """The 8-bit pixels of a PIL image, checked with :func:`check_image`.

    Returns:
        ``uint8`` pixels. Shapes: ``(C, H, W)``.

    Raises:
        DataError: Other channels or another size than ``preprocessing``'s.
    """
    array = np.asarray(check_image(image, preprocessing, where), dtype=np.uint8)
    return np.ascontiguousarray(array[None] if array.ndim == 2 else array.transpose(2, 0, 1))


def _natural(image: PILImage) -> PILImage:
    if image.mode == "1":
        return image.convert("L")
    if image.mode in ("YCbCr", "CMYK"):
        return image.convert("RGB")
    if image.mode not in ("P", "PA"):
        return image
    converted = image.convert()
    if converted.mode in ("RGB", "RGBA"):
        rgb = np.asarray(converted)[..., :3]
        if (rgb == rgb[..., :1]).all():
            return converted.convert("LA" if converted.mode == "RGBA" else "L")
    return converted


# ------------------------------------------------------------------------------- model
class EnsembleModel(nn.Module):
    """An exported ensemble: the weighted average of its members' softmax probabilities.

    Build it with :func:`load_ensemble`. The forward pass is the arithmetic of
    :func:`ensembles.combine_probs` on the members' logits (softmax in float64, weights
    normalised to sum to 1), so it reproduces the exported row's accuracy.

    Args:
        networks: The members' trained networks, in member order.
        members: Their names.
        weights: Their non-negative combination weights.
        classes: Class names, indexed by label.
        preprocessing: How images become inputs.
        label: The exported row.
        info: The contents of ``ensemble.yaml``.

    Attributes:
        preprocessing: ``in_channels``, ``image_size``, ``mean``, ``std``, ``pixel_scale``,
            ``input`` (a plain dict).
        classes: Class names.
        members: Member names.
        weights: Their normalised weights.
        label: The exported row.
        info: The contents of ``ensemble.yaml``.

    Shapes:
        forward: ``(N, C, H, W)`` normalised float input -> ``(N, K)`` float64 probabilities.
    """

    _weights: torch.Tensor
    _mean: torch.Tensor
    _std: torch.Tensor

    def __init__(
        self,
        networks: Sequence[nn.Module],
        members: Sequence[str],
        weights: Sequence[float],
        classes: Sequence[str],
        preprocessing: Preprocessing,
        label: str,
        info: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        w = np.asarray(weights, dtype=np.float64)
        if len(networks) != len(members) or w.shape != (len(members),) or (w < 0).any() or w.sum() <= 0:
            raise DataError(f"an ensemble needs one non-negative weight per member; got {list(weights)} for {list(members)}")
        self.networks = nn.ModuleList(networks)
        self.members = tuple(str(m) for m in members)
        self.weights = tuple(float(v) for v in w / w.sum())
        self.classes = tuple(str(c) for c in classes)
        self.label = str(label)
        self.info = dict(info or {})
        self._spec = preprocessing
        self.preprocessing: dict[str, Any] = to_dict(preprocessing)
        self.register_buffer("_weights", torch.tensor(self.weights, dtype=torch.float64), persistent=False)
        self.register_buffer("_mean", torch.tensor(preprocessing.mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("_std", torch.tensor(preprocessing.std).view(1, -1, 1, 1), persistent=False)

    @property
    def device(self) -> torch.device:
        """Where the model's buffers are."""
        return self._weights.device

    def _check_input(self, x: torch.Tensor) -> None:
        expected = (self._spec.in_channels, *self._spec.image_size)
        if x.dim() != 4 or tuple(x.shape[1:]) != expected:
            raise DataError(f"the ensemble takes a batch of shape (N, {', '.join(map(str, expected))}); got {tuple(x.shape)}")

    def member_probs(self, x: torch.Tensor) -> torch.Tensor:
        """Each member's softmax probabilities, float64.

        Shapes:
            x: ``(N, C, H, W)`` -> ``(M, N, K)``.
        """
        self._check_input(x)
        return torch.stack([torch.softmax(net(x).to(torch.float64), dim=-1) for net in self.networks])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The ensemble's probabilities of a normalised batch (see :meth:`preprocess`).

        Shapes:
            x: ``(N, C, H, W)`` float -> ``(N, K)`` float64.
        """
        return torch.tensordot(self._weights, self.member_probs(x), dims=1)

    def preprocess(self, images: torch.Tensor | np.ndarray | PILImage | Sequence[PILImage]) -> torch.Tensor:
        """Turn 8-bit images into the normalised batch the model takes, on its device.

        Args:
            images: A ``uint8`` tensor or array of shape ``(N, C, H, W)``, or PIL images
                (one or a list; see :func:`image_pixels` for modes).

        Returns:
            ``(x * pixel_scale - mean) / std`` per channel, float32. Shapes: ``(N, C, H, W)``.

        Raises:
            DataError: Not ``uint8``, or other channels or another size than the ensemble's.
        """
        if isinstance(images, np.ndarray):
            images = torch.from_numpy(images)
        if not isinstance(images, torch.Tensor):
            from PIL.Image import Image

            seq = [images] if isinstance(images, Image) else list(images)
            if not all(isinstance(im, Image) for im in seq):
                raise DataError("preprocess takes a uint8 tensor (N, C, H, W) or PIL images")
            arrays = [image_pixels(im, self._spec, f"image {i}") for i, im in enumerate(seq)]
            height, width = self._spec.image_size
            empty = np.zeros((0, self._spec.in_channels, height, width), dtype=np.uint8)
            images = torch.from_numpy(np.stack(arrays) if arrays else empty)
        if images.dtype != torch.uint8:
            raise DataError(
                f"preprocess takes 8-bit pixels (uint8); got {images.dtype}. A float batch that is already "
                "normalised goes to the model directly"
            )
        self._check_input(images)
        x = images.to(self.device, torch.float32).mul_(self._spec.pixel_scale)
        return (x - self._mean) / self._std

    @torch.no_grad()
    def predict_proba(
        self, images: torch.Tensor | np.ndarray | PILImage | Sequence[PILImage], batch_size: int = 256
    ) -> torch.Tensor:
        """Class probabilities of 8-bit images (:meth:`preprocess`, then the forward pass).

        Returns:
            float64 probabilities on the CPU. Shapes: ``(N, K)``.
        """
        x = self.preprocess(images)
        step = max(1, int(batch_size))
        outputs = [self(x[i : i + step]).cpu() for i in range(0, x.shape[0], step)]
        return torch.cat(outputs) if outputs else torch.zeros(0, len(self.classes), dtype=torch.float64)

    def extra_repr(self) -> str:
        size = "x".join(map(str, self._spec.image_size))
        return (f"label={self.label!r}, members={list(self.members)}, classes={len(self.classes)}, "
                f"input={self._spec.in_channels}x{size}")


__all__ = [
    "EXPORT_DIR",
    "EXPORT_FILE",
    "EXPORT_FORMAT",
    "EnsembleModel",
    "ExportRecord",
    "ExportedMember",
    "Preprocessing",
    "check_image",
    "export_dir",
    "image_pixels",
    "load_ensemble",
    "read_export",
    "select_row",
    "write_export",
]
