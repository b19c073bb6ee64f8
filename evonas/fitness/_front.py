"""Pareto fronts and hypervolumes, and the exact Pareto front of a tabular benchmark.

The hypervolume indicator (Zitzler & Thiele, "Multiobjective Optimization Using
Evolutionary Algorithms - A Comparative Case Study", PPSN 1998) of a set of points is the
volume of objective space that the set dominates, bounded by a reference point. A table
holds every architecture of its space, so its true front is known exactly, and a search's
front can be scored as the fraction of the true front's hypervolume it reaches, both taken
with one reference point.

Values here are signed so that larger is better (as :meth:`Objective.signed` makes them):
a point dominates another when it is at least as large in every objective and larger in one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import TYPE_CHECKING

import numpy as np

from evonas.errors import ConfigError
from evonas.fitness._base import Objective
from evonas.spaces import Arch, EnumerableSpace, require

if TYPE_CHECKING:
    from evonas.tabular import Table


def _points(values: np.ndarray | Sequence[Sequence[float]], where: str) -> np.ndarray:
    pts = np.asarray(values, dtype=float)
    if pts.ndim != 2:
        raise ValueError(f"{where} must be a 2-D array of points (one row per point); got shape {pts.shape}")
    return pts


def pareto_mask(values: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
    """Which points no other point dominates (values signed so larger is better).

    Equal points do not dominate each other: every copy of a non-dominated point is kept.

    Args:
        values: The points.

    Returns:
        A boolean mask over the points.

    Shapes:
        values: ``(n, k)``; returned mask: ``(n,)``.
    """
    pts = _points(values, "values")
    n = len(pts)
    mask = np.zeros(n, dtype=bool)
    if n == 0:
        return mask
    # In lexicographically decreasing order a point's dominators all come before it, and
    # each dominated dominator is itself dominated by an earlier front point: comparing
    # with the front found so far suffices.
    order = np.lexsort(pts.T[::-1])[::-1]
    front = np.empty((0, pts.shape[1]))
    for i in order:
        p = pts[i]
        if len(front) and np.any(np.all(front >= p, axis=1) & np.any(front > p, axis=1)):
            continue
        mask[i] = True
        front = np.vstack([front, p])
    return mask


def hypervolume(values: np.ndarray | Sequence[Sequence[float]], reference: Sequence[float]) -> float:
    """The hypervolume of ``values`` bounded by ``reference`` (values signed so larger is better).

    Points not better than the reference in every objective add nothing; dominated points
    add nothing either, so any set of evaluated points may be passed, not only a front.
    Computed by DEAP (``deap.benchmarks.tools.hypervolume``).

    Args:
        values: The points.
        reference: The reference point, signed like ``values``.

    Shapes:
        values: ``(n, k)``; reference: ``(k,)``.

    Raises:
        ValueError: ``reference`` has another dimension than the points, or a value is
            not finite.
    """
    from deap.benchmarks.tools import hypervolume as deap_hypervolume

    ref = np.asarray(reference, dtype=float)
    pts = _points(values, "values") if len(values) else np.empty((0, len(ref)))
    if ref.ndim != 1 or pts.shape[1] != len(ref):
        raise ValueError(f"reference has {ref.size} values; the points have {pts.shape[1]} objectives")
    if not (np.all(np.isfinite(pts)) and np.all(np.isfinite(ref))):
        raise ValueError("hypervolume needs finite values and reference")
    better = pts[np.all(pts > ref, axis=1)]
    if len(better) == 0:
        return 0.0
    # DEAP minimises the negated (weighted) values: the reference is negated likewise.
    front = [SimpleNamespace(fitness=SimpleNamespace(wvalues=tuple(p))) for p in better]
    return float(deap_hypervolume(front, ref=-ref))


@dataclass(frozen=True)
class TrueFront:
    """The exact Pareto front of a table over every architecture it holds.

    Attributes:
        objectives: The objectives, in order.
        archs: The front's architectures (every copy of an equal point).
        values: Their objective values, signed so larger is better.
        reference: The reference point, signed: by default the worst value of each
            objective over every architecture of the table, so every front's hypervolume
            is measured in the same box.
        hypervolume: The front's hypervolume with ``reference``.
        num_archs: Architectures the front was taken over.

    Shapes:
        values: ``(len(archs), len(objectives))``; reference: ``(len(objectives),)``.
    """

    objectives: tuple[Objective, ...]
    archs: tuple[Arch, ...]
    values: np.ndarray
    reference: tuple[float, ...]
    hypervolume: float
    num_archs: int

    def ratio(self, values: np.ndarray | Sequence[Sequence[float]]) -> float:
        """The hypervolume of ``values`` (signed like :attr:`values`, e.g. a search's
        front) as a fraction of the true front's, with the same reference point."""
        return hypervolume(values, self.reference) / self.hypervolume

    def natural(self) -> np.ndarray:
        """:attr:`values` in the objectives' own units (minimised ones no longer negated)."""
        return np.column_stack([self.values[:, k] * (1.0 if o.direction == "max" else -1.0)
                                for k, o in enumerate(self.objectives)])


