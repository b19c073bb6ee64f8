"""Ensembles of searched architectures: members, combiners, diversity, SAEP pruning, metrics.

Members are trained models reduced to stored logits (:class:`Member`, grouped with their
shared labels in a :class:`CandidatePool`); combiners average their probabilities;
pruners (:data:`PRUNERS`: SAEP's PRS, PAP and PIE after Bian et al., IEEE TNNLS 2021, and
the top-k and Caruana baselines) choose a small, diverse sub-ensemble on validation data;
the metrics and diversity measures evaluate it.
"""

from __future__ import annotations

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

__all__ = [
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
