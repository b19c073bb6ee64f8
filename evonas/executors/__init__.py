"""Executors run tasks (evaluations, trainings, predictor trials): serially in-process
(default) or as Ray tasks."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from evonas._registry import Component, Registry
from evonas.errors import one_line_error
from evonas.executors._base import Executor, Outcome, Task, Worker
from evonas.executors._factories import SerialExecutorConfig
from evonas.executors._serial import EvaluationTimeout, SerialExecutor

if TYPE_CHECKING:
    from evonas.executors._ray import RayExecutor, RayExecutorConfig, init_local_ray

EXECUTORS: Registry[Any] = Registry("executor")
"""Executor name -> entry with ``Config``; ``executor = entry(config)``."""
EXECUTORS.register("serial")(Component(SerialExecutorConfig, "evonas.executors._factories:build_serial"))
EXECUTORS.register("ray")(Component("evonas.executors._ray:RayExecutorConfig", "evonas.executors._factories:build_ray"))


def __getattr__(name: str) -> object:
    # Ray is imported only when its executor is asked for.
    if name in ("RayExecutor", "RayExecutorConfig", "init_local_ray"):
        from evonas.executors import _ray

        return getattr(_ray, name)
    raise AttributeError(name)


__all__ = [
    "EXECUTORS",
    "EvaluationTimeout",
    "Executor",
    "Outcome",
    "RayExecutor",
    "RayExecutorConfig",
    "SerialExecutor",
    "SerialExecutorConfig",
    "Task",
    "Worker",
    "init_local_ray",
    "one_line_error",
]
