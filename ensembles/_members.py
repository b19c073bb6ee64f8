"""Ensemble members and candidate pools, stored on disk as plain files.

A :class:`Member` is a trained model reduced to what ensembling needs: its logits on the
validation and test samples, its architecture and size, and where its checkpoint lives.
A :class:`CandidatePool` holds the members of one ensemble-building run together with the
validation and test labels they share. Both are saved as a directory of YAML and ``.npz``
files, so pruning and evaluation can be re-run without retraining (the checkpoint path is
recorded but never needed to reload logits)::

    <pool>/pool.yaml             member order, number of classes
    <pool>/labels.npz            val (and test) labels
    <pool>/members/<name>/member.yaml   name, space and network sections, arch, num_params,
                                        in_channels, checkpoint, metadata
    <pool>/members/<name>/logits.npz    val (and test) logits

A member records its search space and its network decoder as ``{name, params}``
sections, so :func:`ensembles.load_member_model` rebuilds the trained network of any
registered space and decoder.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ensembles._combine import softmax_logits
from ensembles._validation import as_labels
from evonas._files import atomic_write_bytes, write_npz
from evonas.config import ComponentConfig, check_int, from_dict, to_dict, yaml_mapping
from evonas.errors import ConfigError, DataError
from evonas.spaces import SearchSpace

MEMBER_FORMAT = "evonas-ensemble-member/2"
POOL_FORMAT = "evonas-candidate-pool/1"
_MEMBER_YAML = "member.yaml"
_LOGITS_FILE = "logits.npz"
_POOL_YAML = "pool.yaml"
_LABELS_FILE = "labels.npz"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def _plain(value: Any, where: str) -> Any:
    """Return ``value`` as YAML-safe builtins (numpy scalars unwrapped), or raise."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise DataError(f"{where} keys must be strings; got key {key!r}")
            out[key] = _plain(item, f"{where}.{key}")
        return out
    if isinstance(value, (list, tuple)):
        return [_plain(item, f"{where}[{i}]") for i, item in enumerate(value)]
    raise DataError(
        f"{where} must hold only strings, numbers, booleans, None, lists and mappings; "
        f"got {type(value).__name__} {value!r}"
    )


def _logits(value: Any, member: str, field: str) -> np.ndarray:
    arr = np.asarray(value)
    if not np.issubdtype(arr.dtype, np.floating):
        raise DataError(f"member {member!r}: {field} must be a float array; got dtype {arr.dtype} (shape {arr.shape})")
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] < 2:
        raise DataError(
            f"member {member!r}: {field} must have shape (num_samples >= 1, num_classes >= 2); got shape {arr.shape}"
        )
    bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
    if bad:
        raise DataError(f"member {member!r}: {field} of shape {arr.shape} contain {bad} NaN or infinite values")
    arr = np.array(arr, copy=True)
    arr.setflags(write=False)
    return arr


