"""Evaluating pruned ensembles on held-out test data.

Every pruner chooses its members on the *validation* logits only; the chosen
sub-ensemble (probabilities averaged with the pruner's weights) is then scored on the
*test* split: accuracy, negative log-likelihood, expected calibration error, number of
members and parameters, and mean pairwise diversity. Baselines: the best single member
(chosen by validation accuracy, and the test oracle for reference), the full ensemble
averaged uniformly, and the full ensemble with non-negative weights fitted on validation
data (:func:`~ensembles.fit_weights`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from ensembles._combine import combine_probs, fit_weights
from ensembles._config import PrunerSpec
from ensembles._diversity import mean_pairwise, pairwise_diversity
from ensembles._members import CandidatePool
from ensembles._metrics import DEFAULT_ECE_BINS, accuracy, expected_calibration_error, nll
from ensembles._pruners import Selection, prune
from evonas._json import json_float
from evonas.config import check_int
from evonas.errors import DataError

BEST_SINGLE = "best single (val)"
BEST_SINGLE_ORACLE = "best single (test oracle)"
FULL = "full ensemble"
FULL_FITTED = "full (fitted weights)"
SAEP_PRUNERS = ("prs", "pap", "pie")
_WEIGHT_FLOOR = 1e-6


@dataclasses.dataclass(frozen=True)
class EnsembleRow:
    """One evaluated (sub-)ensemble.

    Attributes:
        label: Row name: a pruner's label or one of the baselines.
        kind: ``"pruner"`` or ``"baseline"``.
        pruner: Registered pruner name, or None for baselines.
        members: Names of the members kept, in selection order.
        weights: Their combination weights (sum 1).
        num_members: ``len(members)``.
        num_params: Summed parameters of the members (None if a member lacks a count).
        val_acc: Validation accuracy in percent (what the pruner saw).
        test_acc: Test accuracy in percent.
        test_nll: Test negative log-likelihood in nats.
        test_ece: Test expected calibration error (fraction).
        diversity: Mean pairwise test diversity of the members per measure (NaN for one member).
    """

    label: str
    kind: str
    pruner: str | None
    members: tuple[str, ...]
    weights: tuple[float, ...]
    num_members: int
    num_params: int | None
    val_acc: float
    test_acc: float
    test_nll: float
    test_ece: float
    diversity: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (NaN kept as the string ``'nan'``, see :mod:`evonas._json`)."""
        out = dataclasses.asdict(self)
        out["members"] = list(self.members)
        out["weights"] = list(self.weights)
        out["diversity"] = {k: json_float(v) for k, v in self.diversity.items()}
        for key in ("val_acc", "test_acc", "test_nll", "test_ece"):
            out[key] = json_float(out[key])
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EnsembleRow:
        """The row written by :meth:`to_dict` (e.g. read back from ``result.json``)."""
        return cls(
            label=str(data["label"]),
            kind=str(data["kind"]),
            pruner=None if data["pruner"] is None else str(data["pruner"]),
            members=tuple(str(m) for m in data["members"]),
            weights=tuple(float(w) for w in data["weights"]),
            num_members=int(data["num_members"]),
            num_params=None if data["num_params"] is None else int(data["num_params"]),
            val_acc=float(data["val_acc"]),
            test_acc=float(data["test_acc"]),
            test_nll=float(data["test_nll"]),
            test_ece=float(data["test_ece"]),
            diversity={str(k): float(v) for k, v in data["diversity"].items()},
        )


@dataclasses.dataclass(frozen=True)
class CurvePoint:
    """A pruner's result at one size bound (see :func:`size_curves`)."""

    bound: int
    num_members: int
    val_acc: float
    test_acc: float


