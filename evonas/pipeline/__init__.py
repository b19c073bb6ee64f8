"""The whole pipeline as one run (``evonas run``): supernet -> search -> final -> ensemble -> export.

See :mod:`evonas.pipeline._run` for the run directory's layout and
:class:`~evonas.pipeline.PipelineConfig` for the config.
"""

from __future__ import annotations

from evonas.pipeline._config import (
    STAGES,
    EnsembleStage,
    FinalStage,
    PipelineConfig,
    SearchStage,
    SupernetStage,
)
from evonas.pipeline._run import PIPELINE, PipelineRun, choose_export, format_summary, resume_pipeline, run_pipeline

__all__ = [
    "PIPELINE",
    "STAGES",
    "EnsembleStage",
    "FinalStage",
    "PipelineConfig",
    "PipelineRun",
    "SearchStage",
    "SupernetStage",
    "choose_export",
    "format_summary",
    "resume_pipeline",
    "run_pipeline",
]
