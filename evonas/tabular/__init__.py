"""Tabular benchmarks: metrics looked up instead of trained."""

from __future__ import annotations

from evonas.tabular._nb201_table import ENV_VAR, NB201Table, resolve_table_path

__all__ = ["ENV_VAR", "NB201Table", "resolve_table_path"]
