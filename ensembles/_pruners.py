"""Ensemble pruners: choose a small sub-ensemble from trained candidates.

Every pruner is registered in :data:`PRUNERS` and has the signature::

    pruner(probs, labels, rng, *, size=None, max_fraction=None, **params) -> Selection

where ``probs`` are the candidates' *validation* distributions, shape ``(M, N, C)``,
``labels`` the validation labels, shape ``(N,)``, and ``rng`` a
:class:`numpy.random.Generator` (only PRS draws from it; the others are deterministic).
``size`` / ``max_fraction`` set the target: the exact number of members kept by the
fixed-size pruners (PRS, PIE, top-k; default ``max_fraction=0.5``) and an upper bound
for the pruners with their own stopping rule (PAP, Caruana; default: no bound).
:func:`prune` looks a pruner up by name and checks its parameters.

SAEP (Bian et al., "Sub-Architecture Ensemble Pruning in Neural Architecture Search",
IEEE TNNLS 33(12), 2022, published online 2021; arXiv:1910.00370) prunes the growing
ensemble of AdaNet after each search iteration with one of three criteria. Here they are
applied post hoc to a pool of independently trained candidates, combined by averaging
probabilities:

* **PRS** - pruning by random selection.
* **PAP** - pruning by accuracy performance: a member is pruned when the ensemble
  without it is at least as accurate on validation data as the ensemble with it.
* **PIE** - pruning by information entropy: keep the sub-ensemble that maximises the
  sum over pairs of ``TDAC(i, j) = lam * VI(i, j) + (1 - lam) * (MI(i, y) + MI(j, y)) / 2``
  (the objective of COMEP, Bian et al., IEEE TNNLS 31(9), 2020), found greedily.

Direction of each criterion, and what could be checked. Of the paper only the abstract
was readable through the reference tools (the body is not in the stored corpora); it
states the aim - leverage diversity, reach a smaller sub-ensemble with performance
comparable to the unpruned one. The directions below follow that aim and the definitions
above; the authors' code (github.com/eustomaqua/SAEP) was read for comparison only. Where the definitions leave a choice open, the choice is stated:

* PAP removes members whose removal does **not reduce** validation accuracy
  (``acc(S \\ {i}) >= acc(S)``), i.e. it keeps the members the ensemble needs. The
  authors' code (``saep/ensemble_weighted.py``, ``prune_*_worthfully``) keeps, as far
  as it can be read, the members with ``err(S) - err(S \\ {i}) > 0`` - exactly those
  whose removal *lowers* the error - and prunes the rest: the opposite direction, which
  contradicts the stated criterion and the aim, so it is not followed. Choices made here:
  equal accuracy qualifies ("does not reduce"); among qualifying members the removal
  leaving the most accurate ensemble goes first (then the lowest NLL, then the highest
  index); removals repeat until none qualifies (the code prunes once per AdaNet round).
* PIE **maximises** TDAC: VI is a distance (large for members that disagree), so the
  first term rewards diversity; ``MI(h, y)`` is the relevance of a member's predictions
  to the labels, so the second rewards accuracy. An exact duplicate of a selected member
  has ``VI = 0`` and is therefore selected last - duplicates are pruned first. VI and MI
  are normalised as in the authors' code (``1 - I/H(joint)`` and ``I / sqrt(H H)``), so
  both terms lie in ``[0, 1]`` and ``lam`` trades them on one scale. Choices made here: a
  sum of pairwise terms does not rank a single member, so the greedy search starts from
  the member with the highest ``MI(h, y)`` (the code starts from a random one), which
  makes PIE deterministic; ties go to the lowest index; TDAC of identical predictions
  follows the formula, ``(1 - lam) * MI(h, y)`` (the code sets it to 0).
* PRS: SAEP prunes a random member during the search; post hoc this is a uniformly
  random subset of the target size.

Baselines: top-k by validation accuracy, and greedy forward selection with replacement
(Caruana et al., "Ensemble Selection from Libraries of Models", ICML 2004).
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any

import numpy as np

from ensembles._diversity import normalized_mutual_information, variation_of_information
from ensembles._validation import as_labels, as_prob_stack, resolve_size
from evonas._registry import Registry
from evonas.config import MAX_COUNT, check_choice, check_int, check_number
from evonas.errors import ConfigError, DataError

# Same floor as sklearn's log_loss (float64 machine epsilon), so scores agree with ensembles.nll.
_EPS = float(np.finfo(np.float64).eps)


@dataclasses.dataclass(frozen=True)
class Selection:
    """The sub-ensemble chosen by a pruner.

    Args:
        indices: Distinct candidate indices, in the order the pruner selected them
            (for PAP, the most important first: the reverse of its removal order).
        weights: Combination weight of each selected member, non-negative, summing to 1
            (uniform except for Caruana's selection with replacement, where a member's
            weight is the share of its repeats).
    """

    indices: tuple[int, ...]
    weights: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.indices) != len(self.weights) or not self.indices:
            raise DataError(
                f"a selection needs one weight per index and at least one index; got {self.indices} and {self.weights}"
            )
        if len(set(self.indices)) != len(self.indices):
            raise DataError(f"selected indices must be distinct; got {self.indices}")

    def __len__(self) -> int:
        return len(self.indices)

    @classmethod
    def uniform(cls, indices: Any) -> Selection:
        """A selection of ``indices`` with equal weights."""
        idx = tuple(int(i) for i in indices)
        return cls(idx, tuple(1.0 / len(idx) for _ in idx))


Pruner = Callable[..., Selection]

PRUNERS: Registry[Pruner] = Registry("pruner")
"""Pruners by name: ``prs``, ``pap``, ``pie`` (SAEP) and the baselines ``top_k``, ``caruana``."""


# --------------------------------------------------------------------------- helpers
def _inputs(probs: Any, labels: Any, rng: Any) -> tuple[np.ndarray, np.ndarray]:
    p = as_prob_stack(probs, "candidate probabilities")
    y = as_labels(labels, num_samples=p.shape[1], num_classes=p.shape[2])
    if not isinstance(rng, np.random.Generator):
        raise ConfigError(f"rng must be a numpy.random.Generator (e.g. np.random.default_rng(0)); got {rng!r}")
    return p, y


def _accuracy(mix: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(np.argmax(mix, axis=-1) == y))


def _nll(mix: np.ndarray, y: np.ndarray) -> float:
    return float(-np.mean(np.log(np.clip(mix[np.arange(y.shape[0]), y], _EPS, None))))


def _member_scores(p: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validation accuracy and NLL of every member alone."""
    return np.array([_accuracy(m, y) for m in p]), np.array([_nll(m, y) for m in p])


