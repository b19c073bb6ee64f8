"""The config of an ensemble build: which candidates, how to train them, how to prune.

Loaded with the one config loader (typed frozen dataclasses, unknown keys rejected,
``key.sub=value`` overrides checked the same way, relative paths resolved against the
config file)::

    seed: 0
    space: {name: nb201}
    candidates:
      archs: ["|nor_conv_3x3~0|+|...|", ...]     # or:
      # search_run: runs/nb201-rea-20250101-120000
      # top: 10
    dataset: {name: fashion-mnist, root: /usr/share/datasets/fashion-mnist, max_train: 8000}
    train: {epochs: 4, batch_size: 128, optim: {lr: 0.05}}
    network: {name: nb201, params: {channels: 8, cells_per_stage: 1}}
    executor: {name: ray, params: {num_cpus: 2, max_in_flight: 2}}
    pruners:
      - {name: pie, params: {max_fraction: 0.5, lam: 0.5}}
      - {name: pap, params: {max_fraction: 0.5}}
    diversity: [disagreement, q_statistic]
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any

from ensembles._diversity import DIVERSITY
from ensembles._metrics import DEFAULT_ECE_BINS, MAX_ECE_BINS
from ensembles._pruners import PRUNERS, pruner_parameters
from evonas.config import (
    MAX_ARCHS,
    MAX_SEED,
    Checked,
    ComponentConfig,
    IsPath,
    Range,
    Registered,
    check_number,
    load_config,
)
from evonas.data import DatasetConfig
from evonas.errors import ConfigError
from evonas.training import TrainConfig

_LABEL_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-=+()")

DEFAULT_TOP = 10
"""How many of a search run's best distinct architectures a build trains by default."""


@dataclass(frozen=True)
class CandidatesConfig(Checked):
    """Where the candidate architectures come from: a list, or the best of a search run.

    Attributes:
        archs: Architecture strings of the configured space (for ``nb201``, NAS-Bench-201
            cell strings), trained in this order (duplicates rejected).
        search_run: A search run directory (``evonas search``) over the same space; its
            scored candidates are ranked by the first objective, best first, and only
            one architecture of each function (the space's canonical key) is kept; a
            multi-objective search gives its Pareto front. Relative to the config file
            (or, as an override, to the current directory).
        top: How many of the search run's best distinct architectures to train
            (default 10); only with ``search_run``.

    Raises:
        ConfigError: Neither or both sources, an empty list, or a bad ``top``.
    """

    archs: tuple[str, ...] = ()
    search_run: Annotated[str | None, IsPath()] = None
    top: Annotated[int | None, Range(1, MAX_ARCHS)] = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.search_run is not None:
            if self.archs:
                raise ConfigError(
                    "candidates takes either 'archs' or 'search_run', not both; "
                    f"got {len(self.archs)} archs and search_run={self.search_run!r}"
                )
            return
        if self.top is not None:
            raise ConfigError(f"candidates.top={self.top!r} needs candidates.search_run; with 'archs' drop it")
        if not self.archs:
            raise ConfigError(
                "the candidate list is empty: give candidates.archs (architecture strings of the space) "
                "or candidates.search_run (a search run directory)"
            )

    @property
    def num_top(self) -> int:
        """``top`` with its default (:data:`DEFAULT_TOP`)."""
        return DEFAULT_TOP if self.top is None else self.top


@dataclass(frozen=True)
class PrunerSpec(Checked):
    """One pruner to run, with its parameters.

    Pruners are plain functions with keyword parameters (see :data:`~ensembles.PRUNERS`),
    so their parameters are checked here by name and, against the number of candidates,
    by a dry run when the build is prepared.

    Attributes:
        name: A registered pruner: ``prs``, ``pap``, ``pie`` (SAEP) or the baselines
            ``top_k``, ``caruana``.
        params: Its keyword parameters (``size`` or ``max_fraction``, ``lam`` for PIE,
            ``metric``/``n_init``/``iterations`` for Caruana).
        label: Name of this row in the report (default: ``name``); labels must be unique,
            so the same pruner can run twice with different parameters.

    Raises:
        UnknownChoiceError: ``name`` is not registered.
        ConfigError: A parameter the pruner does not take, or a bad label.
    """

    name: str
    params: dict[str, Any] = field(default_factory=dict)
    label: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        PRUNERS.get(self.name)
        valid = pruner_parameters(self.name)
        unknown = sorted(set(self.params) - set(valid))
        if unknown:
            raise ConfigError(
                f"pruner {self.name!r} takes no parameter {unknown[0]!r}; valid parameters: {', '.join(valid)}"
            )
        if self.label is not None and (
            not isinstance(self.label, str) or not self.label or not set(self.label) <= _LABEL_CHARS
        ):
            raise ConfigError(f"pruner label {self.label!r} is invalid; use letters, digits and _ . - = + ( )")

    @property
    def row(self) -> str:
        """The label of this pruner's row."""
        return self.label if self.label is not None else self.name


