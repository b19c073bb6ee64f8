"""The NAS-Bench-201 table: metrics of all 15,625 cells, queried instead of training.

The table is a gzip CSV with one row per architecture (see ``../shared/data/README.md``):
accuracies in percent at 200 and 12 epochs, per-seed 200-epoch CIFAR-10 validation
accuracies, parameter counts and measured training times. Source: Dong & Yang,
"NAS-Bench-201", ICLR 2020; Dong et al., "NATS-Bench", TPAMI 2021.
"""

from __future__ import annotations

import copy
import csv
import gzip
import math
import os
import re
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, cast

import numpy as np

from evonas.config import Checked, IsPath, Range
from evonas.errors import ArchError, ConfigError, DataError, UnknownChoiceError
from evonas.spaces import Arch, EnumerableSpace, SearchSpace, build_space

ENV_VAR = "EVONAS_NB201"
REQUIRED_COLUMNS = (
    "index",
    "arch",
    "cifar10-valid_valid_acc",
    "cifar10_test_acc",
    "cifar10-valid_valid_acc_12ep",
    "params_M",
    "cifar10-valid_train_time_s",
)
_SEED_SUFFIX = re.compile(r"^(.*)_seed(\d+)$")
_TIME_SUFFIX = "_train_time_s"
FULL_EPOCHS = 200


def resolve_table_path(path: str | os.PathLike[str] | None = None) -> Path:
    """The table's path: ``path`` if given, else ``$EVONAS_NB201``.

    Raises:
        DataError: Neither is set.
    """
    if path is None or str(path) == "":
        env = os.environ.get(ENV_VAR)
        if not env:
            raise DataError(
                "no NAS-Bench-201 table given: set the nb201 table's path (params.path of its entry "
                f"in 'tables') or ${ENV_VAR} to the nb201.csv.gz file"
            )
        path = env
    return Path(path).expanduser()