# ---------------------------------------------------------------------------- SAEP: PRS
@PRUNERS.register("prs")
def prune_random(
    probs: Any, labels: Any, rng: np.random.Generator, *, size: int | None = None, max_fraction: float | None = None
) -> Selection:
    """PRS of SAEP (Bian et al., TNNLS 2021): a uniformly random sub-ensemble.

    Args:
        probs: Candidates' validation distributions.
        labels: Validation labels (checked, otherwise unused).
        rng: Source of the random choice.
        size: Number of members to keep.
        max_fraction: Or the fraction of candidates to keep (default 0.5).

    Shapes:
        probs: ``(M, N, C)``; labels: ``(N,)``.
    """
    p, _ = _inputs(probs, labels, rng)
    k = resolve_size(p.shape[0], size, max_fraction, default_fraction=0.5, owner="pruner 'prs'")
    return Selection.uniform(rng.permutation(p.shape[0])[:k])


# ---------------------------------------------------------------------------- SAEP: PAP
def _removal_key(total: np.ndarray, member: np.ndarray, n: int, y: np.ndarray, i: int) -> tuple[float, float, int]:
    """How good removing member ``i`` is; larger is better: accuracy of the rest, then
    -NLL, then the index (``total`` sums the current members' probabilities, ``n`` are left)."""
    mix = (total - member) / n
    return _accuracy(mix, y), -_nll(mix, y), i


