"""The predictor evaluation harness (White et al., "How Powerful are Performance Predictors
in Neural Architecture Search?", NeurIPS 2021).

Protocol: a fixed test set of architectures drawn uniformly from NAS-Bench-201 (200 by
default); for every predictor, training-set size and trial, a training set drawn from a
pool of the other architectures (the same draw for every predictor, so comparisons are
paired), the predictor fitted on the table's targets and scored on the test set by
Kendall tau, Spearman rho, Pearson r and precision@top-k, plus fit and query time.
Zero-cost proxies need no training: they are scored once, on the test set and on every
architecture scored (test set and pool), and drawn as horizontal reference lines.

Every (predictor, size, trial) is one evaluation run by an :class:`~evonas.executors.Executor`
(serial by default, Ray when asked): the request's ``arch`` field carries the indices
``(predictor, size, trial)`` and its ``seed`` the trial's seed.

Outputs in ``out_dir``: ``results.csv`` (one row per trial), ``summary.csv`` (mean and
std per predictor and size), ``results.md`` (Markdown tables) and ``kendall_tau.png``.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from evonas.errors import ConfigError, EvonasError, UnknownChoiceError
from evonas.evaluation import Evaluation
from evonas.spaces import NB201Space

METRICS: tuple[str, ...] = ("kendall_tau", "spearman_rho", "pearson_r", "precision_at_top", "fit_time_s", "query_time_s")
"""Metrics recorded for every trial."""

_SPACE = NB201Space()


@dataclass(frozen=True)
class ZeroCostSettings:
    """How zero-cost scores are computed (the ``zero_cost`` section of the config).

    Attributes:
        data_root: Images for the minibatch, e.g. ``../shared/data/images/cifar10-jpg-small.tar.gz``
            (read through :func:`evonas.data.load_dataset`).
        dataset: Registered dataset name.
        batch_size: Images in the minibatch.
        data_seed: Chooses the minibatch.
        init_seed: Seeds the networks' initialisation.
        channels: ``C`` of the NAS-Bench-201 network.
        cells: ``N`` of the NAS-Bench-201 network.
        cache_dir: On-disk score cache (``None``: ``<out_dir>/zc-cache``).
    """

    data_root: str | None = None
    dataset: str = "imagefolder"
    batch_size: int = 64
    data_seed: int = 0
    init_seed: int = 0
    channels: int = 16
    cells: int = 5
    cache_dir: str | None = None

    def __post_init__(self) -> None:
        for name, low in (("batch_size", 2), ("data_seed", 0), ("init_seed", 0), ("channels", 1), ("cells", 1)):
            _check_config_int(f"zero_cost.{name}", getattr(self, name), low)

    def scorer(self, out_dir: Path):  # type: ignore[no-untyped-def]
        """The :class:`~predictors.ZeroCostScorer` of these settings."""
        from predictors._zc_scorer import ZeroCostScorer

        cache = self.cache_dir if self.cache_dir is not None else str(out_dir / "zc-cache")
        return ZeroCostScorer(
            data_root=self.data_root, dataset=self.dataset, batch_size=self.batch_size, data_seed=self.data_seed,
            init_seed=self.init_seed, channels=self.channels, cells=self.cells, cache_dir=cache,
        )


@dataclass(frozen=True)
class HarnessConfig:
    """Settings of :func:`run_harness` (``configs/predictors-nb201.yaml``).

    Attributes:
        table: The NAS-Bench-201 table (``nb201.csv.gz``); ``None``: ``$EVONAS_NB201``.
        metric: The table column to predict (default: 200-epoch CIFAR-10 validation accuracy).
        greater_is_better: Higher targets are better (accuracies); False for losses.
        predictors: Registered predictor names to evaluate (empty: all registered).
        params: Hyper-parameter overrides per predictor name, e.g. ``{gin: {epochs: 100}}``.
        train_sizes: Training-set sizes.
        test_size: Architectures in the fixed test set.
        trials: Trials (training-set draws and predictor seeds) per size.
        train_pool: Architectures, disjoint from the test set, that training sets are drawn
            from (``None``: all others). A pool bounds the zero-cost scoring work.
        seed: Seed of the test set, the pool and every trial.
        top_fraction: ``k`` of precision@top-k as a share of the test set.
        zero_cost: How zero-cost scores are computed.
        executor: ``"serial"`` or ``"ray"`` (a local instance unless ``ray_address``).
        ray_address: Address of an existing Ray cluster.
        num_cpus: CPUs of a local Ray instance (``None``: all).
        threads_per_trial: torch threads of every trial (and CPUs each Ray task reserves).
    """

    table: str | None = None
    metric: str = "cifar10-valid_valid_acc"
    greater_is_better: bool = True
    predictors: tuple[str, ...] = ()
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    train_sizes: tuple[int, ...] = (10, 20, 50, 100, 200, 400)
    test_size: int = 200
    trials: int = 10
    train_pool: int | None = 1000
    seed: int = 0
    top_fraction: float = 0.1
    zero_cost: ZeroCostSettings = field(default_factory=ZeroCostSettings)
    executor: Literal["serial", "ray"] = "serial"
    ray_address: str | None = None
    num_cpus: int | None = None
    threads_per_trial: int = 1

    def __post_init__(self) -> None:
        from predictors._registry import PREDICTORS, make_predictor

        for name in self.predictors:
            if name not in PREDICTORS:
                raise ConfigError(str(UnknownChoiceError("predictor", name, PREDICTORS.names())))
        if len(set(self.predictors)) != len(self.predictors):
            raise ConfigError(f"predictors lists a name twice: {list(self.predictors)}")
        chosen = self.predictors or tuple(PREDICTORS.names())
        for name, overrides in self.params.items():
            if name not in chosen:
                raise ConfigError(
                    f"params has an entry for {name!r}, which is not evaluated; predictors: {', '.join(chosen)}"
                )
            if not isinstance(overrides, Mapping):
                raise ConfigError(f"params.{name} must be a mapping of hyper-parameters; got {overrides!r}")
            try:
                make_predictor(name, **overrides)
            except EvonasError as exc:
                raise ConfigError(f"params.{name}: {exc}") from None
        if not self.train_sizes:
            raise ConfigError("train_sizes must list at least one size")
        for i, size in enumerate(self.train_sizes):
            _check_config_int(f"train_sizes[{i}]", size, 2)
        _check_config_int("test_size", self.test_size, 2)
        _check_config_int("trials", self.trials, 1)
        _check_config_int("seed", self.seed, 0)
        _check_config_int("threads_per_trial", self.threads_per_trial, 1)
        if self.num_cpus is not None:
            _check_config_int("num_cpus", self.num_cpus, 1)
        pool = _SPACE.size - self.test_size if self.train_pool is None else self.train_pool
        _check_config_int("train_pool", pool, max(self.train_sizes))
        if self.test_size + pool > _SPACE.size:
            raise ConfigError(
                f"test_size + train_pool = {self.test_size + pool} exceeds the {_SPACE.size} architectures of nb201"
            )
        if not 0 < self.top_fraction <= 1:
            raise ConfigError(f"invalid value {self.top_fraction!r} for 'top_fraction'; expected a number in (0, 1]")

    @property
    def predictor_names(self) -> tuple[str, ...]:
        """The predictors evaluated, in order."""
        from predictors._registry import PREDICTORS

        return self.predictors or tuple(PREDICTORS.names())


def _check_config_int(name: str, value: Any, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"invalid value {value!r} for {name!r}; expected an integer >= {low}")


@dataclass
class HarnessResult:
    """What :func:`run_harness` produced.

    Attributes:
        rows: One dict per trial: predictor, train_size (0 for zero-cost proxies), trial,
            the :data:`METRICS`, failed, error.
        summary: One dict per (predictor, train_size): mean and std of every metric.
        zero_cost: One dict per zero-cost proxy: correlations over every scored architecture.
        markdown: The Markdown report (also in ``results.md``).
        files: Paths of the files written, by kind (``csv``, ``summary``, ``markdown``, ``plot``).
        test_archs: The fixed test set (genotypes).
        pool_archs: The architectures training sets were drawn from.
    """

    rows: list[dict[str, Any]]
    summary: list[dict[str, Any]]
    zero_cost: list[dict[str, Any]]
    markdown: str
    files: dict[str, Path]
    test_archs: list[tuple[int, ...]] = field(default_factory=list)
    pool_archs: list[tuple[int, ...]] = field(default_factory=list)

    def mean(self, predictor: str, train_size: int, metric: str = "kendall_tau") -> float:
        """Mean of ``metric`` over the trials of ``predictor`` at ``train_size``."""
        for row in self.summary:
            if row["predictor"] == predictor and row["train_size"] == train_size:
                return float(row[f"{metric}_mean"])
        raise KeyError(f"no results for predictor {predictor!r} at train size {train_size}")


@dataclass
class _TrialEvaluator:
    """Runs one (predictor, size, trial) of the protocol; shipped to executors (picklable).

    ``evaluate(arch, seed)``: ``arch = (predictor index, size index or -1, trial)``;
    ``seed`` becomes the predictor's ``random_state``. The training set depends only on
    ``(harness seed, size, trial)``, so every predictor sees the same draws.
    """

    names: tuple[str, ...]
    params: dict[str, dict[str, Any]]
    targets: np.ndarray
    test: np.ndarray
    pool: np.ndarray
    sizes: tuple[int, ...]
    seed: int
    top_fraction: float
    greater_is_better: bool
    threads: int
    metric_names: tuple[str, ...] = METRICS

    def training_set(self, size_index: int, trial: int) -> np.ndarray:
        """Ordinals of the training architectures of one size and trial."""
        rng = np.random.default_rng([self.seed, size_index, trial])
        return np.sort(rng.choice(self.pool, size=self.sizes[size_index], replace=False))

    def evaluate(self, arch: tuple[int, ...], seed: int) -> Evaluation:
        import torch

        from predictors._metrics import kendall_tau, pearson_r, precision_at_top, spearman_rho
        from predictors._registry import make_predictor

        torch.set_num_threads(self.threads)
        p, s, trial = arch
        name = self.names[p]
        est = make_predictor(name, **self.params.get(name, {}))
        if "random_state" in est.get_params(deep=False):
            est.set_params(random_state=int(seed))
        train = self.training_set(s, trial) if s >= 0 else np.zeros(0, dtype=np.int64)
        train_archs = [_SPACE.from_ordinal(int(o)) for o in train]
        test_archs = [_SPACE.from_ordinal(int(o)) for o in self.test]
        start = time.perf_counter()
        est.fit(train_archs, self.targets[train])
        fit_time = time.perf_counter() - start
        start = time.perf_counter()
        pred = np.asarray(est.predict(test_archs), dtype=np.float64)
        query_time = time.perf_counter() - start
        y = self.targets[self.test]
        metrics = {
            "kendall_tau": kendall_tau(y, pred),
            "spearman_rho": spearman_rho(y, pred),
            "pearson_r": pearson_r(y, pred),
            "precision_at_top": precision_at_top(y, pred, self.top_fraction, self.greater_is_better),
            "fit_time_s": fit_time,
            "query_time_s": query_time,
        }
        if not self.greater_is_better:
            for key in ("kendall_tau", "spearman_rho", "pearson_r"):
                metrics[key] = -metrics[key] if math.isfinite(metrics[key]) else metrics[key]
        return Evaluation(metrics=metrics, cost=fit_time + query_time, info={"predictor": name, "trial": trial})


def _is_zero_cost(est: Any) -> bool:
    from predictors._zc_predictor import ZeroCostPredictor

    return isinstance(est, ZeroCostPredictor)


def _needs_scorer(est: Any) -> tuple[str, ...]:
    """Proxies the predictor reads from its scorer (empty: it has no zero-cost input)."""
    if _is_zero_cost(est):
        return (est.proxy,)
    params = est.get_params(deep=False)
    if "scorer" in params and params.get("zero_cost"):
        return tuple(params["zero_cost"])
    return ()


def _make_executor(config: HarnessConfig):  # type: ignore[no-untyped-def]
    if config.executor == "ray":
        from evonas.executors._ray import RayExecutor

        return RayExecutor(address=config.ray_address, num_cpus=config.num_cpus, cpus_per_eval=float(config.threads_per_trial))
    from evonas.executors._serial import SerialExecutor

    return SerialExecutor()


def run_harness(config: HarnessConfig, out_dir: Path, executor: Any = None, progress: bool = True) -> HarnessResult:
    """Evaluate the configured predictors on NAS-Bench-201 and write the report.

    Args:
        config: The protocol settings.
        out_dir: Folder for ``results.csv``, ``summary.csv``, ``results.md``,
            ``kendall_tau.png`` and (by default) the zero-cost cache; created if missing.
        executor: An :class:`~evonas.executors.Executor` to run the trials (not closed
            here); ``None``: one made from ``config.executor`` (and closed at the end).
        progress: Show tqdm progress bars.

    Returns:
        The per-trial rows, the summary and the report.

    Raises:
        DataError: The table or the zero-cost images are missing.
        UnknownChoiceError: ``config.metric`` is not a column of the table.
    """
    import torch
    from tqdm.auto import tqdm

    from evonas.executors._base import Request
    from evonas.tabular import NB201Table
    from predictors._metrics import kendall_tau, spearman_rho
    from predictors._registry import make_predictor

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    table = NB201Table.load(config.table)
    targets = table.column(table.check_metric(config.metric))
    rng = np.random.default_rng(config.seed)
    order = rng.permutation(_SPACE.size)
    test = np.sort(order[: config.test_size])
    pool_size = _SPACE.size - config.test_size if config.train_pool is None else config.train_pool
    pool = np.sort(order[config.test_size : config.test_size + pool_size])

    names = config.predictor_names
    scorer = config.zero_cost.scorer(out_dir)
    params: dict[str, dict[str, Any]] = {}
    proxies_needed: dict[str, None] = {}
    zc_names = []
    for name in names:
        overrides = dict(config.params.get(name, {}))
        est = make_predictor(name, **overrides)
        needed = _needs_scorer(est)
        if needed and est.get_params(deep=False).get("scorer") is None:
            overrides["scorer"] = scorer
        proxies_needed.update(dict.fromkeys(needed))
        params[name] = overrides
        if _is_zero_cost(est):
            zc_names.append(name)

    old_threads = torch.get_num_threads()
    torch.set_num_threads(config.threads_per_trial)
    try:
        zc_rows = []
        if proxies_needed:
            scored = np.concatenate([test, pool])
            archs = [_SPACE.from_ordinal(int(o)) for o in scored]
            start = time.perf_counter()
            scores = scorer.scores(archs, tuple(proxies_needed), progress=progress)
            elapsed = time.perf_counter() - start
            for j, proxy in enumerate(proxies_needed):
                sign = 1.0 if config.greater_is_better else -1.0
                zc_rows.append({
                    "proxy": proxy,
                    "n_archs": len(archs),
                    "kendall_tau": kendall_tau(targets[scored], sign * scores[:, j]),
                    "spearman_rho": spearman_rho(targets[scored], sign * scores[:, j]),
                    "scoring_time_s": elapsed,
                })

        evaluator = _TrialEvaluator(
            names=names, params=params, targets=targets, test=test, pool=pool, sizes=tuple(config.train_sizes),
            seed=config.seed, top_fraction=config.top_fraction, greater_is_better=config.greater_is_better,
            threads=config.threads_per_trial,
        )
        requests = []
        for p, name in enumerate(names):
            if name in zc_names:
                requests.append(Request(len(requests), (p, -1, 0), config.seed))
                continue
            for s in range(len(config.train_sizes)):
                for trial in range(config.trials):
                    requests.append(Request(len(requests), (p, s, trial), config.seed * 1_000_003 + trial))
        own_executor = executor is None
        executor = _make_executor(config) if own_executor else executor
        results: list[tuple[Request, Evaluation]] = []
        try:
            executor.start(evaluator)
            for req in requests:
                executor.submit(req)
            with tqdm(total=len(requests), desc="predictor trials", disable=not progress) as bar:
                while executor.num_pending:
                    done = executor.wait()
                    results.extend(done)
                    bar.update(len(done))
        finally:
            if own_executor:
                executor.close()
    finally:
        torch.set_num_threads(old_threads)

    rows = []
    for req, ev in sorted(results, key=lambda r: r[0].eval_id):
        p, s, trial = req.arch
        row: dict[str, Any] = {
            "predictor": names[p],
            "train_size": 0 if s < 0 else config.train_sizes[s],
            "trial": trial,
        }
        row.update({m: ev.metrics.get(m, math.nan) for m in METRICS})
        row["failed"] = ev.failed
        row["error"] = ev.error or ""
        rows.append(row)
    summary = _summarise(rows)
    from predictors._report import markdown_report, plot_kendall

    files = {
        "csv": out_dir / "results.csv",
        "summary": out_dir / "summary.csv",
        "markdown": out_dir / "results.md",
        "plot": out_dir / "kendall_tau.png",
    }
    _write_csv(files["csv"], rows)
    _write_csv(files["summary"], summary)
    markdown = markdown_report(config, summary, zc_rows, rows)
    files["markdown"].write_text(markdown)
    plot_kendall(summary, files["plot"], title=f"{config.metric}: Kendall tau vs training size")
    failed = [r for r in rows if r["failed"]]
    if failed:
        warnings.warn(
            f"{len(failed)} of {len(rows)} predictor trials failed (see {files['markdown']}); first: "
            f"{failed[0]['predictor']} at size {failed[0]['train_size']}: {failed[0]['error']}",
            RuntimeWarning,
            stacklevel=2,
        )
    return HarnessResult(
        rows=rows, summary=summary, zero_cost=zc_rows, markdown=markdown, files=files,
        test_archs=[_SPACE.from_ordinal(int(o)) for o in test], pool_archs=[_SPACE.from_ordinal(int(o)) for o in pool],
    )


def _summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["predictor"], row["train_size"]), []).append(row)
    out = []
    for (name, size), members in groups.items():
        ok = [r for r in members if not r["failed"]]
        entry: dict[str, Any] = {"predictor": name, "train_size": size, "trials": len(ok), "failed": len(members) - len(ok)}
        for m in METRICS:
            values = np.array([r[m] for r in ok], dtype=np.float64)
            values = values[np.isfinite(values)]
            entry[f"{m}_mean"] = float(values.mean()) if values.size else math.nan
            entry[f"{m}_std"] = float(values.std()) if values.size else math.nan
        out.append(entry)
    return out


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    if not rows:
        path.write_text("")
        return
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)



def resolve_paths(config: HarnessConfig, base: Path) -> HarnessConfig:
    """``config`` with its relative paths (table, images, cache) made absolute against ``base``."""

    def absolute(path: str | None) -> str | None:
        if path is None or path == "":
            return path
        p = Path(path).expanduser()
        return str(p if p.is_absolute() else (Path(base) / p).resolve())

    zc = dataclasses.replace(
        config.zero_cost, data_root=absolute(config.zero_cost.data_root), cache_dir=absolute(config.zero_cost.cache_dir)
    )
    return dataclasses.replace(config, table=absolute(config.table), zero_cost=zc)