def _default_pruners() -> tuple[PrunerSpec, ...]:
    return tuple(PrunerSpec(name) for name in ("prs", "pap", "pie", "top_k", "caruana"))


def _nb201() -> ComponentConfig:
    return ComponentConfig("nb201")


@dataclass(frozen=True)
class EnsembleConfig(Checked):
    """A whole ensemble build: train candidates from scratch, prune, evaluate.

    Attributes:
        candidates: The architectures (:class:`CandidatesConfig`), parsed by ``space``.
        space: The search space of the candidates, ``{name, params}`` (default ``nb201``).
        dataset: Data and splits (:class:`~evonas.data.DatasetConfig`); pruning uses the
            validation split, evaluation the test split, so ``val_fraction`` must be > 0.
        train: The training recipe of every member (:class:`~evonas.training.TrainConfig`:
            ``epochs``, ``batch_size``, ``optim: {...}``, ``compute: {...}``).
        network: The decoder that builds a member's network, ``{name, params}`` (default
            ``nb201``: NAS-Bench-201's network, ``params: {channels, cells_per_stage}``);
            it must decode ``space``.
        executor: ``{name: serial|ray, params: {...}}``: where members train (default
            serial, in this process). With Ray, ``gpus_per_eval`` reserves GPUs per member
            and ``train.compute.device: auto`` then trains on them.
        pruners: The pruners to compare (default: every registered one with its defaults).
        diversity: Pairwise diversity measures to report (default: all registered).
        ece_bins: Bins of the expected calibration error.
        seed: Seed of the members' training seeds and of the random pruner.
        run_dir: Where the run directory goes (default ``runs/<config name>-<time>``);
            relative to the config file.
        progress: Show a progress bar over the members.

    Raises:
        ConfigError / UnknownChoiceError: Any invalid value; the message quotes it.
    """

    candidates: CandidatesConfig
    space: Annotated[ComponentConfig, Registered("space")] = field(default_factory=_nb201)
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    network: Annotated[ComponentConfig, Registered("decoder")] = field(default_factory=_nb201)
    executor: Annotated[ComponentConfig, Registered("executor")] = field(
        default_factory=lambda: ComponentConfig("serial")
    )
    pruners: tuple[PrunerSpec, ...] = field(default_factory=_default_pruners)
    diversity: tuple[str, ...] = field(default_factory=lambda: tuple(DIVERSITY.names()))
    ece_bins: Annotated[int, Range(1, MAX_ECE_BINS)] = DEFAULT_ECE_BINS
    seed: Annotated[int, Range(0, MAX_SEED)] = 0
    run_dir: Annotated[str | None, IsPath()] = None
    progress: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        try:
            check_number(self.dataset.val_fraction, "dataset.val_fraction", 0.0, low_open=True)
        except ConfigError as exc:
            raise ConfigError(f"{exc}: pruners choose members on validation data") from None
        if not self.pruners:
            raise ConfigError(f"pruners is empty; name at least one of {', '.join(PRUNERS.names())}")
        rows = [p.row for p in self.pruners]
        repeated = sorted({r for r in rows if rows.count(r) > 1})
        if repeated:
            raise ConfigError(
                f"pruner labels must be unique; repeated: {', '.join(repeated)} (give each a distinct 'label')"
            )
        for name in self.diversity:
            DIVERSITY.get(name)
        if len(set(self.diversity)) != len(self.diversity):
            raise ConfigError(f"diversity lists a measure twice: {list(self.diversity)}")


def load_ensemble_config(path: str | os.PathLike[str] | None, overrides: Sequence[str] = ()) -> EnsembleConfig:
    """Load an :class:`EnsembleConfig` from YAML plus ``key.sub=value`` overrides, all checked.

    Raises:
        ConfigError: A missing or malformed file, an unknown key or a bad value.
    """
    return load_config(EnsembleConfig, path, overrides)