@PRUNERS.register("pap")
def prune_accuracy(
    probs: Any, labels: Any, rng: np.random.Generator, *, size: int | None = None, max_fraction: float | None = None
) -> Selection:
    """PAP of SAEP (Bian et al., TNNLS 2021): backward elimination by validation accuracy.

    Starting from all candidates (averaged probabilities), repeatedly remove a member
    whose removal does not reduce the ensemble's validation accuracy - the one whose
    removal leaves the most accurate ensemble, ties to the lower NLL, then to the higher
    index. Stops when every removal would reduce accuracy, or at one member. If ``size``
    (or ``max_fraction``) is given and more members remain, elimination goes on with the
    least harmful removals until that many are left.

    Args:
        probs: Candidates' validation distributions.
        labels: Validation labels.
        rng: Unused (PAP is deterministic); part of the common signature.
        size: Upper bound on the number of members kept (default: none).
        max_fraction: Or the bound as a fraction of the candidates.

    Returns:
        The kept members, most important first (the reverse of the order in which the
        elimination, continued to one member, would remove them).

    Shapes:
        probs: ``(M, N, C)``; labels: ``(N,)``.
    """
    p, y = _inputs(probs, labels, rng)
    m = p.shape[0]
    bound = resolve_size(m, size, max_fraction, default_fraction=None, owner="pruner 'pap'")
    remaining = list(range(m))
    total = p.sum(axis=0)
    removed: list[int] = []
    natural_stop: int | None = None
    # The removal chosen never depends on the bound (a qualifying removal always ranks
    # first), so one elimination to a single member yields the answer for every bound.
    while len(remaining) > 1:
        current = _accuracy(total, y)
        n = len(remaining) - 1
        best_key = max(_removal_key(total, p[i], n, y, i) for i in remaining)
        best = best_key[2]
        if natural_stop is None and best_key[0] < current:
            natural_stop = len(remaining)
        remaining.remove(best)
        removed.append(best)
        total = total - p[best]
    order = remaining + removed[::-1]
    keep = natural_stop if natural_stop is not None else 1
    if bound is not None:
        keep = min(keep, bound)
    return Selection.uniform(order[:keep])


# ---------------------------------------------------------------------------- SAEP: PIE
def tdac_matrix(preds: Any, labels: Any, lam: float = 0.5) -> np.ndarray:
    """Pairwise TDAC of SAEP's PIE (COMEP objective, Bian et al., TNNLS 2020).

    ``TDAC(i, j) = lam * VI(i, j) + (1 - lam) * (MI(i, y) + MI(j, y)) / 2`` with the
    normalised variation of information ``VI = 1 - I/H(joint)`` between the members'
    predicted labels and the normalised mutual information ``MI = I / sqrt(H H)`` between
    a member's predicted labels and the true labels.

    Args:
        preds: Predicted labels of every member.
        labels: True labels.
        lam: Weight of diversity against relevance, in ``[0, 1]``.

    Shapes:
        preds: ``(M, N)``; labels: ``(N,)``; returns ``(M, M)`` (the diagonal holds
        ``(1 - lam) * MI(i, y)``).
    """
    check_number(lam, "lam", 0.0, 1.0, owner="tdac_matrix")
    pr = np.asarray(preds)
    if pr.ndim != 2:
        raise DataError(f"preds must have shape (num_members, num_samples); got shape {pr.shape}")
    y = as_labels(labels, num_samples=pr.shape[1])
    relevance, vi = _pie_terms(pr, y)
    return float(lam) * vi + (1.0 - float(lam)) * (relevance[:, None] + relevance[None, :]) / 2.0


