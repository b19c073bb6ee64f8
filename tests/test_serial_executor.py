from __future__ import annotations

import time

import pytest

from evonas.evaluation import Evaluation
from evonas.executors import Request, SerialExecutor


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
    ex.start(Slow())
    for i, first in enumerate([0, 1, 2, 0]):
        ex.submit(Request(i, (first, 0, 0, 0, 0, 0), seed=10 + i))
    assert ex.num_pending == 4 and ex.capacity == 1
    out = []
    while ex.num_pending:
        out.extend(ex.wait())
    assert [r.eval_id for r, _ in out] == [0, 1, 2, 3]
    assert out[0][1].metrics == {"x": 10.0} and not out[0][1].failed
    t = out[1][1]
    assert t.failed and t.error == "timed out after 0.3 s" and 0.25 < t.cost < 2
    e = out[2][1]
    assert e.failed and e.error == "ValueError: bad thing"
    assert out[3][1].metrics == {"x": 13.0}  # still working after a time-out
    assert ex.wait() == []
    ex.close()


def test_errors_propagate_when_asked():
    ex = SerialExecutor(catch_errors=False)
    ex.start(Slow())
    ex.submit(Request(0, (2, 0, 0, 0, 0, 0), seed=0))
    with pytest.raises(ValueError):
        ex.wait()


def test_submit_before_start_is_an_error():
    with pytest.raises(RuntimeError, match="before start"):
        SerialExecutor().submit(Request(0, (0,) * 6, 0))
