"""Benchmark tables: metrics of architectures, looked up instead of trained.

A :class:`Table` answers ``query(arch, metric)`` for the architectures it holds. Tables
are registered in :data:`evonas.tabular.TABLES` and named in a config's ``tables`` list
(``{name, params}`` each); several tables are joined by architecture into one
(:class:`JoinedTable`), e.g. accuracy from the NAS-Bench-201 file and a device latency
from another. :class:`FileTable` reads any CSV (optionally gzipped) or JSON file keyed by
the space's architecture strings.
"""

from __future__ import annotations

import csv
import gzip
import json
import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol, runtime_checkable

import numpy as np

from evonas.config import Checked, IsPath, Range
from evonas.errors import ArchError, ConfigError, DataError, UnknownChoiceError
from evonas.spaces import Arch, SearchSpace


@runtime_checkable
class Table(Protocol):
    """What the tabular evaluator needs of a table.

    Attributes:
        source: Where the table came from (for messages).
        metrics: Metric names :meth:`query` accepts.
        seeded_metrics: Metrics with per-seed values, for :meth:`query_seed`.
    """

    source: str
    metrics: tuple[str, ...]
    seeded_metrics: tuple[str, ...]

    def has(self, arch: Arch) -> bool:
        """Whether the table holds ``arch``."""
        ...

    def query(self, arch: Arch, metric: str) -> float:
        """The value of ``metric`` for ``arch`` (NaN where the table has none)."""
        ...

    def query_seed(self, arch: Arch, metric: str, rng: np.random.Generator) -> float:
        """One training seed's value of ``metric``, drawn with ``rng``."""
        ...

    def cost(self, arch: Arch) -> float:
        """What querying ``arch`` costs, in (simulated) seconds."""
        ...


def missing_arch(space: SearchSpace, arch: Arch, source: str) -> DataError:
    """The error of a query for an architecture a table does not hold."""
    return DataError(f"architecture {space.format(arch)!r} is not in table {source!r}")


@dataclass(frozen=True)
class FileTableConfig(Checked):
    """A table file keyed by architecture strings (the ``file`` table).

    Attributes:
        path: A ``.csv``, ``.csv.gz`` or ``.json`` file. JSON holds a list of records
            (``[{"arch": ..., "latency_ms": ...}, ...]``) or a mapping from architecture
            string to record (the string then fills the ``key`` field).
        key: The column (record field) holding the architecture strings.
        metrics: Columns served as metrics (default: every column but ``key``); values
            must be numbers, an empty CSV cell is a missing value (NaN).
        cost: Column whose value is the cost of a query in seconds (default: queries are
            free).
        cost_scale: Factor applied to ``cost`` (e.g. 12/200 to charge 12 of 200 epochs).
        format: ``auto`` (from the file name), ``csv`` or ``json``.
    """

    path: Annotated[str, IsPath()]
    key: str = "arch"
    metrics: tuple[str, ...] = ()
    cost: str | None = None
    cost_scale: Annotated[float, Range(0)] = 1.0
    format: Literal["auto", "csv", "json"] = "auto"


class FileTable:
    """A table read from a CSV or JSON file (see :class:`FileTableConfig`).

    Args:
        config: Where the file is and which columns to serve.
        space: The space whose architecture strings key the rows.

    Raises:
        DataError: The file is missing or unreadable, lacks the key (or a named)
            column, holds an architecture string of another space, repeats an
            architecture, or has a non-numeric metric value; the message names the line.
    """

    seeded_metrics: tuple[str, ...] = ()

    def __init__(self, config: FileTableConfig, space: SearchSpace) -> None:
        self.config = config
        self.space = space
        path = Path(config.path)
        self.source = str(path)
        if not path.is_file():
            raise DataError(f"table {self.source!r} does not exist")
        fmt = config.format
        if fmt == "auto":
            fmt = "json" if path.name.endswith((".json", ".json.gz")) else "csv"
        columns, rows = _read_json(path, config.key) if fmt == "json" else _read_csv(path)
        if config.key not in columns:
            raise DataError(
                f"table {self.source!r} has no key column {config.key!r}; its columns: {', '.join(columns) or '(none)'}"
            )
        metrics = tuple(config.metrics) or tuple(c for c in columns if c != config.key)
        wanted = metrics + ((config.cost,) if config.cost is not None and config.cost not in metrics else ())
        for name in wanted:
            if name not in columns or name == config.key:
                raise DataError(
                    f"table {self.source!r} has no column {name!r}; its columns: {', '.join(c for c in columns if c != config.key)}"
                )
        self.metrics = metrics
        self._row: dict[Arch, int] = {}
        values = np.full((len(rows), len(wanted)), np.nan)
        for r, (line, record) in enumerate(rows):
            text = record.get(config.key)
            try:
                arch = space.validate(space.parse(text) if isinstance(text, str) else text)
            except ArchError as exc:
                raise DataError(f"table {self.source!r}, {line}: {exc}") from None
            if arch in self._row:
                first = rows[self._row[arch]][0]
                raise DataError(f"table {self.source!r}, {line} repeats architecture {text!r} (first at {first})")
            self._row[arch] = r
            for j, name in enumerate(wanted):
                values[r, j] = _number(record.get(name), self.source, line, name)
        self._values = values
        self._column = {name: j for j, name in enumerate(wanted)}

    def has(self, arch: Arch) -> bool:
        return arch in self._row

    def query(self, arch: Arch, metric: str) -> float:
        if metric not in self.metrics:
            raise UnknownChoiceError(f"metric of table {self.source!r}", metric, self.metrics)
        row = self._row.get(arch)
        if row is None:
            raise missing_arch(self.space, arch, self.source)
        return float(self._values[row, self._column[metric]])

    def query_seed(self, arch: Arch, metric: str, rng: np.random.Generator) -> float:
        raise UnknownChoiceError(f"metric with per-seed values in table {self.source!r}", metric, ())

    def cost(self, arch: Arch) -> float:
        if self.config.cost is None:
            return 0.0
        row = self._row.get(arch)
        if row is None:
            raise missing_arch(self.space, arch, self.source)
        return float(self._values[row, self._column[self.config.cost]]) * self.config.cost_scale

    def __len__(self) -> int:
        return len(self._row)