def _pie_terms(preds: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Normalised ``MI(h_i, y)`` of every member and normalised ``VI(h_i, h_j)`` of every pair."""
    relevance = np.array([normalized_mutual_information(row, y) for row in preds])
    m = preds.shape[0]
    vi = np.zeros((m, m))
    for i in range(m):
        for j in range(i + 1, m):
            vi[i, j] = vi[j, i] = variation_of_information(preds[i], preds[j], normalized=True)
    return relevance, vi


@PRUNERS.register("pie")
def prune_information(
    probs: Any,
    labels: Any,
    rng: np.random.Generator,
    *,
    size: int | None = None,
    max_fraction: float | None = None,
    lam: float = 0.5,
) -> Selection:
    """PIE of SAEP (Bian et al., TNNLS 2021): greedy maximisation of the summed pairwise TDAC.

    Starts from the member whose predictions carry the most information about the labels
    (highest normalised ``MI(h, y)``), then repeatedly adds the candidate ``j`` maximising
    ``sum_{i in S} TDAC(i, j)`` (see :func:`tdac_matrix`), ties to the lowest index, until
    the target size. Uses each member's most probable class as its prediction.

    Args:
        probs: Candidates' validation distributions.
        labels: Validation labels.
        rng: Unused (PIE is deterministic); part of the common signature.
        size: Number of members to keep.
        max_fraction: Or the fraction of candidates to keep (default 0.5).
        lam: Weight ``lambda`` of diversity (VI) against relevance (MI), in ``[0, 1]``;
            default 0.5, the value in the authors' examples.

    Shapes:
        probs: ``(M, N, C)``; labels: ``(N,)``.
    """
    p, y = _inputs(probs, labels, rng)
    check_number(lam, "lam", 0.0, 1.0, owner="pruner 'pie'")
    k = resolve_size(p.shape[0], size, max_fraction, default_fraction=0.5, owner="pruner 'pie'")
    relevance, vi = _pie_terms(np.argmax(p, axis=-1), y)
    w = float(lam)
    tdac = w * vi + (1.0 - w) * (relevance[:, None] + relevance[None, :]) / 2.0
    selected = [int(np.argmax(relevance))]  # argmax returns the lowest index among ties
    score = tdac[selected[0]].copy()
    while len(selected) < k:
        candidates = np.setdiff1d(np.arange(p.shape[0]), selected)
        nxt = int(candidates[np.argmax(score[candidates])])
        selected.append(nxt)
        score += tdac[nxt]
    return Selection.uniform(selected)


# -------------------------------------------------------------------------- baselines
@PRUNERS.register("top_k")
def prune_top_k(
    probs: Any, labels: Any, rng: np.random.Generator, *, size: int | None = None, max_fraction: float | None = None
) -> Selection:
    """Baseline: the ``k`` candidates with the highest validation accuracy.

    Ties go to the lower validation NLL, then to the lower index.

    Args:
        probs: Candidates' validation distributions.
        labels: Validation labels.
        rng: Unused; part of the common signature.
        size: Number of members to keep.
        max_fraction: Or the fraction of candidates to keep (default 0.5).

    Shapes:
        probs: ``(M, N, C)``; labels: ``(N,)``.
    """
    p, y = _inputs(probs, labels, rng)
    k = resolve_size(p.shape[0], size, max_fraction, default_fraction=0.5, owner="pruner 'top_k'")
    acc, nll = _member_scores(p, y)
    order = np.lexsort((np.arange(p.shape[0]), nll, -acc))
    return Selection.uniform(order[:k])


_CARUANA_METRICS = ("nll", "accuracy")


@PRUNERS.register("caruana")
def prune_caruana(
    probs: Any,
    labels: Any,
    rng: np.random.Generator,
    *,
    size: int | None = None,
    max_fraction: float | None = None,
    metric: str = "nll",
    n_init: int = 1,
    iterations: int | None = None,
) -> Selection:
    """Baseline: greedy forward selection with replacement (Caruana et al., ICML 2004).

    The ensemble is a bag of candidates whose probabilities are averaged. It starts with
    the ``n_init`` best single candidates ("sorted ensemble initialization"),
    then ``iterations`` times adds the candidate - possibly one already in the bag - that
    most improves the validation ``metric`` (ties to the lowest index). The result is the
    best bag met along the way (the earliest among equals), so adding a member twice
    doubles its weight. With ``size`` (or ``max_fraction``) at most that many distinct
    candidates enter; once reached, only repeats are added.

    Args:
        probs: Candidates' validation distributions.
        labels: Validation labels.
        rng: Unused (deterministic); part of the common signature.
        size: Upper bound on the number of distinct members (default: none).
        max_fraction: Or the bound as a fraction of the candidates.
        metric: ``"nll"`` (minimised) or ``"accuracy"`` (maximised, ties by NLL).
        n_init: Number of best single candidates the bag starts with.
        iterations: Number of additions after the start (default ``2 * M``).

    Returns:
        Distinct members in order of first selection, weighted by their share of the bag.

    Shapes:
        probs: ``(M, N, C)``; labels: ``(N,)``.
    """
    p, y = _inputs(probs, labels, rng)
    m = p.shape[0]
    owner = "pruner 'caruana'"
    check_choice(metric, "metric", _CARUANA_METRICS, owner=owner)
    bound = resolve_size(m, size, max_fraction, default_fraction=None, owner=owner)
    limit = m if bound is None else bound
    check_int(n_init, "n_init", 1, limit, owner=owner)
    check_int(iterations, "iterations", 0, MAX_COUNT, optional=True, owner=owner)
    n_init = int(n_init)
    iterations = 2 * m if iterations is None else int(iterations)

    def score(mix: np.ndarray) -> tuple[float, float]:
        # Larger is better in both components.
        nll = _nll(mix, y)
        return (-nll, 0.0) if metric == "nll" else (_accuracy(mix, y), -nll)

    single = [score(member) for member in p]
    # Stable sort: equal scores keep index order.
    start = sorted(range(m), key=lambda i: single[i], reverse=True)[:n_init]
    bag = list(start)
    total = p[bag].sum(axis=0)
    best_score, best_len = score(total / len(bag)), len(bag)
    for _ in range(iterations):
        distinct = set(bag)
        pool = sorted(distinct) if len(distinct) >= limit else range(m)
        # max() keeps the first of equal scores, i.e. the lowest index.
        step_best, pick = max(((score((total + p[c]) / (len(bag) + 1)), c) for c in pool), key=lambda t: t[0])
        bag.append(pick)
        total = total + p[pick]
        if step_best > best_score:
            best_score, best_len = step_best, len(bag)
    chosen = bag[:best_len]
    order = list(dict.fromkeys(chosen))
    counts = np.array([chosen.count(i) for i in order], dtype=np.float64)
    return Selection(tuple(order), tuple((counts / counts.sum()).tolist()))


# ------------------------------------------------------------------------ entry point
def pruner_parameters(name: str) -> list[str]:
    """Names of the keyword parameters of pruner ``name`` (e.g. ``size``, ``lam``)."""
    fn = PRUNERS.get(name)
    return [
        p.name for p in inspect.signature(fn).parameters.values() if p.kind is inspect.Parameter.KEYWORD_ONLY
    ]


def prune(name: str, probs: Any, labels: Any, rng: np.random.Generator, **params: Any) -> Selection:
    """Run the registered pruner ``name``, rejecting parameters it does not take.

    Args:
        name: A name in :data:`PRUNERS`.
        probs: Candidates' validation distributions.
        labels: Validation labels.
        rng: Random generator (used by PRS).
        **params: The pruner's keyword parameters (``size``, ``max_fraction``, ...).

    Shapes:
        probs: ``(M, N, C)``; labels: ``(N,)``.

    Raises:
        UnknownChoiceError: ``name`` is not registered.
        ConfigError: A parameter the pruner does not take, or an invalid value.
    """
    valid = pruner_parameters(name)
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise ConfigError(f"pruner {name!r} takes no parameter {unknown[0]!r}; valid parameters: {', '.join(valid)}")
    return PRUNERS.get(name)(probs, labels, rng, **params)
