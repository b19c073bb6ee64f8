"""The predictor evaluation harness, the ``predictors`` run kind (White et al., "How Powerful
are Performance Predictors in Neural Architecture Search?", NeurIPS 2021).

Protocol: a fixed test set of architectures drawn uniformly from the configured
(enumerable) space among those the benchmark tables hold with a finite value of the metric;
for every predictor, training-set size and trial, a training set drawn from a pool of other
architectures (the same draw for every predictor, so comparisons are paired), the predictor
fitted on the tables' targets and scored on the test set by Kendall tau, Spearman rho,
Pearson r and precision@top-k, plus fit and query time. Predictions are in the targets'
orientation (zero-cost proxies are negated for ``direction: min``), so a higher
correlation is always better. Zero-cost proxies need no training: they are scored once,
on the test set and on every architecture scored (test set and pool), and drawn as
horizontal reference lines.

Every (predictor, size, trial) is one :class:`~evonas.executors.Task` whose payload is a
:class:`TrialSpec`, run by a :class:`TrialRunner` on the configured executor (serial by
default, Ray when asked) and answered with a :class:`TrialResult`.

The run directory holds, besides ``config.yaml``/``meta.yaml``/``result.json`` of the
lifecycle (:mod:`evonas.runs`): ``log.jsonl`` (a ``zero_cost`` record with the proxies'
correlations over every scored architecture, then one ``trial`` record per finished trial,
so ``--resume`` runs only the others), ``results.csv`` (one row per trial),
``summary.csv`` (mean and std per predictor and size), ``results.md`` (Markdown tables,
also as ``report.md``), ``kendall_tau.png`` and, unless ``zero_cost.cache_dir`` is set,
the zero-cost score cache ``zc-cache/``.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, cast

import numpy as np

from evonas._json import JsonFloat, jsonable
from evonas.config import (
    MAX_ARCHS,
    MAX_BATCH_SIZE,
    MAX_SEED,
    MAX_WORKERS,
    Checked,
    ComponentConfig,
    IsPath,
    Range,
    Registered,
    check_int,
    from_dict,
    to_dict,
)
from evonas.errors import CapabilityError, ConfigError, EvonasError
from evonas.executors import Executor, Outcome, Task
from evonas.runs import RESULT, RunDir, RunKind, declare_records, raise_if_failed
from evonas.spaces import Arch, EnumerableSpace, SearchSpace, require
from predictors._base import ArchPredictor
from predictors._report import HarnessOutputs, write_outputs, zero_cost_records
from predictors._trials import METRICS, TrialResult, TrialRunner, TrialSpec, trial_key
from predictors._zc_scorer import ZeroCostScorer

_TRIAL_SEED_STRIDE = 1_000_003


@dataclass(frozen=True)
class ZeroCostConfig(Checked):
    """How zero-cost scores are computed (the ``zero_cost`` section of the config).

    Attributes:
        data_root: Images for the minibatch, e.g. ``cifar10-jpg-small.tar.gz`` of the shared
            data (relative to the config file).
        dataset: Registered dataset name.
        batch_size: Images in the minibatch.
        data_seed: Chooses the minibatch.
        init_seed: Seeds the networks' initialisation.
        network: The registered decoder building the scored networks, and its size
            (default: NAS-Bench-201's ``C=16, N=5`` network); it must serve ``space``.
        cache_dir: On-disk score cache (``None``: ``zc-cache`` in the run directory).
    """

    data_root: Annotated[str | None, IsPath()] = None
    dataset: str = "imagefolder"
    batch_size: Annotated[int, Range(2, MAX_BATCH_SIZE)] = 64
    data_seed: Annotated[int, Range(0, MAX_SEED)] = 0
    init_seed: Annotated[int, Range(0, MAX_SEED)] = 0
    network: Annotated[ComponentConfig, Registered("decoder")] = field(default_factory=lambda: ComponentConfig("nb201"))
    cache_dir: Annotated[str | None, IsPath()] = None

    def scorer(self, space: SearchSpace, cache_dir: str | None) -> ZeroCostScorer:
        """The :class:`~predictors.ZeroCostScorer` of these settings for ``space``."""
        return ZeroCostScorer(
            data_root=self.data_root, dataset=self.dataset, batch_size=self.batch_size, data_seed=self.data_seed,
            init_seed=self.init_seed, network=self.network, cache_dir=cache_dir, space=space,
        )


MAX_TRIALS = 10_000
"""Most trials per predictor and training size."""


@dataclass(frozen=True)
class HarnessConfig(Checked):
    """Settings of the ``predictors`` run (``configs/predictors-nb201.yaml``).

    Attributes:
        space: The search space (must be ``enumerable``: test sets and pools are drawn by
            ordinal).
        tables: Registered benchmark tables joined by architecture, which provide the
            targets (default: the NAS-Bench-201 table from ``$EVONAS_NB201``).
        metric: The table metric to predict (default: 200-epoch CIFAR-10 validation accuracy).
        direction: ``max``: higher targets are better (accuracies); ``min``: lower (losses).
        predictors: Registered predictor names to evaluate (empty: all registered).
        params: Hyper-parameter overrides per predictor name, e.g. ``{gin: {epochs: 100}}``.
            ``space``, ``scorer``, ``random_state`` and a proxy's ``direction`` are set by
            the run itself (from ``space``, ``zero_cost``, ``seed`` and ``direction``).
        train_sizes: Training-set sizes.
        test_size: Architectures in the fixed test set.
        trials: Trials (training-set draws and predictor seeds) per size.
        train_pool: Architectures, disjoint from the test set, that training sets are drawn
            from (``None``: all others). A pool bounds the zero-cost scoring work.
        top_fraction: ``k`` of precision@top-k as a share of the test set.
        zero_cost: How zero-cost scores are computed.
        executor: Registered executor running the trials (``serial`` or ``ray``).
        threads_per_trial: torch threads of every trial.
        seed: Seed of the test set, the pool and every trial.
        run_dir: Where the run directory goes (default ``runs/<config name>-<time>``).
        progress: Show progress bars.
    """

    space: Annotated[ComponentConfig, Registered("space")] = field(default_factory=lambda: ComponentConfig("nb201"))
    tables: tuple[Annotated[ComponentConfig, Registered("table")], ...] = (ComponentConfig("nb201"),)
    metric: str = "cifar10-valid_valid_acc"
    direction: Literal["max", "min"] = "max"
    predictors: tuple[str, ...] = ()
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    train_sizes: tuple[Annotated[int, Range(2, MAX_ARCHS)], ...] = (10, 20, 50, 100, 200, 400)
    test_size: Annotated[int, Range(2, MAX_ARCHS)] = 200
    trials: Annotated[int, Range(1, MAX_TRIALS)] = 10
    train_pool: Annotated[int | None, Range(2, MAX_ARCHS)] = 1000
    top_fraction: Annotated[float, Range(0, 1, low_open=True)] = 0.1
    zero_cost: ZeroCostConfig = field(default_factory=ZeroCostConfig)
    executor: Annotated[ComponentConfig, Registered("executor")] = field(
        default_factory=lambda: ComponentConfig("serial")
    )
    threads_per_trial: Annotated[int, Range(1, MAX_WORKERS)] = 1
    seed: Annotated[int, Range(0, MAX_SEED)] = 0
    run_dir: Annotated[str | None, IsPath()] = None
    progress: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.train_sizes:
            raise ConfigError("train_sizes must list at least one size")
        for i, size in enumerate(self.train_sizes):
            check_int(size, f"train_sizes[{i}]", 2, MAX_ARCHS)
        if len(set(self.train_sizes)) != len(self.train_sizes):
            raise ConfigError(f"train_sizes lists a size twice: {list(self.train_sizes)}")
        if len(set(self.predictors)) != len(self.predictors):
            raise ConfigError(f"predictors lists a name twice: {list(self.predictors)}")
        if self.train_pool is not None:
            check_int(self.train_pool, "train_pool", max(self.train_sizes), MAX_ARCHS)

    @property
    def predictor_names(self) -> tuple[str, ...]:
        """The predictors evaluated, in order."""
        from predictors._registry import PREDICTORS

        return self.predictors or tuple(PREDICTORS.names())


# ---------------------------------------------------------------------------- prepare
@dataclass
class PreparedHarness:
    """Everything checked and loaded before a run directory exists.

    Attributes:
        space: The (enumerable) search space.
        names: The predictors evaluated, in order.
        params: Hyper-parameters per predictor, the run's ``space`` and proxy ``direction``
            included (the scorer is added when the run directory is known).
        proxies: Zero-cost proxies read by any predictor (their correlations are reported).
        scorer_names: Predictors given the run's zero-cost scorer.
        zero_cost_names: Predictors that are zero-cost proxies (one untrained trial each).
        test: The fixed test set.
        test_y: Its targets.
        pool: The training pool.
        pool_y: Its targets.
    """

    space: EnumerableSpace
    names: tuple[str, ...]
    params: dict[str, dict[str, Any]]
    proxies: tuple[str, ...]
    scorer_names: tuple[str, ...]
    zero_cost_names: tuple[str, ...]
    test: tuple[Arch, ...]
    test_y: np.ndarray
    pool: tuple[Arch, ...]
    pool_y: np.ndarray


# Hyper-parameters the run sets itself -> the config key that sets them.
_SET_BY_RUN = {"space": "space", "scorer": "zero_cost", "random_state": "seed", "direction": "direction"}


def _predictor(name: str, overrides: Mapping[str, Any], space: SearchSpace, direction: str) -> ArchPredictor:
    """The predictor ``name`` with the config's overrides and the run's space (and direction)."""
    from predictors._registry import make_predictor
    from predictors._zc_predictor import ZeroCostPredictor

    try:
        est = make_predictor(name, **overrides)
    except EvonasError as exc:
        raise ConfigError(f"params.{name}: {exc}") from None
    hyper = est.get_params(deep=False)
    for key, setter in _SET_BY_RUN.items():
        if key in overrides and key in hyper:
            raise ConfigError(f"params.{name}.{key} is set by the run (from '{setter}'); remove it")
    est.set_params(space=space)
    if isinstance(est, ZeroCostPredictor):
        est.set_params(direction=direction)
    return est


def prepare_harness(config: HarnessConfig) -> PreparedHarness:
    """Check the predictors, the space, the tables and the metric, and draw the test set and pool.

    Raises:
        UnknownChoiceError: An unknown predictor, space, table, decoder, dataset or metric.
        CapabilityError: The space is not enumerable, or lacks what a predictor (or a table,
            or the zero-cost decoder) needs.
        ConfigError: Invalid hyper-parameters, or more architectures asked than the tables hold.
        DataError: A table or the zero-cost images are missing or malformed.
    """
    from evonas.tabular import build_tables
    from predictors._registry import PREDICTORS

    built = config.space.build("space")
    require(built, {"enumerable"}, "the predictors run")
    space = cast(EnumerableSpace, built)
    names = config.predictor_names
    for name in names:
        PREDICTORS.get(name)
    for name, overrides in config.params.items():
        if name not in names:
            raise ConfigError(f"params has an entry for {name!r}, which is not evaluated; predictors: {', '.join(names)}")
        if not isinstance(overrides, Mapping):
            raise ConfigError(f"params.{name} must be a mapping of hyper-parameters; got {overrides!r}")
    estimators = {name: _predictor(name, config.params.get(name, {}), space, config.direction) for name in names}
    for name, est in estimators.items():
        require(space, est.required_capabilities(), f"predictor {name!r}")
    proxies = tuple(dict.fromkeys(p for est in estimators.values() for p in est.zero_cost_proxies()))
    scorer_names = tuple(
        n for n, est in estimators.items() if est.zero_cost_proxies() and "scorer" in est.get_params(deep=False)
    )
    if proxies:
        scorer = config.zero_cost.scorer(space, cache_dir=None)
        scorer.check()
        scorer.minibatch()  # missing images fail here, not in every trial
        for name in scorer_names:
            estimators[name].set_params(scorer=scorer)
    for name, est in estimators.items():
        try:
            est.check_params()
        except CapabilityError:
            raise
        except EvonasError as exc:
            raise ConfigError(f"params.{name}: {exc}") from None

    table = build_tables(config.tables, space)
    table.owner(config.metric)
    archs = space.all_archs()
    values = np.full(len(archs), np.nan)
    for o, arch in enumerate(archs):
        if table.has(arch):
            values[o] = table.query(arch, config.metric)
    eligible = np.flatnonzero(np.isfinite(values))
    pool_size = len(eligible) - config.test_size if config.train_pool is None else config.train_pool
    if config.test_size + pool_size > len(eligible) or pool_size < max(config.train_sizes):
        raise ConfigError(
            f"test_size + train_pool = {config.test_size} + {pool_size} architectures asked (and train_pool >= "
            f"{max(config.train_sizes)}, the largest train size); the tables hold {len(eligible)} architectures of "
            f"{space.name!r} with a finite {config.metric!r}"
        )
    rng = np.random.default_rng(config.seed)
    order = rng.permutation(eligible)
    test = np.sort(order[: config.test_size])
    pool = np.sort(order[config.test_size : config.test_size + pool_size])
    zero_cost_names = tuple(n for n, est in estimators.items() if _is_zero_cost(est))
    params: dict[str, dict[str, Any]] = {n: {**config.params.get(n, {}), "space": space} for n in names}
    for name in zero_cost_names:
        params[name]["direction"] = config.direction
    return PreparedHarness(
        space=space,
        names=names,
        params=params,
        proxies=proxies,
        scorer_names=scorer_names,
        zero_cost_names=zero_cost_names,
        test=tuple(archs[int(o)] for o in test),
        test_y=values[test],
        pool=tuple(archs[int(o)] for o in pool),
        pool_y=values[pool],
    )


def _is_zero_cost(est: ArchPredictor) -> bool:
    from predictors._zc_predictor import ZeroCostPredictor

    return isinstance(est, ZeroCostPredictor)


# ---------------------------------------------------------------------------- execute
def _specs(config: HarnessConfig, prepared: PreparedHarness) -> list[TrialSpec]:
    out = []
    for name in prepared.names:
        if name in prepared.zero_cost_names:
            out.append(TrialSpec(name, None, 0))
            continue
        out.extend(TrialSpec(name, s, t) for s in range(len(config.train_sizes)) for t in range(config.trials))
    return out


def _trial_seed(config: HarnessConfig, spec: TrialSpec) -> int:
    return config.seed if spec.size_index is None else config.seed * _TRIAL_SEED_STRIDE + spec.trial


declare_records(
    "predictors",
    trial={"predictor": str, "train_size": int, "trial": int, "failed": bool, "error": str,
           **dict.fromkeys(METRICS, JsonFloat)},
    zero_cost={"rows": [{"proxy": str, "n_archs": int, "kendall_tau": JsonFloat, "spearman_rho": JsonFloat,
                         "scoring_time_s": JsonFloat}]},
)


def _trial_record(outcome: Outcome, sizes: tuple[int, ...]) -> dict[str, Any]:
    spec: TrialSpec = outcome.task.payload
    value = outcome.value
    error = outcome.error
    if error is None and not isinstance(value, TrialResult):
        error = f"the trial returned {type(value).__name__}, not a TrialResult"
    metrics = value.metrics() if error is None and isinstance(value, TrialResult) else dict.fromkeys(METRICS, math.nan)
    record: dict[str, Any] = jsonable({
        "type": "trial",
        "task_id": outcome.task.task_id,
        "predictor": spec.predictor,
        "train_size": 0 if spec.size_index is None else sizes[spec.size_index],
        "trial": spec.trial,
        **metrics,
        "failed": error is not None,
        "error": error or "",
        "seconds": outcome.seconds,
    })
    return record


def _zero_cost_rows(
    scorer: ZeroCostScorer, prepared: PreparedHarness, direction: str, progress: bool
) -> list[dict[str, Any]]:
    """Each proxy's correlations with the targets over every scored architecture."""
    from predictors._metrics import kendall_tau, spearman_rho

    archs = [*prepared.test, *prepared.pool]
    y = np.concatenate([prepared.test_y, prepared.pool_y])
    start = time.perf_counter()
    scores = scorer.scores(archs, prepared.proxies, progress=progress)
    elapsed = time.perf_counter() - start
    sign = 1.0 if direction == "max" else -1.0
    return [
        {
            "proxy": proxy,
            "n_archs": len(archs),
            "kendall_tau": kendall_tau(y, sign * scores[:, j]),
            "spearman_rho": spearman_rho(y, sign * scores[:, j]),
            "scoring_time_s": elapsed,
        }
        for j, proxy in enumerate(prepared.proxies)
    ]


def _execute(
    run: RunDir,
    config: HarnessConfig,
    prepared: PreparedHarness,
    resume: bool,
    progress: bool,
    executor: Executor | None = None,
) -> tuple[dict[str, Any], HarnessOutputs]:
    import torch
    from tqdm.auto import tqdm

    records = run.read_log(repair=True) if resume else []
    done = {trial_key(r["predictor"], r["train_size"], r["trial"]) for r in records if r.get("type") == "trial"}
    cache_dir = config.zero_cost.cache_dir if config.zero_cost.cache_dir is not None else str(run.path / "zc-cache")
    scorer = config.zero_cost.scorer(prepared.space, cache_dir=cache_dir)
    params = {
        name: {**p, "scorer": scorer} if name in prepared.scorer_names else dict(p)
        for name, p in prepared.params.items()
    }
    old_threads = torch.get_num_threads()
    torch.set_num_threads(config.threads_per_trial)
    try:
        if prepared.proxies and not set(prepared.proxies) <= {r["proxy"] for r in zero_cost_records(records)}:
            rows = _zero_cost_rows(scorer, prepared, config.direction, progress)
            run.append(jsonable({"type": "zero_cost", "rows": rows}))
        specs = _specs(config, prepared)
        tasks = [
            Task(i, spec, _trial_seed(config, spec))
            for i, spec in enumerate(specs)
            if trial_key(spec.predictor, 0 if spec.size_index is None else config.train_sizes[spec.size_index], spec.trial)
            not in done
        ]
        if tasks:
            worker = TrialRunner(
                params=params, test=prepared.test, test_y=prepared.test_y, pool=prepared.pool,
                pool_y=prepared.pool_y, sizes=tuple(config.train_sizes), seed=config.seed,
                top_fraction=config.top_fraction, direction=config.direction, threads=config.threads_per_trial,
            )
            own = executor is None
            runner: Executor = config.executor.build("executor") if executor is None else executor
            try:
                runner.start(worker)
                for task in tasks:
                    runner.submit(task)
                with tqdm(total=len(tasks), desc="predictor trials", disable=not progress) as bar:
                    while runner.num_pending:
                        finished = runner.wait()
                        for outcome in finished:
                            run.append(_trial_record(outcome, tuple(config.train_sizes)))
                        bar.update(len(finished))
            finally:
                if own:
                    runner.close()
    finally:
        torch.set_num_threads(old_threads)
    outputs = write_outputs(run, config)
    return _summary(config, prepared.space, outputs), outputs


def _summary(config: HarnessConfig, space: SearchSpace, outputs: HarnessOutputs) -> dict[str, Any]:
    """The JSON summary of a run (``result.json``)."""
    failed = [r for r in outputs.rows if r["failed"]]
    best = []
    for size in sorted({r["train_size"] for r in outputs.summary if r["train_size"] > 0}):
        candidates = [(r["kendall_tau_mean"], r["predictor"]) for r in outputs.summary
                      if r["train_size"] == size and math.isfinite(r["kendall_tau_mean"])]
        if candidates:
            tau, name = max(candidates)
            best.append({"train_size": size, "predictor": name, "kendall_tau": tau})
    summary: dict[str, Any] = jsonable({
        "space": space.name,
        "metric": config.metric,
        "direction": config.direction,
        "trials": len(outputs.rows),
        "failed": len(failed),
        "first_error": f"{failed[0]['predictor']} at size {failed[0]['train_size']}: {failed[0]['error']}" if failed else None,
        "best": best,
        "summary": outputs.summary,
        "zero_cost": outputs.zero_cost,
    })
    return summary


# --------------------------------------------------------------------------- run kind
class PredictorsRun(RunKind):
    """``evonas predictors evaluate``: the harness in a run directory.

    ``--resume`` runs the trials the log does not hold yet; overriding ``trials`` or
    ``predictors`` extends a finished run.
    """

    name = "predictors"
    Config = HarnessConfig
    extendable = ("trials", "predictors")

    def prepare(self, config: HarnessConfig) -> PreparedHarness:
        return prepare_harness(config)

    def execute(
        self, run: RunDir, config: HarnessConfig, prepared: PreparedHarness, resume: bool, progress: bool
    ) -> dict[str, Any]:
        return _execute(run, config, prepared, resume, progress)[0]

    def failure(self, summary: dict[str, Any]) -> str | None:
        if summary.get("trials") and summary.get("failed") == summary["trials"]:
            return f"every one of the {summary['trials']} predictor trials failed; first: {summary.get('first_error')}"
        return None

    def format_summary(self, summary: dict[str, Any], run_dir: Path) -> str:
        lines = [
            f"run directory: {run_dir}",
            f"predictor trials: {summary['trials']} ({summary['failed']} failed) on {summary['space']}, "
            f"{summary['metric']} ({summary['direction']})",
        ]
        if summary["best"]:
            lines.append("best mean Kendall tau by training size: " + "; ".join(
                f"{b['train_size']}: {b['predictor']} ({float(b['kendall_tau']):.3f})" for b in summary["best"]
            ))
        if summary.get("first_error"):
            lines.append(f"first failure: {summary['first_error']}")
        lines.append(f"tables: {Path(run_dir) / 'results.md'}")
        return "\n".join(lines)

    def report(self, run: RunDir) -> str:
        config = from_dict(HarnessConfig, run.config)
        return write_outputs(run, config).markdown


PREDICTORS_RUN = PredictorsRun()
"""The ``predictors`` run kind (registered in :data:`evonas.runs.RUN_KINDS`)."""


# ------------------------------------------------------------------------ programmatic
@dataclass
class HarnessResult:
    """What :func:`run_harness` produced.

    Attributes:
        rows: One dict per trial (see :class:`HarnessOutputs`).
        summary: One dict per (predictor, train_size): mean and std of every metric.
        zero_cost: One dict per zero-cost proxy: correlations over every scored architecture.
        markdown: The Markdown report (also in ``results.md``).
        files: Paths of the files written, by kind (``csv``, ``summary``, ``markdown``, ``plot``).
        run_summary: The run's JSON summary (``result.json``).
        test_archs: The fixed test set (genotypes).
        pool_archs: The architectures training sets were drawn from.
    """

    rows: list[dict[str, Any]]
    summary: list[dict[str, Any]]
    zero_cost: list[dict[str, Any]]
    markdown: str
    files: dict[str, Path]
    run_summary: dict[str, Any] = field(default_factory=dict)
    test_archs: list[Arch] = field(default_factory=list)
    pool_archs: list[Arch] = field(default_factory=list)

    def mean(self, predictor: str, train_size: int, metric: str = "kendall_tau") -> float:
        """Mean of ``metric`` over the trials of ``predictor`` at ``train_size``."""
        for row in self.summary:
            if row["predictor"] == predictor and row["train_size"] == train_size:
                return float(row[f"{metric}_mean"])
        raise KeyError(f"no results for predictor {predictor!r} at train size {train_size}")


def run_harness(
    config: HarnessConfig, out_dir: str | os.PathLike[str], executor: Executor | None = None, progress: bool = True
) -> HarnessResult:
    """Run the harness in a new run directory ``out_dir``, as ``evonas predictors evaluate`` does.

    Args:
        config: The protocol settings.
        out_dir: The run directory (must not exist, or be empty).
        executor: An :class:`~evonas.executors.Executor` to run the trials (not closed
            here); ``None``: the one of ``config.executor``.
        progress: Show tqdm progress bars.

    Returns:
        The per-trial rows, the summary and the report.

    Raises:
        EvonasError: Bad input (see :func:`prepare_harness`); nothing was written.
        RunFailedError: Every trial failed.
    """
    from evonas.plugins import loaded_plugins

    prepared = PREDICTORS_RUN.prepare(config)
    run = RunDir.create(out_dir, to_dict(config), config.seed, PREDICTORS_RUN.name, plugins=loaded_plugins())
    try:
        summary, outputs = _execute(run, config, prepared, resume=False, progress=progress, executor=executor)
        run.write_json(RESULT, summary)
    finally:
        run.close()
    raise_if_failed(PREDICTORS_RUN, summary, run.path)
    return HarnessResult(
        rows=outputs.rows, summary=outputs.summary, zero_cost=outputs.zero_cost, markdown=outputs.markdown,
        files=outputs.files, run_summary=summary, test_archs=list(prepared.test), pool_archs=list(prepared.pool),
    )
