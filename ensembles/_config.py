"""The config of an ensemble build: which candidates, how to train them, how to prune.

Loaded from YAML with :func:`load_ensemble_config` (typed frozen dataclasses, unknown keys
rejected, ``key.sub=value`` overrides checked the same way)::

    seed: 0
    candidates:
      archs: ["|nor_conv_3x3~0|+|...|", ...]     # or:
      # search_run: runs/nb201-rea-20250101-120000
      # top: 10
    dataset: {name: fashion-mnist, root: /usr/share/datasets/fashion-mnist, max_train: 8000}
    train: {epochs: 4, batch_size: 128, lr: 0.05}
    channels: 8
    cells_per_stage: 1
    executor: {name: ray, params: {num_cpus: 2, max_in_flight: 2}}
    pruners:
      - {name: pie, params: {max_fraction: 0.5, lam: 0.5}}
      - {name: pap, params: {max_fraction: 0.5}}
    diversity: [disagreement, q_statistic]
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ensembles._diversity import DIVERSITY
from ensembles._metrics import DEFAULT_ECE_BINS
from ensembles._pruners import PRUNERS, pruner_parameters
from evonas.config import from_dict, load_config, to_dict
from evonas.data import DatasetConfig
from evonas.errors import ConfigError
from evonas.executors import EXECUTORS
from evonas.search import ComponentConfig
from evonas.training import TrainConfig

_LABEL_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-=+()")


@dataclass(frozen=True)
class CandidatesConfig:
    """Where the candidate architectures come from: a list, or the best of a search run.

    Attributes:
        archs: NAS-Bench-201 cell strings, trained in this order (duplicates rejected).
        search_run: A search run directory (``evonas search``); its scored candidates are
            ranked by the first objective, best first, repeated architectures dropped.
        top: How many of the search run's best distinct architectures to train
            (default 10); only with ``search_run``.

    Raises:
        ConfigError: Neither or both sources, an empty list, or a bad ``top``.
    """

    archs: tuple[str, ...] = ()
    search_run: str | None = None
    top: int | None = None

    def __post_init__(self) -> None:
        if self.search_run is not None:
            if self.archs:
                raise ConfigError(
                    "candidates takes either 'archs' or 'search_run', not both; "
                    f"got {len(self.archs)} archs and search_run={self.search_run!r}"
                )
            if not isinstance(self.search_run, str) or not self.search_run.strip():
                raise ConfigError(f"candidates.search_run must be a run directory path; got {self.search_run!r}")
            if self.top is not None and (isinstance(self.top, bool) or not isinstance(self.top, int) or self.top < 1):
                raise ConfigError(f"candidates.top must be a positive integer; got {self.top!r}")
            return
        if self.top is not None:
            raise ConfigError(f"candidates.top={self.top!r} needs candidates.search_run; with 'archs' drop it")
        if not self.archs:
            raise ConfigError(
                "the candidate list is empty: give candidates.archs (NAS-Bench-201 cell strings) "
                "or candidates.search_run (a search run directory)"
            )

    @property
    def num_top(self) -> int:
        """``top`` with its default (10)."""
        return 10 if self.top is None else self.top


@dataclass(frozen=True)
class PrunerSpec:
    """One pruner to run, with its parameters.

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
            raise ConfigError(
                f"pruner label {self.label!r} is invalid; use letters, digits and _ . - = + ( )"
            )

    @property
    def row(self) -> str:
        """The label of this pruner's row."""
        return self.label if self.label is not None else self.name


def _default_pruners() -> tuple[PrunerSpec, ...]:
    return tuple(PrunerSpec(name) for name in ("prs", "pap", "pie", "top_k", "caruana"))


@dataclass(frozen=True)
class EnsembleConfig:
    """A whole ensemble build: train candidates from scratch, prune, evaluate.

    Attributes:
        candidates: The architectures (:class:`CandidatesConfig`).
        dataset: Data and splits (:class:`~evonas.data.DatasetConfig`); pruning uses the
            validation split, evaluation the test split, so ``val_fraction`` must be > 0.
        train: The training recipe of every member (:class:`~evonas.training.TrainConfig`).
        channels: ``C`` of the NAS-Bench-201 network (16 in the benchmark).
        cells_per_stage: ``N`` of the network (5 in the benchmark).
        executor: ``{name: serial|ray, params: {...}}``: where members train (default
            serial, in this process). With Ray, ``gpus_per_eval`` reserves GPUs per member
            and ``train.device: auto`` then trains on them.
        pruners: The pruners to compare (default: every registered one with its defaults).
        diversity: Pairwise diversity measures to report (default: all registered).
        ece_bins: Bins of the expected calibration error.
        seed: Seed of the members' training seeds and of the random pruner.
        run_dir: Where the run directory goes (default ``runs/<config name>-<time>``).

    Raises:
        ConfigError / UnknownChoiceError: Any invalid value; the message quotes it.
    """

    candidates: CandidatesConfig
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    channels: int = 16
    cells_per_stage: int = 5
    executor: ComponentConfig = field(default_factory=lambda: ComponentConfig("serial"))
    pruners: tuple[PrunerSpec, ...] = field(default_factory=_default_pruners)
    diversity: tuple[str, ...] = field(default_factory=lambda: tuple(DIVERSITY.names()))
    ece_bins: int = DEFAULT_ECE_BINS
    seed: int = 0
    run_dir: str | None = None

    def __post_init__(self) -> None:
        for key in ("channels", "cells_per_stage", "ece_bins"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{key} must be a positive integer; got {value!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"seed must be a non-negative integer; got {self.seed!r}")
        if self.dataset.val_fraction <= 0:
            raise ConfigError(
                f"dataset.val_fraction must be > 0: pruners choose members on validation data; "
                f"got {self.dataset.val_fraction!r}"
            )
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
        EXECUTORS.get(self.executor.name)


def resolve_ensemble_config(config: EnsembleConfig) -> tuple[EnsembleConfig, Any]:
    """Check the executor's parameters and fill in their defaults.

    Returns:
        The config with complete ``executor.params`` and the typed executor config.

    Raises:
        ConfigError / UnknownChoiceError: An unknown executor, key or value.
    """
    component = EXECUTORS.get(config.executor.name)
    typed = from_dict(component.config_cls, config.executor.params, "executor.params")
    return replace(config, executor=replace(config.executor, params=to_dict(typed))), typed


def load_ensemble_config(
    path: str | os.PathLike[str] | None, overrides: Sequence[str] = ()
) -> EnsembleConfig:
    """Load an :class:`EnsembleConfig` from YAML plus ``key.sub=value`` overrides, all checked.

    Raises:
        ConfigError: A missing or malformed file, an unknown key or a bad value.
    """
    return load_config(EnsembleConfig, path, overrides)