@dataclasses.dataclass(frozen=True, eq=False)
class EnsembleEvaluation:
    """Everything an ensemble build reports.

    Attributes:
        members: Per-member rows: name, arch, parameters, val/test accuracy, test NLL, ECE.
        rows: Pruners first (in config order), then the baselines.
        curves: Per pruner label, accuracy against the number of members kept.
        diversity: Per measure, the ``(M, M)`` pairwise matrix on the test split, in
            member order (entries may be NaN, e.g. Q for two always-correct members).
        member_names: Member order of the matrices.
        notes: Anything the report should mention (e.g. a baseline that could not be fitted).
    """

    members: tuple[dict[str, Any], ...]
    rows: tuple[EnsembleRow, ...]
    curves: dict[str, tuple[CurvePoint, ...]]
    diversity: dict[str, np.ndarray]
    member_names: tuple[str, ...]
    notes: tuple[str, ...] = ()

    def row(self, label: str) -> EnsembleRow:
        """The row called ``label``.

        Raises:
            DataError: No such row; the message lists the labels.
        """
        for r in self.rows:
            if r.label == label:
                return r
        raise DataError(f"no ensemble row {label!r}; rows: {', '.join(r.label for r in self.rows)}")

    def saep_target(self, tolerance: float = 0.2) -> dict[str, dict[str, bool]]:
        """Check the SAEP pruners' rows against the target of the acceptance test.

        A pruned ensemble meets it when it keeps at most half of the candidates, its test
        accuracy is within ``tolerance`` percentage points of the full ensemble's, and it
        beats the best single member on the test split (the test oracle, the stricter
        of the two single-member baselines).

        Returns:
            Per SAEP pruner row: ``half``, ``near_full``, ``beats_single`` and ``met``.
        """
        total = len(self.member_names)
        full = self.row(FULL).test_acc
        single = self.row(BEST_SINGLE_ORACLE).test_acc
        out = {}
        for r in self.rows:
            if r.pruner not in SAEP_PRUNERS:
                continue
            checks = {
                "half": r.num_members <= total / 2,
                "near_full": r.test_acc >= full - tolerance,
                "beats_single": r.test_acc > single,
            }
            checks["met"] = all(checks.values())
            out[r.label] = checks
        return out


def _score(
    pool: CandidatePool,
    val_probs: np.ndarray,
    test_probs: np.ndarray,
    selection: Selection,
    matrices: dict[str, np.ndarray],
    ece_bins: int,
    label: str,
    kind: str,
    pruner: str | None,
) -> EnsembleRow:
    idx = list(selection.indices)
    w = np.asarray(selection.weights)
    test_labels = _test_labels(pool)
    val_mix = combine_probs(val_probs[idx], w)
    test_mix = combine_probs(test_probs[idx], w)
    counts = [pool[i].num_params for i in idx]
    num_params: int | None = 0
    for count in counts:
        num_params = None if count is None or num_params is None else num_params + count
    sub = np.ix_(idx, idx)
    return EnsembleRow(
        label=label,
        kind=kind,
        pruner=pruner,
        members=tuple(pool[i].name for i in idx),
        weights=tuple(float(x) for x in w),
        num_members=len(idx),
        num_params=num_params,
        val_acc=100.0 * accuracy(val_mix, pool.val_labels),
        test_acc=100.0 * accuracy(test_mix, test_labels),
        test_nll=nll(test_mix, test_labels),
        test_ece=expected_calibration_error(test_mix, test_labels, n_bins=ece_bins),
        diversity={name: mean_pairwise(mat[sub]) for name, mat in matrices.items()},
    )


def _test_labels(pool: CandidatePool) -> np.ndarray:
    if pool.test_labels is None:
        raise DataError("evaluating ensembles needs test logits and test labels in the pool")
    return pool.test_labels


def _pruner_rng(seed: int, position: int) -> np.random.Generator:
    # One stream per pruner row, independent of which other rows are configured before it.
    return np.random.default_rng([seed, 1, position])


def size_curves(
    pool: CandidatePool,
    pruners: Sequence[PrunerSpec],
    seed: int = 0,
) -> dict[str, tuple[CurvePoint, ...]]:
    """Validation and test accuracy of every pruner's choice for each size bound ``1..M``.

    The pruner runs with ``size=k`` for ``k = 1..M`` (replacing its own ``size`` or
    ``max_fraction``); fixed-size pruners keep exactly ``k`` members, PAP and Caruana at
    most ``k``. Points are ordered by ``k``.

    Shapes:
        The pool's logits: ``(M, N_val, C)`` and ``(M, N_test, C)``.
    """
    val_probs, test_probs = pool.val_probs(), pool.test_probs()
    test_labels = _test_labels(pool)
    out: dict[str, tuple[CurvePoint, ...]] = {}
    for position, spec in enumerate(pruners):
        params = {k: v for k, v in spec.params.items() if k not in ("size", "max_fraction")}
        points = []
        for k in range(1, len(pool) + 1):
            # A fresh, size-specific stream: PRS draws afresh for each bound.
            rng = np.random.default_rng([seed, 2, position, k])
            sel = prune(spec.name, val_probs, pool.val_labels, rng, size=k, **params)
            w = np.asarray(sel.weights)
            idx = list(sel.indices)
            points.append(
                CurvePoint(
                    bound=k,
                    num_members=len(idx),
                    val_acc=100.0 * accuracy(combine_probs(val_probs[idx], w), pool.val_labels),
                    test_acc=100.0 * accuracy(combine_probs(test_probs[idx], w), test_labels),
                )
            )
        out[spec.row] = tuple(points)
    return out


