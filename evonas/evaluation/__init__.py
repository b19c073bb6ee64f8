"""Evaluators: architecture in, metrics and cost out."""

from __future__ import annotations

from evonas._registry import Component, Registry
from evonas.evaluation._base import Evaluation, Evaluator
from evonas.evaluation._tabular import TabularEvaluator, TabularEvaluatorConfig, load_table_cached
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from evonas.evaluation._training import TrainingEvaluator, TrainingEvaluatorConfig

EVALUATORS: Registry[Component] = Registry("evaluator")
EVALUATORS.register("tabular")(
    Component("evonas.evaluation._tabular:TabularEvaluatorConfig", "evonas.evaluation._factories:build_tabular")
)
EVALUATORS.register("training")(
    Component("evonas.evaluation._training:TrainingEvaluatorConfig", "evonas.evaluation._factories:build_training")
)
# A finished ``evonas supernet train`` run: inherited weights, or its proxy predictor.
EVALUATORS.register("supernet")(
    Component("evonas.supernet._components:SupernetEvaluatorConfig",
              "evonas.supernet._components:build_supernet_evaluator")
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
    "EVALUATORS",
    "Evaluation",
    "Evaluator",
    "TabularEvaluator",
    "TabularEvaluatorConfig",
    "TrainingEvaluator",
    "TrainingEvaluatorConfig",
    "load_table_cached",
]