def signed_values(objectives: Sequence[Objective], rows: Sequence[dict[str, float]]) -> np.ndarray:
    """The objective values of metric mappings, signed so larger is better.

    Shapes:
        returned: ``(len(rows), len(objectives))``.

    Raises:
        ConfigError: A row lacks an objective's metric.
    """
    out = np.empty((len(rows), len(objectives)))
    for i, row in enumerate(rows):
        for k, obj in enumerate(objectives):
            if obj.metric not in row:
                raise ConfigError(f"objective metric {obj.metric!r} is missing; the metrics are: {', '.join(sorted(row))}")
            out[i, k] = obj.signed(float(row[obj.metric]))
    return out


def table_front(
    table: Table, space: EnumerableSpace, objectives: Sequence[Objective], reference: Sequence[float] | None = None
) -> TrueFront:
    """The exact Pareto front of ``table`` over every architecture of ``space`` it holds.

    Architectures the table lacks, or with a non-finite objective value, are left out.

    Args:
        table: The benchmark table (e.g. :class:`evonas.tabular.NB201Table`).
        space: An enumerable space whose architectures key the table.
        objectives: Two or more objectives, e.g. maximise ``cifar10-valid_valid_acc_12ep``
            and minimise ``params_M``.
        reference: The reference point in the objectives' own units (default: the worst
            value of each objective over the table).

    Raises:
        ConfigError: Fewer than two objectives, a metric the table lacks, a reference of
            another length, or no architecture with finite values.
        CapabilityError: ``space`` is not enumerable.
    """
    objectives = tuple(objectives)
    if len(objectives) < 2:
        raise ConfigError(f"a Pareto front needs at least two objectives; got {len(objectives)}")
    for obj in objectives:
        if obj.metric not in table.metrics:
            raise ConfigError(f"objective metric {obj.metric!r} is not in table {table.source!r}; valid: {', '.join(table.metrics)}")
    require(space, ["enumerable"], "table_front")
    archs = [a for a in space.all_archs() if table.has(a)]
    values = np.array([[o.signed(table.query(a, o.metric)) for o in objectives] for a in archs], dtype=float)
    finite = np.all(np.isfinite(values), axis=1) if len(archs) else np.zeros(0, dtype=bool)
    if not finite.any():
        raise ConfigError(f"table {table.source!r} has no architecture with finite values of every objective")
    archs = [a for a, ok in zip(archs, finite) if ok]
    values = values[finite]
    if reference is None:
        ref = values.min(axis=0)
    else:
        if len(reference) != len(objectives):
            raise ConfigError(f"reference has {len(reference)} values for {len(objectives)} objectives")
        ref = np.array([o.signed(float(r)) for o, r in zip(objectives, reference)])
    mask = pareto_mask(values)
    volume = hypervolume(values[mask], ref)
    if not math.isfinite(volume) or volume <= 0:
        raise ConfigError(f"the true front has no hypervolume above the reference point {[float(r) for r in ref]}")
    front_archs = tuple(a for a, keep in zip(archs, mask) if keep)
    return TrueFront(objectives, front_archs, values[mask], tuple(float(r) for r in ref), volume, len(archs))
