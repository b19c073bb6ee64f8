"""The serial executor: evaluations run one after another in this process.

It is the default and the test double of the Ray executor: requests run in submission
order, so a run with it is exactly reproducible.
"""

from __future__ import annotations

import collections
import signal
import threading
import time

from evonas.evaluation import Evaluation, Evaluator
from evonas.executors._base import Executor, Request, one_line_error


class EvaluationTimeout(Exception):
    """Raised inside an evaluation that ran past its time limit."""


class SerialExecutor(Executor):
    """Run evaluations in-process, in submission order.

    Args:
        timeout_s: Per-evaluation time limit in seconds (``None``: no limit). Enforced
            with ``SIGALRM``, so only when running in the main thread of a POSIX process.
        catch_errors: Turn exceptions raised by the evaluator into failed evaluations
            (default). When False they propagate, which is handy in tests.
    """

    def __init__(self, timeout_s: float | None = None, catch_errors: bool = True) -> None:
        self.timeout_s = timeout_s
        self.catch_errors = catch_errors
        self._evaluator: Evaluator | None = None
        self._queue: collections.deque[Request] = collections.deque()

    @property
    def capacity(self) -> int:
        return 1

    def start(self, evaluator: Evaluator) -> None:
        self._evaluator = evaluator

    def submit(self, request: Request) -> None:
        if self._evaluator is None:
            raise RuntimeError("SerialExecutor.submit called before start()")
        self._queue.append(request)

    @property
    def num_pending(self) -> int:
        return len(self._queue)

    def wait(self) -> list[tuple[Request, Evaluation]]:
        if not self._queue:
            return []
        request = self._queue.popleft()
        return [(request, self._run(request))]

    def _run(self, request: Request) -> Evaluation:
        assert self._evaluator is not None
        use_alarm = (
            self.timeout_s is not None
            and hasattr(signal, "SIGALRM")
            and threading.current_thread() is threading.main_thread()
        )
        start = time.perf_counter()
        previous = None
        if use_alarm:
            def _on_alarm(signum: int, frame: object) -> None:
                raise EvaluationTimeout()

            previous = signal.signal(signal.SIGALRM, _on_alarm)
            signal.setitimer(signal.ITIMER_REAL, float(self.timeout_s))  # type: ignore[arg-type]
        try:
            return self._evaluator.evaluate(request.arch, request.seed)
        except EvaluationTimeout:
            return Evaluation.failure(f"timed out after {self.timeout_s} s", cost=time.perf_counter() - start)
        except Exception as exc:
            if not self.catch_errors:
                raise
            return Evaluation.failure(one_line_error(exc), cost=time.perf_counter() - start)
        finally:
            if use_alarm:
                signal.setitimer(signal.ITIMER_REAL, 0.0)
                signal.signal(signal.SIGALRM, previous)

    def close(self) -> None:
        self._queue.clear()
        self._evaluator = None