_LOADED: dict[tuple[Any, ...], FileTable] = {}  # one read per process (Ray workers included)


def load_file_table(config: FileTableConfig, *, space: SearchSpace) -> FileTable:
    """The ``file`` table entry: :class:`FileTable` of ``config``, read once per process
    (again when the file changes)."""
    path = Path(config.path)
    stat = path.stat() if path.is_file() else None
    key = (config, space, None if stat is None else (stat.st_size, stat.st_mtime_ns))
    if stat is None or key not in _LOADED:
        table = FileTable(config, space)
        _LOADED[key] = table
    return _LOADED[key]


def _number(value: Any, source: str, line: str, column: str) -> float:
    if value is None or value == "":
        return math.nan
    if isinstance(value, bool):
        raise DataError(f"table {source!r}, {line}: column {column!r} has a non-numeric value {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise DataError(f"table {source!r}, {line}: column {column!r} has a non-numeric value {value!r}") from None


def _open_text(path: Path) -> Any:
    return gzip.open(path, "rt", newline="", encoding="utf-8") if path.suffix == ".gz" else open(path, newline="", encoding="utf-8")


def _read_csv(path: Path) -> tuple[list[str], list[tuple[str, dict[str, str]]]]:
    try:
        with _open_text(path) as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None:
                raise DataError(f"table {str(path)!r} is empty")
            rows = []
            for n, row in enumerate(reader, start=2):
                if not row:
                    continue
                if len(row) != len(header):
                    raise DataError(f"table {str(path)!r}, line {n} has {len(row)} fields, expected {len(header)}")
                rows.append((f"line {n}", dict(zip(header, row))))
    except (OSError, EOFError, zlib.error, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"table {str(path)!r} is not a readable CSV file: {exc}") from None
    if len(set(header)) != len(header):
        raise DataError(f"table {str(path)!r} repeats a column name: {header}")
    return header, rows


def _read_json(path: Path, key: str) -> tuple[list[str], list[tuple[str, dict[str, Any]]]]:
    try:
        with _open_text(path) as fh:
            data = json.load(fh)
    except (OSError, EOFError, zlib.error, ValueError) as exc:  # ValueError: UnicodeDecodeError, JSONDecodeError
        raise DataError(f"table {str(path)!r} is not a readable JSON file: {exc}") from None
    except RecursionError:
        raise DataError(f"table {str(path)!r} nests JSON values too deeply to be a table") from None
    if isinstance(data, dict):
        items: list[Any] = [{key: k, **v} if isinstance(v, dict) else None for k, v in data.items()]
    else:
        items = data if isinstance(data, list) else [None]
    records: list[tuple[str, dict[str, Any]]] = []
    for i, r in enumerate(items):
        if not isinstance(r, dict):
            raise DataError(f"table {str(path)!r} must hold a list of records or a mapping from architecture to record")
        records.append((f"record {i}", r))
    columns: list[str] = []
    for _, r in records:
        columns.extend(k for k in r if k not in columns)
    return columns, records


class JoinedTable:
    """Several tables joined by architecture: each metric comes from the table that has it.

    The cost of a query is the sum of the tables' costs.

    Args:
        tables: The tables; a metric name in two of them is an error.
        space: The space of the architectures (for messages).

    Raises:
        ConfigError: Two tables serve the same metric.
    """

    def __init__(self, tables: Sequence[Table], space: SearchSpace) -> None:
        self.tables = tuple(tables)
        self.space = space
        self.source = " + ".join(t.source for t in self.tables)
        self._owner: dict[str, Table] = {}
        for t in self.tables:
            for m in t.metrics:
                if m in self._owner:
                    raise ConfigError(
                        f"metric {m!r} is served by two tables, {self._owner[m].source!r} and {t.source!r}; "
                        "name the metrics to take from each with the file table's 'metrics'"
                    )
                self._owner[m] = t
        self.metrics = tuple(self._owner)
        self.seeded_metrics = tuple(m for t in self.tables for m in t.seeded_metrics)

    def owner(self, metric: str) -> Table:
        """The table serving ``metric``."""
        try:
            return self._owner[metric]
        except KeyError:
            raise UnknownChoiceError("table metric", metric, self.metrics) from None

    def has(self, arch: Arch) -> bool:
        return all(t.has(arch) for t in self.tables)

    def query(self, arch: Arch, metric: str) -> float:
        return self.owner(metric).query(arch, metric)

    def query_seed(self, arch: Arch, metric: str, rng: np.random.Generator) -> float:
        return self.owner(metric).query_seed(arch, metric, rng)

    def cost(self, arch: Arch) -> float:
        return float(sum(t.cost(arch) for t in self.tables))
