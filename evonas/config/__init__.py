"""Typed YAML configs: unknown keys rejected, constraints declared on the fields, one path rule."""

from __future__ import annotations

from evonas.config._checks import (
    MAX_ARCHS,
    MAX_BATCH_SIZE,
    MAX_COUNT,
    MAX_POPULATION,
    MAX_SEED,
    MAX_WORKERS,
    Checked,
    IsPath,
    Range,
    Registered,
    check_choice,
    check_int,
    check_number,
)
from evonas.config._loader import (
    CliStr,
    ComponentConfig,
    apply_overrides,
    from_dict,
    load_config,
    parse_yaml,
    read_yaml,
    to_dict,
    type_name,
    yaml_mapping,
)

__all__ = [
    "MAX_ARCHS",
    "MAX_BATCH_SIZE",
    "MAX_COUNT",
    "MAX_POPULATION",
    "MAX_SEED",
    "MAX_WORKERS",
    "Checked",
    "CliStr",
    "ComponentConfig",
    "IsPath",
    "Range",
    "Registered",
    "apply_overrides",
    "check_choice",
    "check_int",
    "check_number",
    "from_dict",
    "load_config",
    "parse_yaml",
    "read_yaml",
    "to_dict",
    "type_name",
    "yaml_mapping",
]