@dataclasses.dataclass(frozen=True, eq=False)
class Member:
    """One trained candidate model, as stored logits.

    Args:
        name: Unique name in its pool, also its directory name: letters, digits,
            ``_ . -``, starting with a letter or digit, at most 128 characters.
        val_logits: Logits on the validation samples (float array).
        test_logits: Logits on the test samples, or ``None`` if not computed.
        arch: Genotype of the member in ``space`` (validated), or ``None``.
        space: The search space of ``arch``, ``{name, params}`` (default ``nb201``).
        network: The decoder that built the member's network, ``{name, params}``, or
            ``None`` (logits only; the network cannot be rebuilt).
        num_params: Number of trainable parameters, or ``None``.
        in_channels: Image channels the network takes, or ``None``.
        checkpoint: Path of the model's checkpoint, recorded only.
        metadata: Extra YAML-safe information (seed, epochs, training time, ...).

    Shapes:
        val_logits: ``(N_val, C)``; test_logits: ``(N_test, C)``.

    Raises:
        DataError: A malformed field; the message names the member and the shape.
        UnknownChoiceError: ``space`` names no registered space.
        ArchError: ``arch`` is not a genotype of ``space``.
    """

    name: str
    val_logits: np.ndarray
    test_logits: np.ndarray | None = None
    arch: tuple[int, ...] | None = None
    space: ComponentConfig = dataclasses.field(default_factory=lambda: ComponentConfig("nb201"))
    network: ComponentConfig | None = None
    num_params: int | None = None
    in_channels: int | None = None
    checkpoint: str | None = None
    metadata: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise DataError(
                f"member name {self.name!r} is invalid; use 1-128 letters, digits, '_', '.' or '-', "
                "starting with a letter or digit"
            )
        name = self.name
        val = _logits(self.val_logits, name, "val_logits")
        object.__setattr__(self, "val_logits", val)
        if self.test_logits is not None:
            test = _logits(self.test_logits, name, "test_logits")
            if test.shape[1] != val.shape[1]:
                raise DataError(
                    f"member {name!r}: test_logits of shape {test.shape} and val_logits of shape {val.shape} "
                    "disagree on the number of classes"
                )
            object.__setattr__(self, "test_logits", test)
        for key in ("space", "network"):
            section = getattr(self, key)
            if not isinstance(section, ComponentConfig) and not (key == "network" and section is None):
                raise DataError(
                    f"member {name!r}: {key} must be a ComponentConfig {{name, params}}"
                    f"{' or None' if key == 'network' else ''}; got {section!r}"
                )
        space = self.built_space()
        if self.arch is not None:
            object.__setattr__(self, "arch", tuple(space.validate(self.arch)))
        for key in ("num_params", "in_channels"):
            count = check_int(getattr(self, key), key, 0, optional=True, owner=f"member {name!r}", error=DataError)
            object.__setattr__(self, key, count)
        if self.checkpoint is not None:
            if not isinstance(self.checkpoint, (str, os.PathLike)):
                raise DataError(f"member {name!r}: checkpoint must be a path or None; got {self.checkpoint!r}")
            object.__setattr__(self, "checkpoint", os.fspath(self.checkpoint))
        if not isinstance(self.metadata, Mapping):
            raise DataError(f"member {name!r}: metadata must be a mapping; got {self.metadata!r}")
        object.__setattr__(self, "metadata", _plain(self.metadata, f"member {name!r} metadata"))

    # ----------------------------------------------------------------------- accessors
    def built_space(self) -> SearchSpace:
        """The member's search space, built from its ``space`` section."""
        space: SearchSpace = self.space.build("space")
        return space

    @property
    def arch_str(self) -> str | None:
        """The architecture string of :attr:`arch` in its space (None without an arch)."""
        return None if self.arch is None else self.built_space().format(self.arch)

    @property
    def num_classes(self) -> int:
        """Number of classes ``C``."""
        return int(self.val_logits.shape[1])

    def val_probs(self) -> np.ndarray:
        """Softmax of the validation logits, float64, shape ``(N_val, C)``."""
        return softmax_logits(self.val_logits)

    def test_probs(self) -> np.ndarray:
        """Softmax of the test logits, float64, shape ``(N_test, C)``.

        Raises:
            DataError: The member has no test logits.
        """
        if self.test_logits is None:
            raise DataError(f"member {self.name!r} has no test logits")
        return softmax_logits(self.test_logits)

    # ------------------------------------------------------------------------- on disk
    def save(self, directory: str | os.PathLike[str], overwrite: bool = False) -> Path:
        """Write ``member.yaml`` and ``logits.npz`` into ``directory`` (created if needed).

        Raises:
            DataError: ``directory`` already holds a member and ``overwrite`` is false.
        """
        path = Path(directory)
        if (path / _MEMBER_YAML).exists() and not overwrite:
            raise DataError(f"{path} already holds a member; pass overwrite=True to replace it")
        path.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, Any] = {"val": self.val_logits}
        if self.test_logits is not None:
            arrays["test"] = self.test_logits
        write_npz(path / _LOGITS_FILE, arrays)
        record = {
            "format": MEMBER_FORMAT,
            "name": self.name,
            "space": to_dict(self.space),
            "network": None if self.network is None else to_dict(self.network),
            "arch": list(self.arch) if self.arch is not None else None,
            "arch_str": self.arch_str,
            "num_params": self.num_params,
            "in_channels": self.in_channels,
            "checkpoint": self.checkpoint,
            "num_classes": self.num_classes,
            "val_shape": list(self.val_logits.shape),
            "test_shape": list(self.test_logits.shape) if self.test_logits is not None else None,
            "metadata": dict(self.metadata),
        }
        atomic_write_bytes(path / _MEMBER_YAML, yaml.safe_dump(record, sort_keys=False).encode())
        return path

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> Member:
        """Read a member written by :meth:`save`.

        Raises:
            DataError: Missing or malformed files, or logits whose shapes disagree with
                the recorded ones.
        """
        path = Path(directory)
        record = _read_yaml(path / _MEMBER_YAML, MEMBER_FORMAT)
        required = {"name", "space", "network", "arch", "num_params", "in_channels", "checkpoint", "val_shape",
                    "test_shape", "metadata"}
        missing = sorted(required - set(record))
        if missing:
            raise DataError(f"{path / _MEMBER_YAML} lacks the keys {', '.join(missing)}")
        arrays = _read_npz(path / _LOGITS_FILE)
        if "val" not in arrays:
            raise DataError(f"{path / _LOGITS_FILE} has no 'val' logits; it holds {sorted(arrays)}")
        for key, shape_key in (("val", "val_shape"), ("test", "test_shape")):
            recorded = record[shape_key]
            actual = list(arrays[key].shape) if key in arrays else None
            if recorded != actual:
                raise DataError(
                    f"{path}: {key} logits have shape {actual}, but {_MEMBER_YAML} records {recorded}"
                )
        return cls(
            name=record["name"],
            val_logits=arrays["val"],
            test_logits=arrays.get("test"),
            arch=tuple(record["arch"]) if record["arch"] is not None else None,
            space=_section(record["space"], path, "space"),
            network=None if record["network"] is None else _section(record["network"], path, "network"),
            num_params=record["num_params"],
            in_channels=record["in_channels"],
            checkpoint=record["checkpoint"],
            metadata=record["metadata"] or {},
        )


