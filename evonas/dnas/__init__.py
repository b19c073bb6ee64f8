"""Differentiable architecture search on the NAS-Bench-201 cell.

:class:`MixedSuperNet` is the DARTS supernet built on the single-path supernet's modules
(every edge a softmax(α)-weighted sum of the five operations); :data:`DNAS_METHODS` holds
the search methods (``darts1``, ``darts2``, ``milenas``, ``nadarts``), each one step
function; :data:`DNAS_SELECTIONS` the ways to derive the cell (``magnitude``,
``perturbation``); :class:`DNASSearch` runs a :class:`DNASConfig` and returns the cell as
an nb201 genotype, which the table, the evolution and the trainer all take.
:class:`DNASRunConfig` and the ``dnas`` run kind (``evonas dnas train``) run one in a run
directory; :func:`load_cell` reads the cell a finished run derived.
"""

from __future__ import annotations

from evonas.dnas._config import ArchOptimConfig, DNASConfig
from evonas.dnas._methods import (
    DNAS_METHODS,
    Batch,
    DNASMethod,
    FirstOrderConfig,
    MiLeNASConfig,
    NADARTSConfig,
    StepContext,
    StepStats,
    UnrolledConfig,
    batch_loss,
    darts1_step,
    darts2_step,
    edit_moves,
    milenas_step,
    move_towards,
    nadarts_step,
    unrolled_arch_gradient,
    weight_step,
)
from evonas.dnas._mixed import MixedSuperNet
from evonas.dnas._run import (
    DNASRunConfig,
    cell_depth,
    cell_width,
    describe_cell,
    load_cell,
    parameter_free_share,
)
from evonas.dnas._search import DNASSearch
from evonas.dnas._select import (
    DNAS_SELECTIONS,
    DNASSelection,
    MagnitudeConfig,
    PerturbationConfig,
    SelectionContext,
    evaluate_weights,
    magnitude,
    perturbation,
    removal_weights,
)

__all__ = [
    "DNAS_METHODS",
    "DNAS_SELECTIONS",
    "ArchOptimConfig",
    "Batch",
    "DNASConfig",
    "DNASRunConfig",
    "DNASMethod",
    "DNASSearch",
    "DNASSelection",
    "FirstOrderConfig",
    "MagnitudeConfig",
    "MiLeNASConfig",
    "MixedSuperNet",
    "NADARTSConfig",
    "PerturbationConfig",
    "SelectionContext",
    "StepContext",
    "StepStats",
    "UnrolledConfig",
    "batch_loss",
    "cell_depth",
    "cell_width",
    "describe_cell",
    "darts1_step",
    "darts2_step",
    "edit_moves",
    "evaluate_weights",
    "load_cell",
    "magnitude",
    "milenas_step",
    "move_towards",
    "nadarts_step",
    "parameter_free_share",
    "perturbation",
    "removal_weights",
    "unrolled_arch_gradient",
    "weight_step",
]
