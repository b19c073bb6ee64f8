"""The one-shot half of the pipeline: a single-path weight-sharing supernet over the
NAS-Bench-201 space, its samplers, its evaluator and the proxy-validation loop.

``SupernetTrainer(config).train()`` trains a :class:`SuperNet` on architectures proposed
by a registered sampler (``uniform``, ``novelty``, ``importance``, ``fair``);
:class:`SupernetEvaluator` scores architectures with inherited weights;
:class:`PredictorEvaluator` scores them with the proxy predictor fitted on the
``(architecture, validation loss)`` memory. ``evonas supernet train|rank`` drive it from
the command line.
"""

from __future__ import annotations

from evonas.supernet._actor import SupernetActorEvaluator
from evonas.supernet._config import (
    ProxyConfig,
    SamplerConfig,
    SupernetEvalConfig,
    SupernetRunConfig,
    SupernetSpec,
    SupernetTrainConfig,
)
from evonas.supernet._evaluator import EvalData, SupernetEvaluator
from evonas.supernet._network import SuperCell, SuperNet, cell_plan, cumulative_bn
from evonas.supernet._proxy import PROXY_METRIC, PredictorEvaluator, ProxyMemory, fit_proxy_predictor
from evonas.supernet._rank import RankResult, num_conv3x3, rank_architectures
from evonas.supernet._run import (
    KIND,
    load_predictor,
    load_supernet,
    load_supernet_evaluator,
    rank_run,
    resume_training,
    start_training,
)
from evonas.supernet._samplers import (
    SAMPLERS,
    FairSampler,
    ImportanceSampler,
    NoveltySampler,
    Sampler,
    UniformSampler,
    coverage,
    make_sampler,
    op_balance,
)
from evonas.supernet._trainer import SupernetResult, SupernetTrainer, TrainState, lr_at

__all__ = [
    "KIND",
    "PROXY_METRIC",
    "SAMPLERS",
    "EvalData",
    "FairSampler",
    "ImportanceSampler",
    "NoveltySampler",
    "PredictorEvaluator",
    "ProxyConfig",
    "ProxyMemory",
    "RankResult",
    "Sampler",
    "SamplerConfig",
    "SuperCell",
    "SuperNet",
    "SupernetEvalConfig",
    "SupernetActorEvaluator",
    "SupernetEvaluator",
    "SupernetResult",
    "SupernetRunConfig",
    "SupernetSpec",
    "SupernetTrainConfig",
    "SupernetTrainer",
    "TrainState",
    "UniformSampler",
    "cell_plan",
    "coverage",
    "cumulative_bn",
    "fit_proxy_predictor",
    "load_predictor",
    "load_supernet",
    "load_supernet_evaluator",
    "lr_at",
    "make_sampler",
    "num_conv3x3",
    "op_balance",
    "rank_architectures",
    "rank_run",
    "resume_training",
    "start_training",
]