def _section(value: Any, path: Path, key: str) -> ComponentConfig:
    """A ``{name, params}`` section of ``member.yaml`` as a ComponentConfig."""
    try:
        section: ComponentConfig = from_dict(ComponentConfig, value, key)
    except ConfigError as exc:
        raise DataError(f"{path / _MEMBER_YAML}: {exc}") from None
    return section


def _read_yaml(path: Path, expected_format: str) -> dict[str, Any]:
    if not path.is_file():
        raise DataError(f"{path} does not exist")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path} cannot be read: {exc.strerror}") from None
    record = yaml_mapping(data, str(path), DataError)
    if record.get("format") != expected_format:
        raise DataError(f"{path} is not a {expected_format!r} file; its format is {record.get('format')!r}")
    return record


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise DataError(f"{path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except (OSError, ValueError) as exc:
        raise DataError(f"{path} is not a readable .npz file: {exc}") from None


@dataclasses.dataclass(frozen=True, eq=False)
class CandidatePool:
    """The candidate members of one ensemble with the labels they share.

    Args:
        members: At least one :class:`Member`, unique names, all with validation logits
            of the same shape and either all or none with test logits of one shape.
        val_labels: Validation labels, one per validation sample.
        test_labels: Test labels, or ``None``; requires every member's test logits.

    Shapes:
        val_labels: ``(N_val,)``; test_labels: ``(N_test,)``.

    Raises:
        DataError: An empty list, a duplicate name, mismatched shapes (the message names
            both members and their shapes), or labels out of ``0..C-1``.
    """

    members: tuple[Member, ...]
    val_labels: np.ndarray
    test_labels: np.ndarray | None = None

    def __post_init__(self) -> None:
        members = tuple(self.members)
        if not members:
            raise DataError("the candidate list is empty; an ensemble needs at least one member")
        for i, m in enumerate(members):
            if not isinstance(m, Member):
                raise DataError(f"candidate {i} must be a Member; got {type(m).__name__}")
        names = [m.name for m in members]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise DataError(f"member names must be unique; repeated: {', '.join(duplicates)}")
        first = members[0]
        for m in members[1:]:
            if m.val_logits.shape != first.val_logits.shape:
                raise DataError(
                    f"member {m.name!r} has val_logits of shape {m.val_logits.shape}; expected "
                    f"{first.val_logits.shape} like member {first.name!r}"
                )
            if (m.test_logits is None) != (first.test_logits is None):
                has, lacks = (m, first) if first.test_logits is None else (first, m)
                raise DataError(f"member {has.name!r} has test logits but member {lacks.name!r} has none")
            if (
                m.test_logits is not None
                and first.test_logits is not None
                and m.test_logits.shape != first.test_logits.shape
            ):
                raise DataError(
                    f"member {m.name!r} has test_logits of shape {m.test_logits.shape}; expected "
                    f"{first.test_logits.shape} like member {first.name!r}"
                )
        num_val, num_classes = first.val_logits.shape
        val_labels = as_labels(self.val_labels, num_val, num_classes, what="val_labels")
        val_labels.setflags(write=False)
        test_labels = None
        if self.test_labels is not None:
            if first.test_logits is None:
                raise DataError("test_labels were given but the members have no test logits")
            test_labels = as_labels(self.test_labels, first.test_logits.shape[0], num_classes, what="test_labels")
            test_labels.setflags(write=False)
        object.__setattr__(self, "members", members)
        object.__setattr__(self, "val_labels", val_labels)
        object.__setattr__(self, "test_labels", test_labels)

    # ----------------------------------------------------------------------- accessors
    def __len__(self) -> int:
        return len(self.members)

    def __iter__(self) -> Iterator[Member]:
        return iter(self.members)

    def __getitem__(self, index: int) -> Member:
        return self.members[index]

    @property
    def names(self) -> list[str]:
        """Member names in pool order."""
        return [m.name for m in self.members]

    @property
    def num_classes(self) -> int:
        """Number of classes ``C``."""
        return self.members[0].num_classes

    @property
    def has_test(self) -> bool:
        """Whether the members carry test logits."""
        return self.members[0].test_logits is not None

    def val_probs(self) -> np.ndarray:
        """Members' validation distributions, shape ``(M, N_val, C)``."""
        return np.stack([m.val_probs() for m in self.members])

    def test_probs(self) -> np.ndarray:
        """Members' test distributions, shape ``(M, N_test, C)``.

        Raises:
            DataError: The members have no test logits.
        """
        return np.stack([m.test_probs() for m in self.members])

    def subset(self, indices: Sequence[int]) -> CandidatePool:
        """A pool of the members at ``indices`` (in that order), with the same labels.

        Raises:
            DataError: An index out of range, a repeated index (names must stay unique),
                or no index.
        """
        idx = [int(i) for i in indices]
        bad = [i for i in idx if not 0 <= i < len(self.members)]
        if bad:
            raise DataError(f"member indices {bad} are out of range 0..{len(self.members) - 1}")
        return CandidatePool(tuple(self.members[i] for i in idx), self.val_labels, self.test_labels)

    # ------------------------------------------------------------------------- on disk
    def save(self, root: str | os.PathLike[str], overwrite: bool = False, save_members: bool = True) -> Path:
        """Write the pool under ``root``: ``pool.yaml``, ``labels.npz``, ``members/<name>/``.

        Args:
            root: The pool directory (created if needed).
            overwrite: Replace an existing pool (and its members' files).
            save_members: Also write every member. With False only the index and the
                labels are written, for members saved one by one as they were trained;
                each must then already load from ``members/<name>/`` as it is in the pool.

        Raises:
            DataError: ``root`` already holds a pool and ``overwrite`` is false, or (with
                ``save_members=False``) a member on disk is missing or differs.
        """
        path = Path(root)
        if (path / _POOL_YAML).exists() and not overwrite:
            raise DataError(f"{path} already holds a candidate pool; pass overwrite=True to replace it")
        path.mkdir(parents=True, exist_ok=True)
        for m in self.members:
            if save_members:
                m.save(path / "members" / m.name, overwrite=overwrite)
                continue
            on_disk = Member.load(path / "members" / m.name)
            if not (
                on_disk.name == m.name
                and np.array_equal(on_disk.val_logits, m.val_logits)
                and (on_disk.test_logits is None) == (m.test_logits is None)
                and (
                    m.test_logits is None
                    or (on_disk.test_logits is not None and np.array_equal(on_disk.test_logits, m.test_logits))
                )
            ):
                raise DataError(f"{path / 'members' / m.name} holds other logits than member {m.name!r} of the pool")
        labels: dict[str, Any] = {"val": self.val_labels}
        if self.test_labels is not None:
            labels["test"] = self.test_labels
        write_npz(path / _LABELS_FILE, labels)
        record = {"format": POOL_FORMAT, "num_classes": self.num_classes, "members": self.names}
        atomic_write_bytes(path / _POOL_YAML, yaml.safe_dump(record, sort_keys=False).encode())
        return path

    @classmethod
    def load(cls, root: str | os.PathLike[str]) -> CandidatePool:
        """Read a pool written by :meth:`save`.

        Raises:
            DataError: Missing or malformed files, or members inconsistent with each other
                or with the labels.
        """
        path = Path(root)
        record = _read_yaml(path / _POOL_YAML, POOL_FORMAT)
        names = record.get("members")
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise DataError(f"{path / _POOL_YAML}: 'members' must be a list of member names; got {names!r}")
        members = tuple(Member.load(path / "members" / n) for n in names)
        for n, m in zip(names, members):
            if m.name != n:
                raise DataError(f"{path / 'members' / n} holds member {m.name!r}, not {n!r}")
        labels = _read_npz(path / _LABELS_FILE)
        if "val" not in labels:
            raise DataError(f"{path / _LABELS_FILE} has no 'val' labels; it holds {sorted(labels)}")
        return cls(members, labels["val"], labels.get("test"))
