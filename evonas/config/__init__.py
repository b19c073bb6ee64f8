"""Typed YAML configs with unknown keys rejected."""

from __future__ import annotations

from evonas.config._loader import apply_overrides, from_dict, load_config, read_yaml, to_dict

__all__ = ["apply_overrides", "from_dict", "load_config", "read_yaml", "to_dict"]
