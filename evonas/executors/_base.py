"""The executor interface: run evaluations, report them as they finish.

Executors are the only place where parallelism, retries, time-outs and GPU placement
live. Search code talks to them through :class:`Executor` only and never imports Ray.
"""

from __future__ import annotations

import abc
import traceback
from dataclasses import dataclass

from evonas.evaluation import Evaluation, Evaluator
from evonas.spaces import Arch


def one_line_error(exc: BaseException) -> str:
    """Why an evaluation failed, on one line: exception type and message, whitespace collapsed."""
    text = "".join(traceback.format_exception_only(type(exc), exc))
    return " ".join(text.split())


@dataclass(frozen=True)
class Request:
    """One evaluation to run.

    Attributes:
        eval_id: Number of the evaluation in its run, unique and increasing.
        arch: The architecture.
        seed: Seed for every random draw of this evaluation.
    """

    eval_id: int
    arch: Arch
    seed: int


class Executor(abc.ABC):
    """Runs :class:`Request` s with one evaluator.

    Use as ``start(evaluator)``, any number of ``submit``/``wait``, then ``close()`` (or as
    a context manager after ``start``).
    """

    @property
    @abc.abstractmethod
    def capacity(self) -> int:
        """How many evaluations may usefully be in flight at once."""

    @abc.abstractmethod
    def start(self, evaluator: Evaluator) -> None:
        """Prepare to run evaluations with ``evaluator``."""

    @abc.abstractmethod
    def submit(self, request: Request) -> None:
        """Queue ``request``; it runs when the executor has room."""

    @abc.abstractmethod
    def wait(self) -> list[tuple[Request, Evaluation]]:
        """Block until at least one submitted request is done; return all that are.

        Returns an empty list only when nothing is pending.
        """

    @property
    @abc.abstractmethod
    def num_pending(self) -> int:
        """Requests submitted and not yet returned by :meth:`wait`."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release workers and connections; pending requests are dropped."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
