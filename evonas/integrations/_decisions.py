"""An architecture as named parameters: one categorical choice per position of a genotype.

Spaces with the ``fixed_length`` capability have ``length`` positions with ``num_choices``
options each (for NAS-Bench-201, the op index of each of the six edges). Hyper-parameter
tools see one categorical parameter per position, named ``<prefix><i>``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

from evonas.errors import ArchError, ConfigError
from evonas.spaces import Arch, FixedLengthSpace, SearchSpace, build_space, require

DEFAULT_PREFIX = "edge_"
"""Parameter names are ``edge_0``, ``edge_1``, ... unless another prefix is given."""


def fixed_length_space(space: SearchSpace | str, who: str) -> FixedLengthSpace:
    """``space`` (built when it is a registered name), checked to have fixed-length genotypes.

    Raises:
        CapabilityError: The space does not declare ``fixed_length``.
    """
    built = build_space(space) if isinstance(space, str) else space
    require(built, ("fixed_length",), who)
    return cast(FixedLengthSpace, built)


def decision_names(space: FixedLengthSpace, prefix: str = DEFAULT_PREFIX) -> tuple[str, ...]:
    """The parameter name of every position of the genotypes of ``space``."""
    if not isinstance(prefix, str) or not prefix:
        raise ConfigError(f"the parameter name prefix must be a non-empty string; got {prefix!r}")
    return tuple(f"{prefix}{i}" for i in range(int(space.length)))


def decision_choices(space: FixedLengthSpace) -> tuple[int, ...]:
    """The options of every position: ``0 .. num_choices - 1``."""
    return tuple(range(int(space.num_choices)))


def as_params(arch: Arch, names: Sequence[str]) -> dict[str, int]:
    """``arch`` as ``{name: choice}``."""
    return {name: int(choice) for name, choice in zip(names, arch)}


def arch_from_params(space: SearchSpace, params: Mapping[str, Any], names: Sequence[str]) -> Arch:
    """The genotype whose positions are ``params[name]`` for each of ``names``.

    Raises:
        ArchError: A name is missing or the choices are not a genotype of ``space``.
    """
    missing = [n for n in names if n not in params]
    if missing:
        raise ArchError(f"parameters {', '.join(missing)} are missing; an architecture of space {space.name!r} "
                        f"needs {', '.join(names)}")
    return space.validate(tuple(int(params[n]) for n in names))