def evaluate_pool(
    pool: CandidatePool,
    pruners: Sequence[PrunerSpec],
    *,
    seed: int = 0,
    diversity: Sequence[str] = ("disagreement",),
    ece_bins: int = DEFAULT_ECE_BINS,
    curves: bool = True,
) -> EnsembleEvaluation:
    """Prune ``pool`` with every pruner on validation data and score the results on test data.

    Args:
        pool: Trained members with validation and test logits and labels.
        pruners: The pruners to run, each with its parameters.
        seed: Seed of the random draws (PRS); each pruner row gets its own stream.
        diversity: Registered pairwise measures to report.
        ece_bins: Bins of the expected calibration error.
        curves: Also compute :func:`size_curves`.

    Returns:
        Member rows, ensemble rows (pruners, then baselines), curves and test-split
        pairwise diversity matrices.

    Raises:
        DataError: The pool has no test logits or labels.
        ConfigError / UnknownChoiceError: A pruner parameter or measure is invalid.
    """
    test_labels = _test_labels(pool)
    check_int(ece_bins, "ece_bins", 1, owner="evaluate_pool")
    val_probs, test_probs = pool.val_probs(), pool.test_probs()
    matrices = {name: pairwise_diversity(test_probs, test_labels, name) for name in diversity}
    member_rows = []
    for i, m in enumerate(pool):
        member_rows.append(
            {
                "name": m.name,
                "arch": m.arch_str,
                "num_params": m.num_params,
                "val_acc": 100.0 * accuracy(val_probs[i], pool.val_labels),
                "test_acc": 100.0 * accuracy(test_probs[i], test_labels),
                "test_nll": nll(test_probs[i], test_labels),
                "test_ece": expected_calibration_error(test_probs[i], test_labels, n_bins=ece_bins),
                "seed": m.metadata.get("seed"),
                "train_time_s": m.metadata.get("train_time_s"),
            }
        )
    rows: list[EnsembleRow] = []
    for position, spec in enumerate(pruners):
        sel = prune(spec.name, val_probs, pool.val_labels, _pruner_rng(seed, position), **spec.params)
        rows.append(_score(pool, val_probs, test_probs, sel, matrices, ece_bins, spec.row, "pruner", spec.name))
    # Best single by validation accuracy, ties to the lower validation NLL, then the lower index.
    val_acc = np.array([r["val_acc"] for r in member_rows])
    val_nll = np.array([nll(p, pool.val_labels) for p in val_probs])
    best_val = int(np.lexsort((np.arange(len(pool)), val_nll, -val_acc))[0])
    test_acc = np.array([r["test_acc"] for r in member_rows])
    best_test = int(np.argmax(test_acc))
    everyone = Selection.uniform(range(len(pool)))
    baselines = [
        (BEST_SINGLE, Selection.uniform([best_val])),
        (BEST_SINGLE_ORACLE, Selection.uniform([best_test])),
        (FULL, everyone),
    ]
    notes: list[str] = []
    try:
        fitted = fit_weights(val_probs, pool.val_labels)
    except RuntimeError as exc:
        notes.append(f"the '{FULL_FITTED}' row is missing: {exc}")
    else:
        # Weights the optimiser left at round-off level are members it dropped.
        keep = [i for i in range(len(pool)) if fitted[i] > _WEIGHT_FLOOR]
        baselines.append((FULL_FITTED, Selection(tuple(keep), tuple(float(fitted[i]) for i in keep))))
    for label, sel in baselines:
        w = np.asarray(sel.weights)
        sel = Selection(sel.indices, tuple((w / w.sum()).tolist()))
        rows.append(_score(pool, val_probs, test_probs, sel, matrices, ece_bins, label, "baseline", None))
    return EnsembleEvaluation(
        members=tuple(member_rows),
        rows=tuple(rows),
        curves=size_curves(pool, pruners, seed) if curves else {},
        diversity=matrices,
        member_names=tuple(pool.names),
        notes=tuple(notes),
    )
