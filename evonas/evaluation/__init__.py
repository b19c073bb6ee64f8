"""Evaluators: architecture in, metrics and cost out.

Evaluators are registered in :data:`EVALUATORS`; an entry has a ``Config`` and is called
as ``entry(config, space=space)``. torch and the supernet package are imported only when
their evaluators are built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from evonas._registry import Component, Registry
from evonas.evaluation._base import BatchEvaluator, EvalBatch, Evaluation, EvaluationWorker, Evaluator, evaluate_batch
from evonas.evaluation._tabular import (
    TableMetrics,
    TabularEvaluator,
    TabularEvaluatorConfig,
    build_tabular,
    with_table_metrics,
)

if TYPE_CHECKING:
    from evonas.evaluation._training import TrainingEvaluator, TrainingEvaluatorConfig

EVALUATORS: Registry[Any] = Registry("evaluator")
"""Evaluator name -> entry with ``Config``; ``evaluator = entry(config, space=space)``."""
EVALUATORS.register("tabular")(Component(TabularEvaluatorConfig, build_tabular))
EVALUATORS.register("training")(
    Component("evonas.evaluation._training:TrainingEvaluatorConfig", "evonas.evaluation._training:build_training")
)
# A finished ``evonas supernet train`` run: inherited weights, or its proxy predictor.
EVALUATORS.register("supernet")(
    Component("evonas.supernet._components:SupernetEvaluatorConfig", "evonas.supernet._components:build_supernet_evaluator")
)
EVALUATORS.register("proxy")(
    Component("evonas.supernet._components:ProxyEvaluatorConfig", "evonas.supernet._components:build_proxy_evaluator")
)


def __getattr__(name: str) -> object:
    # torch is imported only when training is asked for.
    if name in ("TrainingEvaluator", "TrainingEvaluatorConfig"):
        from evonas.evaluation import _training

        return getattr(_training, name)
    raise AttributeError(name)


__all__ = [
    "BatchEvaluator",
    "EVALUATORS",
    "EvalBatch",
    "Evaluation",
    "EvaluationWorker",
    "Evaluator",
    "TableMetrics",
    "TabularEvaluator",
    "TabularEvaluatorConfig",
    "TrainingEvaluator",
    "TrainingEvaluatorConfig",
    "evaluate_batch",
    "with_table_metrics",
]
