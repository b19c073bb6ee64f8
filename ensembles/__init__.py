"""Ensembles of searched architectures: members, combiners, diversity, SAEP pruning, metrics.

Members are trained models reduced to stored logits (:class:`Member`, grouped with their
shared labels in a :class:`CandidatePool`); combiners average their probabilities;
pruners (:data:`PRUNERS`: SAEP's PRS, PAP and PIE after Bian et al., IEEE TNNLS 2021, and
the top-k and Caruana baselines) choose a small, diverse sub-ensemble on validation data;
the metrics and diversity measures evaluate it.

Building (``evonas ensemble build``, the ``ensemble`` run kind :data:`ENSEMBLE`, or
:func:`build_ensemble`) trains candidate architectures of the configured search space
from scratch on any executor, saves them as members of a run directory, prunes with
every configured pruner and reports the ensembles on held-out test data. Those parts
import torch, so they load on first use.
"""

from __future__ import annotations

from importlib import import_module

from ensembles._combine import combine_probs, fit_weights, softmax_logits
from ensembles._diversity import (
    DIVERSITY,
    disagreement,
    ensemble_diversity,
    error_correlation,
    kl_divergence,
    mean_pairwise,
    mutual_information,
    normalized_mutual_information,
    oracle_counts,
    pairwise_diversity,
    q_statistic,
    variation_of_information,
)
from ensembles._members import CandidatePool, Member
from ensembles._metrics import DEFAULT_ECE_BINS, accuracy, classification_metrics, expected_calibration_error, nll
from ensembles._pruners import (
    PRUNERS,
    Selection,
    prune,
    prune_accuracy,
    prune_caruana,
    prune_information,
    prune_random,
    prune_top_k,
    pruner_parameters,
    tdac_matrix,
)

# Building needs torch (training) and the evonas run machinery: imported on first use.
_LAZY = {
    "ENSEMBLE": "ensembles._build",
    "DataSizes": "ensembles._build",
    "EnsembleRun": "ensembles._build",
    "PlannedMember": "ensembles._build",
    "PreparedBuild": "ensembles._build",
    "build_ensemble": "ensembles._build",
    "check_pruners": "ensembles._build",
    "format_summary": "ensembles._build",
    "prepare_build": "ensembles._build",
    "resume_ensemble": "ensembles._build",
    "write_report": "ensembles._build",
    "Candidate": "ensembles._candidates",
    "candidates_from_search": "ensembles._candidates",
    "parse_archs": "ensembles._candidates",
    "resolve_candidates": "ensembles._candidates",
    "CandidatesConfig": "ensembles._config",
    "EnsembleConfig": "ensembles._config",
    "PrunerSpec": "ensembles._config",
    "load_ensemble_config": "ensembles._config",
    "CurvePoint": "ensembles._evaluate",
    "EnsembleEvaluation": "ensembles._evaluate",
    "EnsembleRow": "ensembles._evaluate",
    "evaluate_pool": "ensembles._evaluate",
    "size_curves": "ensembles._evaluate",
    "format_rows": "ensembles._report",
    "format_table": "ensembles._report",
    "write_ensemble_report": "ensembles._report",
    "METRIC_NAMES": "ensembles._training",
    "MemberFailure": "ensembles._training",
    "MemberResult": "ensembles._training",
    "MemberTrainer": "ensembles._training",
    "load_member_model": "ensembles._training",
    "member_from_result": "ensembles._training",
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ensembles' has no attribute {name!r}")


__all__ = [
    "DEFAULT_ECE_BINS",
    "DIVERSITY",
    "ENSEMBLE",
    "METRIC_NAMES",
    "PRUNERS",
    "Candidate",
    "CandidatePool",
    "CandidatesConfig",
    "CurvePoint",
    "DataSizes",
    "EnsembleConfig",
    "EnsembleEvaluation",
    "EnsembleRow",
    "EnsembleRun",
    "Member",
    "MemberFailure",
    "MemberResult",
    "MemberTrainer",
    "PlannedMember",
    "PreparedBuild",
    "PrunerSpec",
    "Selection",
    "accuracy",
    "build_ensemble",
    "candidates_from_search",
    "check_pruners",
    "classification_metrics",
    "combine_probs",
    "disagreement",
    "ensemble_diversity",
    "error_correlation",
    "evaluate_pool",
    "expected_calibration_error",
    "fit_weights",
    "format_rows",
    "format_summary",
    "format_table",
    "kl_divergence",
    "load_ensemble_config",
    "load_member_model",
    "mean_pairwise",
    "member_from_result",
    "mutual_information",
    "nll",
    "normalized_mutual_information",
    "oracle_counts",
    "pairwise_diversity",
    "parse_archs",
    "prepare_build",
    "prune",
    "prune_accuracy",
    "prune_caruana",
    "prune_information",
    "prune_random",
    "prune_top_k",
    "pruner_parameters",
    "q_statistic",
    "resolve_candidates",
    "resume_ensemble",
    "size_curves",
    "softmax_logits",
    "tdac_matrix",
    "variation_of_information",
    "write_ensemble_report",
    "write_report",
]
