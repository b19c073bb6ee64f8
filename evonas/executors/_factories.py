"""How executors are built from their configs (imported lazily by the registry)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from evonas.config import Checked, Range
from evonas.executors._base import Executor
from evonas.executors._serial import SerialExecutor


@dataclass(frozen=True)
class SerialExecutorConfig(Checked):
    """Settings of :class:`SerialExecutor`.

    Attributes:
        timeout_s: Per-task time limit in seconds (``None``: none).
    """

    timeout_s: Annotated[float | None, Range(0, low_open=True)] = None


def build_serial(config: SerialExecutorConfig) -> Executor:
    return SerialExecutor(timeout_s=config.timeout_s)


def build_ray(config: Any) -> Executor:
    from evonas.executors._ray import RayExecutor

    return RayExecutor.from_config(config)
