"""The executor interface: run tasks, report their outcomes as they finish.

Executors are the only place where parallelism, retries, time-outs and GPU placement
live. A task is ``worker.run(payload, seed)`` for one picklable ``worker`` shared by all
tasks of a run (an evaluator, a predictor trial runner, an ensemble member trainer) and
a picklable ``payload`` of its own (an architecture, a trial's specification). The
outcome carries what ``run`` returned, or why it failed. Search code talks to executors
through :class:`Executor` only and never imports Ray.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable



@runtime_checkable
class Worker(Protocol):
    """What an executor runs: ``run(payload, seed)``; every random draw derives from ``seed``."""

    def run(self, payload: Any, seed: int) -> Any:
        """Do the work of one task and return its (picklable) result."""
        ...


@dataclass(frozen=True)
class Task:
    """One unit of work.

    Attributes:
        task_id: Number of the task in its run, unique.
        payload: What the worker works on (e.g. an architecture); picklable.
        seed: Seed for every random draw of this task.
    """

    task_id: int
    payload: Any
    seed: int


@dataclass(frozen=True)
class Outcome:
    """How a task ended.

    Attributes:
        task: The task.
        value: What ``worker.run`` returned (None when it failed).
        error: One line saying why the task failed (an exception, a time-out, a worker
            lost for good); None on success.
        seconds: Wall time from first dispatch to the end.
    """

    task: Task
    value: Any = None
    error: str | None = None
    seconds: float = 0.0

    @property
    def failed(self) -> bool:
        return self.error is not None


class Executor(abc.ABC):
    """Runs :class:`Task` s with one worker.

    Use as ``start(worker)``, any number of ``submit``/``wait``, then ``close()`` (or as
    a context manager after ``start``).
    """

    @property
    @abc.abstractmethod
    def capacity(self) -> int:
        """How many tasks may usefully be in flight at once."""

    @abc.abstractmethod
    def start(self, worker: Worker) -> None:
        """Prepare to run tasks with ``worker``."""

    @abc.abstractmethod
    def submit(self, task: Task) -> None:
        """Queue ``task``; it runs when the executor has room."""

    @abc.abstractmethod
    def wait(self) -> list[Outcome]:
        """Block until at least one submitted task is done; return all that are.

        Returns an empty list only when nothing is pending.
        """

    @property
    @abc.abstractmethod
    def num_pending(self) -> int:
        """Tasks submitted and not yet returned by :meth:`wait`."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release workers and connections; pending tasks are dropped."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run_all(self, worker: Worker, tasks: list[Task], progress: Any = None) -> list[Outcome]:
        """Start with ``worker``, run every task, close; outcomes in ``task_id`` order.

        Args:
            worker: The worker.
            tasks: The tasks.
            progress: Called with each batch of finished outcomes (e.g. to advance a bar).
        """
        outcomes: list[Outcome] = []
        self.start(worker)
        try:
            for task in tasks:
                self.submit(task)
            while self.num_pending:
                done = self.wait()
                outcomes.extend(done)
                if progress is not None:
                    progress(done)
        finally:
            self.close()
        return sorted(outcomes, key=lambda o: o.task.task_id)
