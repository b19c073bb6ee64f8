"""The pipeline config: one dataset, one space, one training recipe, one section per stage.

Each stage section holds only what belongs to that stage; what every stage shares
(``dataset``, ``space``, ``seed``, the final ``train`` recipe and ``network``, the
``executor``, the ground-truth ``tables``) is written once at the top and handed to every
stage by :func:`stage_configs`. A stage section that repeats a shared key must agree with
it (it is redundant, not an override); one that contradicts it is refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from ensembles._config import CandidatesConfig, EnsembleConfig, PrunerSpec, _default_pruners
from ensembles._diversity import DIVERSITY
from ensembles._metrics import DEFAULT_ECE_BINS, MAX_ECE_BINS
from evonas.config import (
    MAX_ARCHS,
    MAX_COUNT,
    MAX_SEED,
    MAX_WORKERS,
    Checked,
    ComponentConfig,
    IsPath,
    Range,
    Registered,
    from_dict,
    to_dict,
)
from evonas.data import DatasetConfig
from evonas.errors import ConfigError
from evonas.fitness import Objective
from evonas.search._config import FitnessConfig, SearchConfig
from evonas.search._loop import Budget
from evonas.supernet._config import ProxyConfig, SupernetEvalConfig, SupernetRunConfig, SupernetTrainConfig
from evonas.training import TrainConfig

STAGES: tuple[str, ...] = ("supernet", "search", "ensemble")
"""The stages that are runs of their own kind, in order (``final`` is the ensemble run's
training of its members; ``export`` follows the ensemble)."""

SCORE_METRICS: dict[str, tuple[str, ...]] = {"proxy": ("proxy_val_loss",), "supernet": ("val_loss", "val_acc")}


def _component(name: str, **params: Any) -> Any:
    return field(default_factory=lambda: ComponentConfig(name, dict(params)))


@dataclass(frozen=True)
class SupernetStage(Checked):
    """The ``supernet`` stage: a single-path one-shot supernet trained on architectures
    chosen by a sampler (novelty search by default), with proxy-validation rounds that
    label cells with their validation loss and fit the proxy predictor (Li et al., TPAMI
    2022). Keys as in ``evonas supernet train`` configs; ``dataset``, ``space`` and
    ``seed`` come from the pipeline (repeating them here is allowed only when equal).

    Attributes:
        supernet: ``{name, params}`` of the supernet family (default ``nb201``, C=8, one
            cell per stage).
        sampler: ``{name, params}`` of the architecture sampler (default ``novelty``).
        train: The supernet's optimisation recipe (``steps``, ``batch_size``, ``optim``, ...).
        evaluation: Evaluation with inherited weights (proxy rounds, re-scoring).
        proxy: The proxy-validation loop; it must fit a predictor (``every`` > 0 or
            ``final_round``) when the search scores with the proxy.
        checkpoint_every: Steps between checkpoints.
        log_every: Steps between ``step`` log records.
        dataset: Must equal the pipeline's ``dataset`` when given.
        space: Must equal the pipeline's ``space`` when given.
    """

    supernet: Annotated[ComponentConfig, Registered("supernet")] = _component(
        "nb201", channels=8, cells_per_stage=1
    )
    sampler: Annotated[ComponentConfig, Registered("sampler")] = _component("novelty")
    train: SupernetTrainConfig = field(default_factory=SupernetTrainConfig)
    evaluation: SupernetEvalConfig = field(default_factory=SupernetEvalConfig)
    proxy: ProxyConfig = field(default_factory=lambda: ProxyConfig(every=0, final_round=True, archs_per_round=50))
    checkpoint_every: Annotated[int, Range(1, MAX_COUNT)] = 200
    log_every: Annotated[int, Range(1, MAX_COUNT)] = 50
    dataset: DatasetConfig | None = None
    space: Annotated[ComponentConfig | None, Registered("space")] = None


def _default_fitness() -> FitnessConfig:
    return FitnessConfig(
        objectives=(Objective("proxy_val_loss", "min"),),
        name="neighbourhood",
        params={"aggregate": "mean", "include_self": True},
    )


@dataclass(frozen=True)
class SearchStage(Checked):
    """The ``search`` stage: evolution whose fitness comes from the supernet stage.

    Attributes:
        score: ``proxy`` (default): the supernet run's proxy predictor, metric
            ``proxy_val_loss`` (cheap: every neighbour of the neighbourhood-aware fitness is
            scored); ``supernet``: inherited weights, metrics ``val_loss``/``val_acc``.
        actors: With ``score: supernet``, serve evaluations from this many Ray actors.
        fitness: Objectives and fitness (default: neighbourhood-aware, Wang et al., BMVC
            2021, the mean predicted proxy validation loss over a cell and its one-edit
            neighbours).
        strategy: ``{name, params}`` (default regularized evolution, population 20,
            tournament 5).
        budget: When the search stops (default 1,000 evaluations).
        checkpoint_every: Candidates between checkpoints.
    """

    score: Literal["proxy", "supernet"] = "proxy"
    actors: Annotated[int, Range(0, MAX_WORKERS)] = 0
    fitness: FitnessConfig = field(default_factory=_default_fitness)
    strategy: Annotated[ComponentConfig, Registered("strategy")] = _component(
        "rea", population_size=20, tournament_size=5
    )
    budget: Budget = field(default_factory=lambda: Budget(evaluations=1000))
    checkpoint_every: Annotated[int, Range(1, MAX_COUNT)] = 20

    def __post_init__(self) -> None:
        super().__post_init__()
        valid = SCORE_METRICS[self.score]
        for objective in self.fitness.objectives:
            if objective.metric not in valid:
                raise ConfigError(
                    f"search.fitness objective {objective.metric!r} is not a metric of score {self.score!r}; "
                    f"valid: {', '.join(valid)}"
                )


@dataclass(frozen=True)
class FinalStage(Checked):
    """The ``final`` stage: the search's best distinct architectures (one per function, by
    the space's canonical form; the Pareto front of a multi-objective search), trained
    from scratch on the training split with the pipeline's ``train`` recipe, on the
    pipeline's executor (Ray tasks; ``gpus_per_eval`` places them on GPUs).

    Attributes:
        members: How many architectures to train (the pool the ensemble stage prunes).
        rescore: 0 (default): take the best ``members`` by search fitness. K >= members:
            re-score the best K with the supernet's inherited weights (validation loss
            after BN recalibration) and keep the best ``members`` of them.
    """

    members: Annotated[int, Range(1, MAX_ARCHS)] = 6
    rescore: Annotated[int, Range(0, MAX_ARCHS)] = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.rescore and self.rescore < self.members:
            raise ConfigError(
                f"final.rescore={self.rescore} must be 0 or at least final.members={self.members} "
                "(it re-scores K candidates and keeps the best 'members')"
            )


@dataclass(frozen=True)
class EnsembleStage(Checked):
    """The ``ensemble`` stage: SAEP (PRS, PAP, PIE; Bian et al., IEEE TNNLS 2021) and the
    baselines prune the trained pool on validation data; ``export`` names the result.

    Attributes:
        pruners: The pruners (default: prs, pap, pie, top_k, caruana).
        diversity: Diversity measures to report (default: all).
        ece_bins: Bins of the expected calibration error.
        export: Label of the pruner row exported as the pipeline's result; None
            (default): the SAEP pruner with the best validation accuracy (fewer members on
            ties). The test split never decides.
    """

    pruners: tuple[PrunerSpec, ...] = field(default_factory=_default_pruners)
    diversity: tuple[str, ...] = field(default_factory=lambda: tuple(DIVERSITY.names()))
    ece_bins: Annotated[int, Range(1, MAX_ECE_BINS)] = DEFAULT_ECE_BINS
    export: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        rows = [p.row for p in self.pruners]
        if self.export is not None and self.export not in rows:
            raise ConfigError(f"ensemble.export {self.export!r} is not a pruner row; valid: {', '.join(rows)}")


@dataclass(frozen=True)
class PipelineConfig(Checked):
    """The whole pipeline (``evonas run``): supernet -> search -> final -> ensemble -> export.

    Attributes:
        dataset: The data of every stage (the supernet trains on its training split and
            ranks on its validation split; final members train on the training split,
            the ensemble is pruned on validation and judged on test).
        space: The search space of every stage.
        network: The decoder of the final members, ``{name, params}``.
        train: How final members are trained from scratch.
        executor: Where the search's evaluations and the final trainings run.
        tables: Benchmark tables with the ground truth of architectures (e.g. the
            NAS-Bench-201 table); every stage then reports it for what it picked.
        report: Table metrics recorded for every architecture a stage picks (e.g.
            ``[cifar10_test_acc]``); needs ``tables``, and ``tables`` need it.
        supernet: The supernet stage (:class:`SupernetStage`).
        search: The search stage (:class:`SearchStage`).
        final: The final stage (:class:`FinalStage`).
        ensemble: The ensemble stage (:class:`EnsembleStage`).
        seed: Seed of every stage.
        run_dir: Where the run directory goes (default ``runs/<config name>-<time>``);
            relative to the config file.
        progress: Show one progress display per stage.
    """

    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    space: Annotated[ComponentConfig, Registered("space")] = _component("nb201")
    network: Annotated[ComponentConfig, Registered("decoder")] = _component("nb201", channels=8, cells_per_stage=1)
    train: TrainConfig = field(default_factory=TrainConfig)
    executor: Annotated[ComponentConfig, Registered("executor")] = _component("serial")
    tables: tuple[Annotated[ComponentConfig, Registered("table")], ...] = ()
    report: tuple[str, ...] = ()
    supernet: SupernetStage = field(default_factory=SupernetStage)
    search: SearchStage = field(default_factory=SearchStage)
    final: FinalStage = field(default_factory=FinalStage)
    ensemble: EnsembleStage = field(default_factory=EnsembleStage)
    seed: Annotated[int, Range(0, MAX_SEED)] = 0
    run_dir: Annotated[str | None, IsPath()] = None
    progress: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        for key in ("dataset", "space"):
            own = getattr(self.supernet, key)
            if own is not None and own != getattr(self, key):
                raise ConfigError(
                    f"supernet.{key} {_short(to_dict(own))} contradicts the pipeline's {key} "
                    f"{_short(to_dict(getattr(self, key)))}: a pipeline has one {key}, set at the top; drop "
                    f"supernet.{key}"
                )
        if self.report and not self.tables:
            raise ConfigError(f"report {list(self.report)} names table metrics, but no tables are configured")
        if self.tables and not self.report:
            raise ConfigError("tables are configured but report is empty; name the metrics to report, e.g. "
                              "report: [cifar10_test_acc]")
        if self.search.score == "proxy" and not (self.supernet.proxy.enabled or self.supernet.proxy.final_round):
            raise ConfigError(
                "search.score 'proxy' needs the supernet stage to fit a proxy predictor: set supernet.proxy.every "
                "> 0 or supernet.proxy.final_round: true"
            )
        try:
            from evonas.config import check_number

            check_number(self.dataset.val_fraction, "dataset.val_fraction", 0.0, low_open=True)
        except ConfigError as exc:
            raise ConfigError(f"{exc}: the supernet ranks and the pruners choose on validation data") from None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 160 else text[:157] + "..."


@dataclass(frozen=True)
class StagePaths:
    """Where the stages of one pipeline run live."""

    root: Path

    def of(self, stage: str) -> Path:
        return self.root / stage

    @property
    def export(self) -> Path:
        return self.root / "export"


def supernet_config(config: PipelineConfig, table: str | None) -> SupernetRunConfig:
    """The supernet stage's run config."""
    section = config.supernet
    data = {
        "dataset": to_dict(config.dataset),
        "space": to_dict(config.space),
        "supernet": to_dict(section.supernet),
        "sampler": to_dict(section.sampler),
        "train": to_dict(section.train),
        "evaluation": to_dict(section.evaluation),
        "proxy": to_dict(section.proxy),
        "seed": config.seed,
        "checkpoint_every": section.checkpoint_every,
        "log_every": section.log_every,
        "progress": config.progress,
        "table": table,
    }
    stage: SupernetRunConfig = from_dict(SupernetRunConfig, data, "supernet stage")
    return stage


