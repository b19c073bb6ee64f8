from __future__ import annotations

import time

import pytest

from evonas.evaluation import Evaluation, EvaluationWorker
from evonas.executors import Outcome, SerialExecutor, Task


class Slow:
    metric_names = ("x",)

    def evaluate(self, arch, seed):
        if arch[0] == 1:
            time.sleep(5)
        if arch[0] == 2:
            raise ValueError("bad\nthing")
        return Evaluation({"x": float(seed)}, cost=0.5)


def test_runs_in_submission_order_and_marks_failures():
    ex = SerialExecutor(timeout_s=0.3)
    ex.start(EvaluationWorker(Slow()))
    for i, first in enumerate([0, 1, 2, 0]):
        ex.submit(Task(i, (first, 0, 0, 0, 0, 0), seed=10 + i))
    assert ex.num_pending == 4 and ex.capacity == 1
    out: list[Outcome] = []
    while ex.num_pending:
        out.extend(ex.wait())
    assert [o.task.task_id for o in out] == [0, 1, 2, 3]
    assert out[0].value.metrics == {"x": 10.0} and not out[0].failed
    t = out[1]
    assert t.failed and t.value is None and t.error == "timed out after 0.3 s" and 0.25 < t.seconds < 2
    e = out[2]
    assert e.failed and e.error == "ValueError: bad thing"
    assert out[3].value.metrics == {"x": 13.0}  # still working after a time-out
    assert ex.wait() == []
    ex.close()


def test_any_worker_any_payload():
    class Square:
        def run(self, payload, seed):
            return {"n": payload["n"] ** 2, "seed": seed}

    outcomes = SerialExecutor().run_all(Square(), [Task(1, {"n": 3}, 7), Task(0, {"n": 2}, 5)])
    assert [o.value for o in outcomes] == [{"n": 4, "seed": 5}, {"n": 9, "seed": 7}]


def test_errors_propagate_when_asked():
    ex = SerialExecutor(catch_errors=False)
    ex.start(EvaluationWorker(Slow()))
    ex.submit(Task(0, (2, 0, 0, 0, 0, 0), seed=0))
    with pytest.raises(ValueError):
        ex.wait()


def test_submit_before_start_is_an_error():
    with pytest.raises(RuntimeError, match="before start"):
        SerialExecutor().submit(Task(0, (0,) * 6, 0))
