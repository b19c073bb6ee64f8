"""The tabular evaluator: metrics looked up in benchmark tables, with a simulated cost."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any

import numpy as np

from evonas.config import ComponentConfig, Registered
from evonas.errors import ConfigError
from evonas.evaluation._base import Evaluation
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