def evaluator_section(config: PipelineConfig, supernet_dir: Path, score: str | None = None) -> dict[str, Any]:
    """The search evaluator scoring with the supernet stage's run (``proxy`` or ``supernet``)."""
    score = score or config.search.score
    params: dict[str, Any] = {"run_dir": str(supernet_dir)}
    if score == "supernet":
        params["actors"] = config.search.actors
        params["device"] = config.supernet.train.compute.device
    if config.tables:
        params["tables"] = [to_dict(t) for t in config.tables]
        params["report"] = list(config.report)
    return {"name": score, "params": params}


def search_config(config: PipelineConfig, supernet_dir: Path) -> SearchConfig:
    """The search stage's run config (its evaluator reads the supernet stage's run)."""
    section = config.search
    data = {
        "evaluator": evaluator_section(config, supernet_dir),
        "fitness": to_dict(section.fitness),
        "strategy": to_dict(section.strategy),
        "budget": to_dict(section.budget),
        "seed": config.seed,
        "space": to_dict(config.space),
        "executor": to_dict(config.executor),
        "report": config.report[0] if config.report else None,
        "checkpoint_every": section.checkpoint_every,
        "progress": config.progress,
    }
    stage: SearchConfig = from_dict(SearchConfig, data, "search stage")
    return stage


def ensemble_config(config: PipelineConfig, candidates: CandidatesConfig) -> EnsembleConfig:
    """The ensemble stage's run config (final members + pruning)."""
    data = {
        "candidates": to_dict(candidates),
        "space": to_dict(config.space),
        "dataset": to_dict(config.dataset),
        "train": to_dict(config.train),
        "network": to_dict(config.network),
        "executor": to_dict(config.executor),
        "pruners": [to_dict(p) for p in config.ensemble.pruners],
        "diversity": list(config.ensemble.diversity),
        "ece_bins": config.ensemble.ece_bins,
        "seed": config.seed,
        "progress": config.progress,
    }
    stage: EnsembleConfig = from_dict(EnsembleConfig, data, "ensemble stage")
    return stage


__all__ = [
    "STAGES",
    "EnsembleStage",
    "FinalStage",
    "PipelineConfig",
    "SearchStage",
    "StagePaths",
    "SupernetStage",
    "ensemble_config",
    "evaluator_section",
    "search_config",
    "supernet_config",
]
