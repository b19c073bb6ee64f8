"""The one-shot half of the pipeline: a single-path weight-sharing supernet, its samplers,
its evaluator and the proxy-validation loop.

A run's ``space`` section builds the search space, its ``supernet`` section names an
entry of :data:`SUPERNETS` serving that space (``nb201``: :class:`SuperNet`), and its
``sampler`` section an entry of :data:`SAMPLERS` (``uniform``, ``novelty``,
``importance``, ``fair``). ``evonas supernet train`` runs :data:`SUPERNET`, the
``supernet`` run kind (:class:`SupernetTrainer` in a run directory);
:class:`SupernetEvaluator` scores architectures with inherited weights;
:class:`PredictorEvaluator` scores them with the proxy predictor fitted on the
``(architecture, validation loss)`` memory; ``evonas supernet rank`` ranks a finished
run's architectures against NAS-Bench-201.
"""

from __future__ import annotations

from evonas.supernet._actor import SupernetActorEvaluator
from evonas.supernet._config import (
    ProxyConfig,
    SupernetEvalConfig,
    SupernetRunConfig,
    SupernetTrainConfig,
)
from evonas.supernet._evaluator import EvalData, SupernetEvaluator
from evonas.supernet._network import SuperCell, SuperNet, cumulative_bn
from evonas.supernet._proxy import (
    PROXY_METRIC,
    PredictorEvaluator,
    ProxyMemory,
    fit_proxy_predictor,
    make_proxy_predictor,
)
from evonas.supernet._rank import RankResult, num_conv3x3, rank_architectures
from evonas.supernet._run import (
    SUPERNET,
    SupernetRun,
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
from evonas.supernet._supernets import (
    SUPERNETS,
    NB201SupernetConfig,
    build_supernet,
    check_supernet,
)
from evonas.supernet._trainer import (
    SupernetResult,
    SupernetTrainer,
    TrainState,
    check_capabilities,
    lr_at,
)

__all__ = [
    "PROXY_METRIC",
    "SAMPLERS",
    "SUPERNET",
    "SUPERNETS",
    "EvalData",
    "FairSampler",
    "ImportanceSampler",
    "NB201SupernetConfig",
    "NoveltySampler",
    "PredictorEvaluator",
    "ProxyConfig",
    "ProxyMemory",
    "RankResult",
    "Sampler",
    "SuperCell",
    "SuperNet",
    "SupernetActorEvaluator",
    "SupernetEvalConfig",
    "SupernetEvaluator",
    "SupernetResult",
    "SupernetRun",
    "SupernetRunConfig",
    "SupernetTrainConfig",
    "SupernetTrainer",
    "TrainState",
    "UniformSampler",
    "build_supernet",
    "check_capabilities",
    "check_supernet",
    "coverage",
    "cumulative_bn",
    "fit_proxy_predictor",
    "load_predictor",
    "load_supernet",
    "load_supernet_evaluator",
    "lr_at",
    "make_proxy_predictor",
    "make_sampler",
    "num_conv3x3",
    "op_balance",
    "rank_architectures",
    "rank_run",
    "resume_training",
    "start_training",
]
