"""The evaluator interface: an architecture in, metrics and a cost out.

Evaluators are picklable values (they are shipped to Ray workers). ``evaluate`` must be
deterministic given ``(arch, seed)``: every random draw comes from ``seed``, which the
search loop derives from the run seed and the evaluation's number, so a run gives the
same results however its evaluations are scheduled.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from evonas._json import json_float, jsonable
from evonas.errors import one_line_error
from evonas.spaces import Arch


@dataclass(frozen=True)
class Evaluation:
    """The outcome of evaluating one architecture.

    Attributes:
        metrics: Metric name to value (e.g. ``{"val_acc": 91.2, "params_M": 1.5}``).
        cost: What the evaluation cost, in seconds (simulated for tables, wall time for
            training); budgets in seconds add these up.
        failed: True when the evaluation raised, timed out or its worker was lost for good.
        error: One line saying why it failed.
        info: Extra detail, JSON-serialisable (e.g. training curves); non-finite
            floats are written as their repr.
    """

    metrics: dict[str, float]
    cost: float = 0.0
    failed: bool = False
    error: str | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def failure(cls, error: str, cost: float = 0.0) -> Evaluation:
        """A failed evaluation with no metrics."""
        return cls(metrics={}, cost=cost, failed=True, error=error)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "metrics": {k: json_float(v) for k, v in self.metrics.items()},
            "cost": json_float(self.cost),
            "failed": self.failed,
        }
        if self.error is not None:
            out["error"] = self.error
        if self.info:
            out["info"] = jsonable(self.info)
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Evaluation:
        return cls(
            metrics={k: float(v) for k, v in data["metrics"].items()},
            cost=float(data["cost"]),
            failed=bool(data["failed"]),
            error=data.get("error"),
            info=data.get("info", {}),
        )


@runtime_checkable
class Evaluator(Protocol):
    """Turns an architecture into metrics and a cost.

    Attributes:
        metric_names: The metrics every successful evaluation reports.
    """

    metric_names: tuple[str, ...]

    def evaluate(self, arch: Arch, seed: int) -> Evaluation:
        """Evaluate ``arch``; all randomness derives from ``seed``."""
        ...


@runtime_checkable
class BatchEvaluator(Evaluator, Protocol):
    """An evaluator that scores many architectures in one call more cheaply than one by one
    (a predictor's forward pass, a table look-up).

    The search loop then runs a candidate's whole fitness plan (e.g. the architecture and
    its neighbours) as one executor task.
    """

    def evaluate_many(self, archs: Sequence[Arch], seeds: Sequence[int] | None = None) -> list[Evaluation]:
        """One evaluation per architecture, in order; ``seeds[i]`` seeds ``archs[i]``."""
        ...


@dataclass(frozen=True)
class EvalBatch:
    """Several evaluations run as one executor task.

    Attributes:
        items: ``(eval_id, arch, seed)`` of each evaluation, in order.
    """

    items: tuple[tuple[int, Arch, int], ...]


def evaluate_batch(evaluator: Evaluator, archs: Sequence[Arch], seeds: Sequence[int]) -> list[Evaluation]:
    """Evaluate ``archs``: with ``evaluate_many`` when the evaluator has it, else one by one
    (an exception failing only its own evaluation).

    Raises:
        RuntimeError: ``evaluate_many`` returned another number of evaluations.
    """
    if isinstance(evaluator, BatchEvaluator):
        out = list(evaluator.evaluate_many(list(archs), list(seeds)))
        if len(out) != len(archs):
            raise RuntimeError(f"evaluate_many returned {len(out)} evaluations for {len(archs)} architectures")
        return out
    results = []
    for arch, seed in zip(archs, seeds):
        try:
            results.append(evaluator.evaluate(arch, seed))
        except Exception as exc:  # noqa: BLE001 -- the failure is recorded on the evaluation
            results.append(Evaluation.failure(one_line_error(exc)))
    return results


@dataclass(frozen=True)
class EvaluationWorker:
    """An evaluator as an executor's worker: ``run(arch, seed) = evaluate(arch, seed)``;
    an :class:`EvalBatch` payload returns the list of its evaluations."""

    evaluator: Evaluator

    def run(self, payload: Arch | EvalBatch, seed: int) -> Evaluation | list[Evaluation]:
        if isinstance(payload, EvalBatch):
            return evaluate_batch(self.evaluator, [a for _, a, _ in payload.items], [s for _, _, s in payload.items])
        return self.evaluator.evaluate(payload, seed)
