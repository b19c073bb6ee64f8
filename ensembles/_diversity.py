"""Pairwise diversity of ensemble members.

Label-based ("oracle") measures follow Kuncheva & Whitaker, "Measures of Diversity in
Classifier Ensembles and Their Relationship with the Ensemble Accuracy", Machine Learning
51, 2003. For two members a and b and N samples, with the oracle output 1 where a member
is correct and 0 where it is wrong, let

    N11 = both correct,  N10 = a correct and b wrong,
    N01 = a wrong and b correct,  N00 = both wrong.

Information-theoretic measures treat a member's predicted labels as a discrete random
variable over the samples (entropies in nats, estimated from counts), as in the PIE
criterion of SAEP (Bian et al., IEEE TNNLS 2021) and its source, COMEP (Bian et al.,
"Ensemble Pruning Based on Objection Maximization With a General Distributed Framework",
IEEE TNNLS 2020).

Every pairwise measure is registered in :data:`DIVERSITY` under a short name with the
signature ``f(probs_a, probs_b, labels) -> float``; :func:`pairwise_diversity` builds the
``(M, M)`` matrix of one of them over an ensemble.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.special import rel_entr
from scipy.stats import entropy
from sklearn.metrics import mutual_info_score, normalized_mutual_info_score
from sklearn.metrics.cluster import contingency_matrix

from ensembles._validation import as_labels, as_predictions, as_prob_matrix, as_prob_stack
from evonas._registry import Registry
from evonas.errors import DataError

PairwiseMeasure = Callable[[np.ndarray, np.ndarray, np.ndarray], float]

DIVERSITY: Registry[PairwiseMeasure] = Registry("diversity measure")
"""Pairwise measures ``f(probs_a, probs_b, labels) -> float`` by name."""


# --------------------------------------------------------------------------- helpers
def _pair(pred_a: Any, pred_b: Any) -> tuple[np.ndarray, np.ndarray]:
    a = as_predictions(pred_a, "pred_a")
    b = as_predictions(pred_b, "pred_b")
    if a.shape != b.shape:
        raise DataError(f"pred_a and pred_b must have the same length; got shapes {a.shape} and {b.shape}")
    if a.size == 0:
        raise DataError("pred_a and pred_b hold no samples")
    return a, b


def oracle_counts(pred_a: Any, pred_b: Any, labels: Any) -> tuple[int, int, int, int]:
    """``(N11, N10, N01, N00)`` of two members' oracle outputs (Kuncheva & Whitaker 2003).

    Shapes:
        pred_a, pred_b, labels: ``(N,)`` class indices.
    """
    a, b = _pair(pred_a, pred_b)
    y = as_labels(labels, num_samples=a.shape[0])
    ca, cb = a == y, b == y
    return (
        int(np.sum(ca & cb)),
        int(np.sum(ca & ~cb)),
        int(np.sum(~ca & cb)),
        int(np.sum(~ca & ~cb)),
    )


# ------------------------------------------------------------------ label-based measures
def disagreement(pred_a: Any, pred_b: Any, labels: Any | None = None) -> float:
    """Disagreement between two members.

    Without ``labels``: the fraction of samples on which the predicted labels differ
    (Ho, "The Random Subspace Method", IEEE TPAMI 1998). With ``labels``: the oracle
    disagreement ``(N01 + N10) / N`` of Skalak (1996) and Kuncheva & Whitaker (2003),
    which counts only samples where exactly one member is correct (two different wrong
    labels are not a disagreement there).

    Shapes:
        pred_a, pred_b, labels: ``(N,)`` class indices.
    """
    a, b = _pair(pred_a, pred_b)
    if labels is None:
        return float(np.mean(a != b))
    n11, n10, n01, n00 = oracle_counts(a, b, labels)
    return (n01 + n10) / (n11 + n10 + n01 + n00)


def q_statistic(pred_a: Any, pred_b: Any, labels: Any) -> float:
    """Yule's Q of two members' oracle outputs (Kuncheva & Whitaker 2003).

    ``Q = (N11 N00 - N01 N10) / (N11 N00 + N01 N10)`` in ``[-1, 1]``: 1 for members that
    are right and wrong together, 0 for independent errors, negative when one tends to
    be right where the other is wrong. NaN when the denominator is 0, e.g. when both
    members are always correct (Q is undefined there).

    Shapes:
        pred_a, pred_b, labels: ``(N,)`` class indices.
    """
    n11, n10, n01, n00 = oracle_counts(pred_a, pred_b, labels)
    denominator = n11 * n00 + n01 * n10
    if denominator == 0:
        return float("nan")
    return (n11 * n00 - n01 * n10) / denominator


def error_correlation(pred_a: Any, pred_b: Any, labels: Any) -> float:
    """Correlation of two members' errors (Kuncheva & Whitaker 2003).

    ``rho = (N11 N00 - N01 N10) / sqrt((N11+N10)(N01+N00)(N11+N01)(N10+N00))``, the
    Pearson correlation of the 0/1 error indicators (equal to that of the oracle outputs).
    NaN when a member is always right or always wrong (zero variance).

    Shapes:
        pred_a, pred_b, labels: ``(N,)`` class indices.
    """
    n11, n10, n01, n00 = oracle_counts(pred_a, pred_b, labels)
    denominator = float(n11 + n10) * (n01 + n00) * (n11 + n01) * (n10 + n00)
    if denominator == 0:
        return float("nan")
    return (n11 * n00 - n01 * n10) / float(np.sqrt(denominator))


# ------------------------------------------------------------- distribution-based measure
def kl_divergence(probs_a: Any, probs_b: Any) -> float:
    """Mean Kullback-Leibler divergence ``KL(p_a || p_b)`` of two members' predictive distributions.

    ``1/N sum_n sum_c p_a[n,c] log(p_a[n,c] / p_b[n,c])`` in nats (``scipy.special.rel_entr``);
    asymmetric; infinite when ``p_b`` is 0 where ``p_a`` is not.

    Shapes:
        probs_a, probs_b: ``(N, C)``.
    """
    pa = as_prob_matrix(probs_a, "probs_a")
    pb = as_prob_matrix(probs_b, "probs_b")
    if pa.shape != pb.shape:
        raise DataError(f"probs_a and probs_b must have the same shape; got {pa.shape} and {pb.shape}")
    return float(rel_entr(pa, pb).sum(axis=1).mean())


# --------------------------------------------------------- information-theoretic measures
def mutual_information(pred_a: Any, pred_b: Any) -> float:
    """Mutual information ``I(a; b)`` of two label vectors, in nats (``sklearn.metrics.mutual_info_score``)."""
    a, b = _pair(pred_a, pred_b)
    return float(mutual_info_score(a, b))


def normalized_mutual_information(pred_a: Any, pred_b: Any) -> float:
    """Normalised mutual information ``I(a; b) / sqrt(H(a) H(b))`` in ``[0, 1]``.

    The geometric normalisation used by COMEP/SAEP (Strehl & Ghosh, "Cluster Ensembles",
    JMLR 2002), computed by ``sklearn.metrics.normalized_mutual_info_score`` with
    ``average_method="geometric"``: 1 when both vectors are constant, 0 when only one is.
    Like every information measure it ignores what the labels are called: a member
    predicting a consistent relabelling of the truth has NMI 1 with it.

    Shapes:
        pred_a, pred_b: ``(N,)`` class indices.
    """
    a, b = _pair(pred_a, pred_b)
    return float(normalized_mutual_info_score(a, b, average_method="geometric"))


def variation_of_information(pred_a: Any, pred_b: Any, normalized: bool = True) -> float:
    """Variation of information between two label vectors.

    ``VI(a, b) = H(a, b) - I(a; b) = H(a) + H(b) - 2 I(a; b)`` in nats (Meila, "Comparing
    clusterings - an information based distance", J. Multivariate Analysis 2007). With
    ``normalized=True`` it is divided by the joint entropy, ``1 - I(a; b) / H(a, b)`` in
    ``[0, 1]`` (Kraskov et al., "Hierarchical clustering using mutual information",
    Europhysics Letters 2005), the form COMEP/SAEP use in TDAC; 0 when both are constant.
    A distance: 0 for identical (or consistently relabelled) predictions, larger for
    more diverse members.

    Shapes:
        pred_a, pred_b: ``(N,)`` class indices.
    """
    a, b = _pair(pred_a, pred_b)
    joint = float(entropy(contingency_matrix(a, b).ravel()))
    vi = max(joint - float(mutual_info_score(a, b)), 0.0)
    if not normalized:
        return vi
    return vi / joint if joint > 0 else 0.0


# --------------------------------------------------------------------- registry & matrix
def _preds(probs: np.ndarray) -> np.ndarray:
    return np.argmax(probs, axis=-1)


@DIVERSITY.register("disagreement")
def _disagreement(pa: np.ndarray, pb: np.ndarray, labels: np.ndarray) -> float:
    return disagreement(_preds(pa), _preds(pb))


@DIVERSITY.register("oracle_disagreement")
def _oracle_disagreement(pa: np.ndarray, pb: np.ndarray, labels: np.ndarray) -> float:
    return disagreement(_preds(pa), _preds(pb), labels)


@DIVERSITY.register("q_statistic")
def _q_statistic(pa: np.ndarray, pb: np.ndarray, labels: np.ndarray) -> float:
    return q_statistic(_preds(pa), _preds(pb), labels)


@DIVERSITY.register("error_correlation")
def _error_correlation(pa: np.ndarray, pb: np.ndarray, labels: np.ndarray) -> float:
    return error_correlation(_preds(pa), _preds(pb), labels)


@DIVERSITY.register("kl_divergence")
def _kl_divergence(pa: np.ndarray, pb: np.ndarray, labels: np.ndarray) -> float:
    return kl_divergence(pa, pb)


@DIVERSITY.register("nmi")
def _nmi(pa: np.ndarray, pb: np.ndarray, labels: np.ndarray) -> float:
    return normalized_mutual_information(_preds(pa), _preds(pb))


@DIVERSITY.register("vi")
def _vi(pa: np.ndarray, pb: np.ndarray, labels: np.ndarray) -> float:
    return variation_of_information(_preds(pa), _preds(pb), normalized=True)


_SYMMETRIC = {"disagreement", "oracle_disagreement", "q_statistic", "error_correlation", "nmi", "vi"}


def pairwise_diversity(probs: Any, labels: Any, measure: str) -> np.ndarray:
    """Matrix of a registered diversity measure between every pair of members.

    Entry ``[i, j]`` is ``measure(probs[i], probs[j], labels)``; label-based measures use
    each member's most probable class. The diagonal is computed too (e.g. disagreement
    0, Q 1 or NaN, NMI 1, KL 0).

    Args:
        probs: Members' predicted distributions.
        labels: True classes.
        measure: A name in :data:`DIVERSITY` (``disagreement``, ``oracle_disagreement``,
            ``q_statistic``, ``error_correlation``, ``kl_divergence``, ``nmi``, ``vi``).

    Shapes:
        probs: ``(M, N, C)``; labels: ``(N,)``; returns ``(M, M)``.
    """
    fn = DIVERSITY.get(measure)
    p = as_prob_stack(probs)
    y = as_labels(labels, num_samples=p.shape[1], num_classes=p.shape[2])
    m = p.shape[0]
    out = np.empty((m, m))
    symmetric = measure in _SYMMETRIC
    for i in range(m):
        for j in range(m):
            if symmetric and j < i:
                out[i, j] = out[j, i]
            else:
                out[i, j] = fn(p[i], p[j], y)
    return out


def mean_pairwise(matrix: Any) -> float:
    """Mean of the off-diagonal entries of a pairwise matrix, ignoring NaN.

    NaN for fewer than two members or when every off-diagonal entry is NaN.

    Shapes:
        matrix: ``(M, M)``.
    """
    mat = np.asarray(matrix, dtype=np.float64)
    if mat.ndim != 2 or mat.shape[0] != mat.shape[1]:
        raise DataError(f"a pairwise matrix must be square; got shape {mat.shape}")
    off = mat[~np.eye(mat.shape[0], dtype=bool)]
    off = off[~np.isnan(off)]
    return float(off.mean()) if off.size else float("nan")


def ensemble_diversity(probs: Any, labels: Any, measure: str) -> float:
    """Mean pairwise ``measure`` over all ordered pairs of distinct members (NaN for one member).

    Shapes:
        probs: ``(M, N, C)``; labels: ``(N,)``.
    """
    return mean_pairwise(pairwise_diversity(probs, labels, measure))
