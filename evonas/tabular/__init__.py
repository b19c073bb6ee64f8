"""Tabular benchmarks: metrics looked up instead of trained.

Tables are registered in :data:`TABLES` (``nb201``: the NAS-Bench-201 file; ``file``: any
CSV or JSON file keyed by architecture strings) and built from a config's ``tables``
list with :func:`build_tables`, which joins several into one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from evonas._registry import Component, Registry, entry_for_space
from evonas.config import ComponentConfig
from evonas.spaces import SearchSpace
from evonas.tabular._nb201_table import ENV_VAR, NB201Table, NB201TableConfig, load_nb201_table, resolve_table_path
from evonas.tabular._table import FileTable, FileTableConfig, JoinedTable, Table, load_file_table, missing_arch

TABLES: Registry[Any] = Registry("table")
"""Table name -> entry with ``Config`` (and ``space`` when it serves one space); ``table = entry(config, space=space)``."""
TABLES.register("nb201")(Component(NB201TableConfig, load_nb201_table, space="nb201"))
TABLES.register("file")(Component(FileTableConfig, load_file_table))


def build_tables(tables: Sequence[ComponentConfig], space: SearchSpace) -> JoinedTable:
    """The tables of a config's ``tables`` list, loaded and joined by architecture.

    Raises:
        CapabilityError: A table serves another space.
        DataError: A table file is missing or malformed (the message names the line).
        ConfigError: No table, or two tables serve the same metric.
    """
    from evonas.errors import ConfigError

    if not tables:
        raise ConfigError("tables is empty; name at least one table")
    loaded = []
    for cfg in tables:
        entry = entry_for_space("table", cfg.name, space)
        loaded.append(entry(cfg.typed("table"), space=space))
    return JoinedTable(loaded, space)


__all__ = [
    "ENV_VAR",
    "FileTable",
    "FileTableConfig",
    "JoinedTable",
    "NB201Table",
    "NB201TableConfig",
    "TABLES",
    "Table",
    "build_tables",
    "missing_arch",
    "resolve_table_path",
]
