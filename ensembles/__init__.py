"""Ensembles of searched architectures: members, combiners, diversity, SAEP pruning, metrics.

Members are trained models reduced to stored logits (:class:`Member`, grouped with their
shared labels in a :class:`CandidatePool`); combiners average their probabilities;
pruners (:data:`PRUNERS`: SAEP's PRS, PAP and PIE after Bian et al., IEEE TNNLS 2021, and
the top-k and Caruana baselines) choose a small, diverse sub-ensemble on validation data;
the metrics and diversity measures evaluate it.

Building (:func:`build_ensemble`, ``evonas ensemble build``) trains candidate
architectures from scratch on any executor, saves them as members of a run directory,
prunes with every configured pruner and reports the ensembles on held-out test data.
Those parts import torch, so they load on first use.
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

# Building needs torch (training) and the evonas config machinery: imported on first use.
_LAZY = {
    "BuildResult": "ensembles._build",
    "build_ensemble": "ensembles._build",
    "check_pruners": "ensembles._build",
    "format_build_summary": "ensembles._build",
    "resume_ensemble": "ensembles._build",
    "Candidate": "ensembles._candidates",
    "candidates_from_search": "ensembles._candidates",
    "parse_archs": "ensembles._candidates",
    "resolve_candidates": "ensembles._candidates",
    "CandidatesConfig": "ensembles._config",
    "EnsembleConfig": "ensembles._config",
    "PrunerSpec": "ensembles._config",
    "load_ensemble_config": "ensembles._config",
    "resolve_ensemble_config": "ensembles._config",
    "CurvePoint": "ensembles._evaluate",
    "EnsembleEvaluation": "ensembles._evaluate",
    "EnsembleRow": "ensembles._evaluate",
    "evaluate_pool": "ensembles._evaluate",
    "size_curves": "ensembles._evaluate",
    "format_table": "ensembles._report",
    "write_ensemble_report": "ensembles._report",
    "MemberTrainer": "ensembles._training",
    "load_member_model": "ensembles._training",
    "member_from_evaluation": "ensembles._training",
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ensembles' has no attribute {name!r}")


__all__ = [
    "BuildResult",
    "Candidate",
    "CandidatesConfig",
    "CurvePoint",
    "EnsembleConfig",
    "EnsembleEvaluation",
    "EnsembleRow",
    "MemberTrainer",
    "PrunerSpec",
    "build_ensemble",
    "candidates_from_search",
    "check_pruners",
    "evaluate_pool",
    "format_build_summary",
    "format_table",
    "load_ensemble_config",
    "load_member_model",
    "member_from_evaluation",
    "parse_archs",
    "resolve_candidates",
    "resolve_ensemble_config",
    "resume_ensemble",
    "size_curves",
    "write_ensemble_report",
    "DEFAULT_ECE_BINS",
    "DIVERSITY",
    "PRUNERS",
    "CandidatePool",
    "Member",
    "Selection",
    "accuracy",
    "classification_metrics",
    "combine_probs",
    "disagreement",
    "ensemble_diversity",
    "error_correlation",
    "expected_calibration_error",
    "fit_weights",
    "kl_divergence",
    "mean_pairwise",
    "mutual_information",
    "nll",
    "normalized_mutual_information",
    "oracle_counts",
    "pairwise_diversity",
    "prune",
    "prune_accuracy",
    "prune_caruana",
    "prune_information",
    "prune_random",
    "prune_top_k",
    "pruner_parameters",
    "q_statistic",
    "softmax_logits",
    "tdac_matrix",
    "variation_of_information",
]
