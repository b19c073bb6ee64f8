"""How executors are built from their configs (imported lazily by the registry)."""

from __future__ import annotations

from dataclasses import dataclass

from evonas.errors import ConfigError
from evonas.executors._base import Executor
from evonas.executors._serial import SerialExecutor


@dataclass(frozen=True)
class SerialExecutorConfig:
    """Settings of :class:`SerialExecutor`.

    Attributes:
        timeout_s: Per-evaluation time limit in seconds (``None``: none).
    """

    timeout_s: float | None = None

    def __post_init__(self) -> None:
        if self.timeout_s is not None and not self.timeout_s > 0:
            raise ConfigError(f"executor.params.timeout_s must be > 0 or null; got {self.timeout_s!r}")


def build_serial(config: SerialExecutorConfig) -> Executor:
    return SerialExecutor(timeout_s=config.timeout_s)


def build_ray(config: object) -> Executor:
    from evonas.executors._ray import RayExecutor

    return RayExecutor.from_config(config)  # type: ignore[arg-type]