class NB201Table:
    """All metrics of the NAS-Bench-201 table, indexed by genotype.

    Use :meth:`load`. Metric names are the table's columns, e.g.
    ``cifar10-valid_valid_acc_12ep``, ``cifar10_test_acc``, ``params_M``.
    Per-seed columns (``<metric>_seed<k>``) are not metrics of their own: they back
    :meth:`query_seed`.

    Known data issue: in the shared table 150 of the 15,625 rows have a ``params_M`` that
    is off by exactly one convolution edge (120 of them have ``skip_connect`` on edge
    (0,1)); NASLib's independently computed counts agree with :class:`evonas.models.NB201Network`
    on those rows. The values are served as stored; ``tests/test_models.py`` lists the rows.

    As a :class:`~evonas.tabular.Table` its query cost is the training time of
    :attr:`cost_dataset` scaled to :attr:`cost_epochs` (see :meth:`with_cost`).
    """

    cost_dataset: str = "cifar10-valid"
    cost_epochs: int = 12

    def __init__(
        self,
        path: Path,
        index: np.ndarray,
        columns: dict[str, np.ndarray],
        seeds: dict[str, np.ndarray],
        space: EnumerableSpace,
    ):
        self.path = path
        self.source = str(path)
        self.space = space
        self._index = index  # by space ordinal -> NB201 index
        self._ordinal_of_index = np.argsort(index)
        self._columns = columns  # metric -> values by space ordinal
        self._seeds = seeds  # metric -> (n_archs, n_seeds) values by ordinal, NaN where missing

    # ----------------------------------------------------------------------------- loading
    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None, space: SearchSpace | None = None) -> NB201Table:
        """Read and validate the table.

        Args:
            path: The ``nb201.csv.gz`` (or plain ``.csv``) file; default ``$EVONAS_NB201``.
            space: The nb201 space (default: the registered one).

        Raises:
            DataError: The file is missing, not a readable CSV, lacks required columns,
                has malformed rows, or does not cover each of the 15,625 cells exactly once.
        """
        p = resolve_table_path(path)
        if not p.is_file():
            raise DataError(f"NAS-Bench-201 table {str(p)!r} does not exist")
        space = build_space("nb201") if space is None else space
        if space.name != "nb201":
            raise ConfigError(f"the NAS-Bench-201 table serves space 'nb201', not {space.name!r}")
        enumerable = cast(EnumerableSpace, space)  # nb201 declares 'enumerable'
        try:
            with (gzip.open(p, "rt", newline="") if p.suffix == ".gz" else open(p, newline="")) as fh:
                reader = csv.reader(fh)
                header = next(reader, None)
                if header is None:
                    raise DataError(f"NAS-Bench-201 table {str(p)!r} is empty")
                missing = [c for c in REQUIRED_COLUMNS if c not in header]
                if missing:
                    raise DataError(
                        f"NAS-Bench-201 table {str(p)!r} lacks required columns {missing}; "
                        f"found columns: {', '.join(header)}"
                    )
                rows = list(reader)
        except (OSError, EOFError, zlib.error, UnicodeDecodeError, csv.Error) as exc:
            raise DataError(f"NAS-Bench-201 table {str(p)!r} is not a readable CSV: {exc}") from None
        if len(rows) != enumerable.size:
            raise DataError(
                f"NAS-Bench-201 table {str(p)!r} has {len(rows)} rows; expected {enumerable.size} (one per cell)"
            )
        col = {name: i for i, name in enumerate(header)}
        numeric = [c for c in header if c not in ("index", "arch")]
        values = np.full((enumerable.size, len(numeric)), np.nan)
        index = np.full(enumerable.size, -1, dtype=np.int64)
        for r, row in enumerate(rows, start=2):
            if len(row) != len(header):
                raise DataError(f"NAS-Bench-201 table {str(p)!r}: line {r} has {len(row)} fields, expected {len(header)}")
            try:
                arch = enumerable.parse(row[col["arch"]])
            except ArchError as exc:
                raise DataError(f"NAS-Bench-201 table {str(p)!r}: line {r}: {exc}") from None
            o = enumerable.ordinal(arch)
            if index[o] >= 0:
                raise DataError(f"NAS-Bench-201 table {str(p)!r}: line {r} repeats architecture {row[col['arch']]!r}")
            try:
                index[o] = int(row[col["index"]])
                values[o] = [float(row[col[c]]) if row[col[c]] != "" else math.nan for c in numeric]
            except ValueError:
                raise DataError(f"NAS-Bench-201 table {str(p)!r}: line {r} has a non-numeric value") from None
        if sorted(index.tolist()) != list(range(enumerable.size)):
            raise DataError(f"NAS-Bench-201 table {str(p)!r}: 'index' is not a permutation of 0..{enumerable.size - 1}")
        columns: dict[str, np.ndarray] = {}
        seed_cols: dict[str, list[np.ndarray]] = {}
        for j, name in enumerate(numeric):
            m = _SEED_SUFFIX.match(name)
            if m:
                seed_cols.setdefault(m.group(1), []).append(values[:, j])
            else:
                columns[name] = values[:, j]
        for name in REQUIRED_COLUMNS[2:]:
            if np.isnan(columns[name]).any():
                raise DataError(f"NAS-Bench-201 table {str(p)!r}: column {name!r} has missing values")
        seeds = {m: np.stack(v, axis=1) for m, v in seed_cols.items() if m in columns}
        return cls(p, index, columns, seeds, enumerable)

    # ----------------------------------------------------------------------------- queries
    @property
    def metrics(self) -> tuple[str, ...]:
        """The metric names that :meth:`query` accepts."""
        return tuple(self._columns)

    @property
    def seeded_metrics(self) -> tuple[str, ...]:
        """Metrics with per-seed values, for :meth:`query_seed`."""
        return tuple(self._seeds)

    def check_metric(self, metric: str) -> str:
        """Return ``metric`` or raise :class:`UnknownChoiceError` listing the valid ones."""
        if metric not in self._columns:
            raise UnknownChoiceError("NAS-Bench-201 metric", metric, self.metrics)
        return metric

    def query(self, arch: Arch, metric: str) -> float:
        """The table's value of ``metric`` for ``arch`` (seed mean where seeds exist)."""
        self.check_metric(metric)
        return float(self._columns[metric][self.space.ordinal(arch)])

    def query_seed(self, arch: Arch, metric: str, rng: np.random.Generator) -> float:
        """One training seed's value of ``metric``, drawn uniformly among the seeds run.

        This simulates the noise of a single training run. Metrics without per-seed
        columns raise :class:`UnknownChoiceError` listing those that have them.
        """
        if metric not in self._seeds:
            raise UnknownChoiceError("NAS-Bench-201 metric with per-seed values", metric, self.seeded_metrics)
        row = self._seeds[metric][self.space.ordinal(arch)]
        avail = row[~np.isnan(row)]
        if avail.size == 0:
            return self.query(arch, metric)
        return float(avail[rng.integers(avail.size)])

    def has(self, arch: Arch) -> bool:
        """Every nb201 cell is in the table."""
        return True

    def cost(self, arch: Arch) -> float:
        """Simulated seconds of a query: :meth:`train_time` for the configured cost schedule."""
        return self.train_time(arch, self.cost_dataset, self.cost_epochs)

    def with_cost(self, dataset: str, epochs: int) -> NB201Table:
        """This table (sharing its arrays) charging ``dataset``'s training time for ``epochs`` per query.

        Raises:
            UnknownChoiceError: The table has no training time for ``dataset``.
        """
        self.train_time(self.space.from_ordinal(0), dataset, epochs)
        out = copy.copy(self)
        out.cost_dataset, out.cost_epochs = dataset, epochs
        return out

    def column(self, metric: str) -> np.ndarray:
        """All values of ``metric``, in the order of the space's ``all_archs()``."""
        self.check_metric(metric)
        return self._columns[metric].copy()

    def train_time(self, arch: Arch, dataset: str = "cifar10-valid", epochs: int = FULL_EPOCHS) -> float:
        """Simulated seconds to train ``arch`` for ``epochs`` on ``dataset``.

        The table holds the 200-epoch time; other schedules are scaled by ``epochs / 200``
        (the standard protocol uses 12 epochs).
        """
        name = dataset + _TIME_SUFFIX
        if name not in self._columns:
            datasets = [m[: -len(_TIME_SUFFIX)] for m in self._columns if m.endswith(_TIME_SUFFIX)]
            raise UnknownChoiceError("NAS-Bench-201 dataset", dataset, datasets)
        if epochs <= 0:
            raise ValueError(f"epochs must be positive; got {epochs!r}")
        return float(self._columns[name][self.space.ordinal(arch)]) * epochs / FULL_EPOCHS

    def index_of(self, arch: Arch) -> int:
        """The NAS-Bench-201 benchmark index of ``arch``."""
        return int(self._index[self.space.ordinal(arch)])

    def arch_at(self, index: int) -> Arch:
        """The architecture with NAS-Bench-201 index ``index``."""
        if not isinstance(index, (int, np.integer)) or not 0 <= index < self.space.size:
            raise ArchError(f"NAS-Bench-201 index must be an int in 0..{self.space.size - 1}; got {index!r}")
        return self.space.from_ordinal(int(self._ordinal_of_index[index]))

    def __len__(self) -> int:
        return self.space.size


@dataclass(frozen=True)
class NB201TableConfig(Checked):
    """The NAS-Bench-201 table as a registered table (``{name: nb201, params: {...}}``).

    Attributes:
        path: The ``nb201.csv.gz`` file (default: ``$EVONAS_NB201``).
        cost_dataset: Whose training time a query costs (default ``cifar10-valid``).
        cost_epochs: Epochs a query stands for: the table's 200-epoch time is scaled by
            ``cost_epochs/200`` (default 12, the standard protocol's fidelity).
    """

    path: Annotated[str | None, IsPath()] = None
    cost_dataset: str = "cifar10-valid"
    cost_epochs: Annotated[int, Range(1)] = 12


_LOADED: dict[tuple[str, Any], NB201Table] = {}  # one load per process (Ray workers included)


def load_nb201_table(config: NB201TableConfig, *, space: SearchSpace) -> NB201Table:
    """The table of ``config``, loaded once per process and path."""
    key = (str(resolve_table_path(config.path).resolve()), space)
    if key not in _LOADED:
        _LOADED[key] = NB201Table.load(key[0], space)
    return _LOADED[key].with_cost(config.cost_dataset, config.cost_epochs)
