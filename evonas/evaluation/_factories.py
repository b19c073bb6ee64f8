"""How evaluators are built from their configs (imported lazily by the registry)."""

from __future__ import annotations

from evonas.evaluation._base import Evaluator


def build_tabular(config: object) -> Evaluator:
    from evonas.evaluation._tabular import TabularEvaluator

    return TabularEvaluator(config)  # type: ignore[arg-type]


def build_training(config: object) -> Evaluator:
    return config.build()  # type: ignore[attr-defined]
