"""The tabular evaluator: metrics looked up in benchmark tables, with a simulated cost."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, cast

import numpy as np

from evonas.config import ComponentConfig, Registered
from evonas.errors import ConfigError
from evonas.evaluation._base import BatchEvaluator, Evaluation, Evaluator
from evonas.spaces import Arch, SearchSpace
from evonas.tabular import JoinedTable, build_tables

@dataclass(frozen=True)
class TabularEvaluatorConfig:
    """Which tables answer and what a query returns.

    Attributes:
        tables: Registered tables joined by architecture, e.g.
            ``[{name: nb201}, {name: file, params: {path: latency.csv, metrics: [latency_ms]}}]``
            (default: the NAS-Bench-201 table from ``$EVONAS_NB201``). A query costs the
            sum of the tables' costs (the nb201 table charges its simulated training time).
        metric: The metric a search selects on; default the standard NAS-Bench-201
            protocol's ``cifar10-valid_valid_acc_12ep``.
        report: Further metrics recorded with every query (e.g. the 200-epoch test
            accuracy the protocol reports; recording it does not let the search see it).
        noisy: Return one random training seed's value of ``metric`` instead of the seed
            mean (only for metrics with per-seed columns, e.g. ``cifar10-valid_valid_acc``).
    """

    tables: tuple[Annotated[ComponentConfig, Registered("table")], ...] = (ComponentConfig("nb201"),)
    metric: str = "cifar10-valid_valid_acc_12ep"
    report: tuple[str, ...] = ("cifar10_test_acc", "cifar10-valid_valid_acc", "params_M")
    noisy: bool = False


@dataclass
class TabularEvaluator:
    """Answer evaluations from benchmark tables (e.g. Dong & Yang, NAS-Bench-201, ICLR 2020).

    Metrics are ``config.metric`` (seed mean, or a seeded random seed's value when
    ``noisy``) and every metric in ``config.report``; the cost is the tables' simulated
    cost. Construction loads and validates the tables and every metric name, so a bad
    config fails before a search starts. An architecture missing from a table fails its
    evaluation with a message naming the table.

    Args:
        config: The tables and metrics.
        space: The search space whose architectures key the tables.
    """

    config: TabularEvaluatorConfig
    space: SearchSpace
    _table: JoinedTable | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        table = build_tables(self.config.tables, self.space)
        for m in (self.config.metric, *self.config.report):
            table.owner(m)
        if self.config.noisy and self.config.metric not in table.seeded_metrics:
            raise ConfigError(
                f"evaluator.params.noisy needs a metric with per-seed values; {self.config.metric!r} has none. "
                f"Metrics with seeds: {', '.join(table.seeded_metrics) or 'none'}"
            )
        self._table = table

    @property
    def table(self) -> JoinedTable:
        """The joined tables (each table file is read once per process)."""
        if self._table is None:
            self._table = build_tables(self.config.tables, self.space)
        return self._table

    @property
    def metric_names(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((self.config.metric, *self.config.report)))

    def evaluate(self, arch: Arch, seed: int) -> Evaluation:
        arch = self.space.validate(arch)
        table, cfg = self.table, self.config
        if cfg.noisy:
            value = table.query_seed(arch, cfg.metric, np.random.default_rng(seed))
        else:
            value = table.query(arch, cfg.metric)
        metrics = {cfg.metric: value}
        for m in cfg.report:
            metrics.setdefault(m, table.query(arch, m))
        return Evaluation(metrics=metrics, cost=table.cost(arch))

    def evaluate_many(self, archs: Sequence[Arch], seeds: Sequence[int] | None = None) -> list[Evaluation]:
        """Look-ups of ``archs`` (``seeds[i]`` draws the seed of a noisy query of ``archs[i]``):
        cheap enough that a fitness plan of many look-ups runs as one executor task."""
        seeds = list(seeds) if seeds is not None else [0] * len(archs)
        return [self.evaluate(a, s) for a, s in zip(archs, seeds)]

    def __getstate__(self) -> dict[str, Any]:
        # The tables are re-loaded (once per process) from their config rather than pickled.
        return {"config": self.config, "space": self.space, "_table": None}


def build_tabular(config: TabularEvaluatorConfig, *, space: SearchSpace) -> TabularEvaluator:
    """The ``tabular`` evaluator entry."""
    return TabularEvaluator(config, space)


class TableMetrics:
    """An evaluator whose evaluations also carry metrics looked up in benchmark tables.

    The ground truth of what a cheap evaluator (a proxy predictor, a supernet) scores: the
    search records it next to the evaluator's own metrics (so ``report:`` can headline
    the true accuracy of the pick), and the fitness sees it only if an objective names
    it. An architecture a table does not hold gets NaN for that table's metrics; a failed
    evaluation gets none.

    Args:
        inner: The evaluator.
        tables: The tables (``{name, params}`` of :data:`evonas.tabular.TABLES`).
        report: Table metrics to add to every evaluation.
        space: The search space.

    Raises:
        ConfigError: ``report`` is empty, names a metric of ``inner``, or no table has it.
    """

    def __init__(self, inner: Evaluator, tables: tuple[ComponentConfig, ...], report: tuple[str, ...],
                 space: SearchSpace) -> None:
        if not report:
            raise ConfigError("tables were given but report names no table metric to record")
        clash = sorted(set(report) & set(inner.metric_names))
        if clash:
            raise ConfigError(f"report metric(s) {clash} are already metrics of the evaluator; name table metrics only")
        self.inner = inner
        self.tables = tables
        self.report = tuple(report)
        self.space = space
        self.metric_names: tuple[str, ...] = (*inner.metric_names, *self.report)
        table = build_tables(tables, space)
        for m in self.report:
            table.owner(m)
        self._table: JoinedTable | None = table

    @property
    def table(self) -> JoinedTable:
        if self._table is None:
            self._table = build_tables(self.tables, self.space)
        return self._table

    def _with_truth(self, arch: Arch, evaluation: Evaluation) -> Evaluation:
        if evaluation.failed:
            return evaluation
        table = self.table
        truth = {}
        for m in self.report:
            owner = table.owner(m)
            truth[m] = owner.query(arch, m) if owner.has(arch) else float("nan")
        return dataclasses.replace(evaluation, metrics={**evaluation.metrics, **truth})

    def evaluate(self, arch: Arch, seed: int) -> Evaluation:
        arch = self.space.validate(arch)
        return self._with_truth(arch, self.inner.evaluate(arch, seed))

    def __getstate__(self) -> dict[str, Any]:
        # The tables are re-loaded (once per process) from their config rather than pickled.
        return {**self.__dict__, "_table": None}


class BatchTableMetrics(TableMetrics):
    """:class:`TableMetrics` around a batch evaluator: batches stay batches."""

    def evaluate_many(self, archs: Sequence[Arch], seeds: Sequence[int] | None = None) -> list[Evaluation]:
        inner = cast(BatchEvaluator, self.inner)
        genotypes = [self.space.validate(a) for a in archs]
        return [self._with_truth(a, e) for a, e in zip(genotypes, inner.evaluate_many(genotypes, seeds))]


def with_table_metrics(
    evaluator: Evaluator, tables: tuple[ComponentConfig, ...], report: tuple[str, ...], space: SearchSpace
) -> Evaluator:
    """``evaluator`` recording ``report`` table metrics with every evaluation (itself when
    no tables are given); a batch evaluator stays one."""
    if not tables and not report:
        return evaluator
    if not tables:
        raise ConfigError(f"report names table metrics {list(report)} but no tables are given")
    if isinstance(evaluator, BatchEvaluator):
        return BatchTableMetrics(evaluator, tables, report, space)
    return TableMetrics(evaluator, tables, report, space)
