"""The tabular evaluator: NAS-Bench-201 look-ups with a simulated training cost."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from evonas.errors import ConfigError
from evonas.evaluation._base import Evaluation
from evonas.spaces import Arch
from evonas.tabular import NB201Table, resolve_table_path

_TABLES: dict[str, NB201Table] = {}  # one load per process (Ray workers included)


def load_table_cached(path: str | None) -> NB201Table:
    """Load the table at ``path`` (or ``$EVONAS_NB201``) once per process."""
    key = str(resolve_table_path(path).resolve())
    if key not in _TABLES:
        _TABLES[key] = NB201Table.load(key)
    return _TABLES[key]


@dataclass(frozen=True)
class TabularEvaluatorConfig:
    """Where the table is and what a query returns.

    Attributes:
        path: The ``nb201.csv.gz`` file (default: ``$EVONAS_NB201``).
        metric: The metric a search selects on; default the standard protocol's
            ``cifar10-valid_valid_acc_12ep``.
        report: Further metrics recorded with every query (e.g. the 200-epoch test
            accuracy the protocol reports; recording it does not let the search see it).
        noisy: Return one random training seed's value of ``metric`` instead of the seed
            mean (only for metrics with per-seed columns, e.g. ``cifar10-valid_valid_acc``).
        cost_dataset: Whose training time is the simulated cost (default ``cifar10-valid``).
        cost_epochs: Epochs the simulated cost stands for: the table's 200-epoch time
            scaled by ``cost_epochs/200`` (default 12, the protocol's fidelity).
    """

    path: str | None = None
    metric: str = "cifar10-valid_valid_acc_12ep"
    report: tuple[str, ...] = ("cifar10_test_acc", "cifar10-valid_valid_acc", "params_M")
    noisy: bool = False
    cost_dataset: str = "cifar10-valid"
    cost_epochs: int = 12

    def __post_init__(self) -> None:
        if self.cost_epochs < 1:
            raise ConfigError(f"evaluator.params.cost_epochs must be >= 1; got {self.cost_epochs}")


@dataclass
class TabularEvaluator:
    """Answer evaluations from the NAS-Bench-201 table (Dong & Yang, ICLR 2020).

    Metrics are ``config.metric`` (seed mean, or a seeded random seed's value when
    ``noisy``) and every metric in ``config.report``; the cost is the simulated training
    time. Construction loads and validates the table and every metric name, so a bad
    config fails before a search starts.
    """

    config: TabularEvaluatorConfig = field(default_factory=TabularEvaluatorConfig)

    def __post_init__(self) -> None:
        table = load_table_cached(self.config.path)
        table.check_metric(self.config.metric)
        for m in self.config.report:
            table.check_metric(m)
        if self.config.noisy and self.config.metric not in table.seeded_metrics:
            raise ConfigError(
                f"evaluator.params.noisy needs a metric with per-seed values; {self.config.metric!r} has none. "
                f"Metrics with seeds: {', '.join(table.seeded_metrics)}"
            )
        table.train_time(table.space.sample(np.random.default_rng(0)), self.config.cost_dataset, self.config.cost_epochs)
        self._path = str(table.path)
        self._table: NB201Table | None = table

    @property
    def metric_names(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((self.config.metric, *self.config.report)))

    def evaluate(self, arch: Arch, seed: int) -> Evaluation:
        if self._table is None:
            self._table = load_table_cached(self._path)
        table = self._table
        cfg = self.config
        if cfg.noisy:
            value = table.query_seed(arch, cfg.metric, np.random.default_rng(seed))
        else:
            value = table.query(arch, cfg.metric)
        metrics = {cfg.metric: value}
        for m in cfg.report:
            metrics.setdefault(m, table.query(arch, m))
        return Evaluation(metrics=metrics, cost=table.train_time(arch, cfg.cost_dataset, cfg.cost_epochs))

    def __getstate__(self) -> dict:
        # The table is re-loaded (once per process) from its path rather than pickled.
        return {"config": self.config, "_path": self._path}

    def __setstate__(self, state: dict) -> None:
        self.config = state["config"]
        self._path = state["_path"]
        self._table = None
