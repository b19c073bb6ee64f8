"""The serial executor: tasks run one after another in this process.

It is the default and the test double of the Ray executor: tasks run in submission
order, so a run with it is exactly reproducible.
"""

from __future__ import annotations

import collections
import signal
import threading
import time
from typing import Any

from evonas.errors import one_line_error
from evonas.executors._base import Executor, Outcome, Task, Worker


class EvaluationTimeout(Exception):
    """Raised inside a task that ran past its time limit."""


class SerialExecutor(Executor):
    """Run tasks in-process, in submission order.

    Args:
        timeout_s: Per-task time limit in seconds (``None``: no limit). Enforced with
            ``SIGALRM``, so only when running in the main thread of a POSIX process.
        catch_errors: Turn exceptions raised by the worker into failed outcomes
            (default). When False they propagate, which is handy in tests.
    """

    def __init__(self, timeout_s: float | None = None, catch_errors: bool = True) -> None:
        self.timeout_s = timeout_s
        self.catch_errors = catch_errors
        self._worker: Worker | None = None
        self._queue: collections.deque[Task] = collections.deque()

    @property
    def capacity(self) -> int:
        return 1

    def start(self, worker: Worker) -> None:
        self._worker = worker

    def submit(self, task: Task) -> None:
        if self._worker is None:
            raise RuntimeError("SerialExecutor.submit called before start()")
        self._queue.append(task)

    @property
    def num_pending(self) -> int:
        return len(self._queue)

    def wait(self) -> list[Outcome]:
        if not self._queue:
            return []
        return [self._run(self._queue.popleft())]

    def _run(self, task: Task) -> Outcome:
        worker = self._worker
        if worker is None:
            raise RuntimeError("SerialExecutor.wait called after close()")
        timeout = self.timeout_s
        use_alarm = timeout is not None and hasattr(signal, "SIGALRM") and threading.current_thread() is threading.main_thread()
        start = time.perf_counter()
        previous: Any = None
        if use_alarm and timeout is not None:
            def _on_alarm(signum: int, frame: object) -> None:
                raise EvaluationTimeout()

            previous = signal.signal(signal.SIGALRM, _on_alarm)
            signal.setitimer(signal.ITIMER_REAL, float(timeout))
        try:
            value = worker.run(task.payload, task.seed)
            return Outcome(task, value=value, seconds=time.perf_counter() - start)
        except EvaluationTimeout:
            return Outcome(task, error=f"timed out after {timeout} s", seconds=time.perf_counter() - start)
        except Exception as exc:
            if not self.catch_errors:
                raise
            return Outcome(task, error=one_line_error(exc), seconds=time.perf_counter() - start)
        finally:
            if use_alarm:
                signal.setitimer(signal.ITIMER_REAL, 0.0)
                signal.signal(signal.SIGALRM, previous)

    def close(self) -> None:
        self._queue.clear()
        self._worker = None
