"""The config of a differentiable search: method, selection, network, optimisers, data split."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

import torch
from torch import nn

from evonas._registry import Registry
from evonas.config import (
    MAX_BATCH_SIZE,
    MAX_COUNT,
    MAX_SEED,
    Checked,
    ComponentConfig,
    Range,
    check_choice,
    from_dict,
    to_dict,
)
from evonas.dnas._methods import DNAS_METHODS
from evonas.dnas._select import DNAS_SELECTIONS
from evonas.errors import ConfigError
from evonas.supernet import NB201SupernetConfig
from evonas.training import ComputeConfig, OptimConfig


@dataclass(frozen=True)
class ArchOptimConfig(Checked):
    """Adam on the architecture parameters ``alpha`` (Kingma & Ba, ICLR 2015), with the
    settings of DARTS (Liu et al., ICLR 2019), which MiLeNAS and DARTS-PT keep.

    Attributes:
        lr: Learning rate ``eta_a`` (constant).
        beta1: Adam's first-moment decay.
        beta2: Adam's second-moment decay.
        weight_decay: L2 penalty on ``alpha``.
    """

    lr: Annotated[float, Range(0, low_open=True)] = 3e-4
    beta1: Annotated[float, Range(0, 1, high_open=True)] = 0.5
    beta2: Annotated[float, Range(0, 1, high_open=True)] = 0.999
    weight_decay: Annotated[float, Range(0)] = 1e-3

    def adam(self, parameters: list[nn.Parameter]) -> torch.optim.Adam:
        """The Adam optimiser of these settings over ``parameters``."""
        return torch.optim.Adam(parameters, lr=self.lr, betas=(self.beta1, self.beta2), weight_decay=self.weight_decay)


def _darts_weight_optim() -> OptimConfig:
    # DARTS' weight optimiser: SGD, momentum 0.9 (not Nesterov), cosine 0.025 -> 0.001,
    # weight decay 3e-4, gradient norm clipped to 5
    return OptimConfig(lr=0.025, min_lr=0.001, momentum=0.9, nesterov=False, weight_decay=3e-4, grad_clip=5.0)


@dataclass(frozen=True)
class DNASConfig(Checked):
    """A differentiable architecture search on NAS-Bench-201.

    Attributes:
        method: The search method, ``{name, params}``: ``darts1`` (default), ``darts2``,
            ``milenas`` or ``nadarts`` (see :data:`~evonas.dnas.DNAS_METHODS`).
        selection: How the cell is derived, ``{name, params}``: ``magnitude`` (default) or
            ``perturbation`` (see :data:`~evonas.dnas.DNAS_SELECTIONS`).
        network: Size of the mixed supernet (``channels`` 16, ``cells_per_stage`` 1 by
            default; NAS-Bench-201's DARTS baseline searches with 5).
        affine: Train the batch-norm scales and shifts inside the cell operations (DARTS
            searches without them: false).
        steps: Search steps, each one architecture update and one weight update.
        batch_size: Images per batch of each half.
        train_fraction: Share of the training images that train the weights; the rest
            train ``alpha`` (0.5: DARTS' 50/50 split), in ``(0, 1)``.
        optim: The weights' SGD (:class:`~evonas.training.OptimConfig`): DARTS' momentum
            0.9 without Nesterov, cosine decay from 0.025 to 0.001 over ``steps``, weight
            decay 3e-4, clipping at 5 when the section is left out.
        arch_optim: Adam on ``alpha`` (:class:`ArchOptimConfig`).
        compute: Device, mixed precision (bfloat16 autocast), memory format and threads.
        seed: Seed of the initialisation, the split, the data order, augmentation and
            every random draw of the method and the selection.

    Raises:
        ConfigError: A value is out of range, or a method or selection name or parameter
            is unknown; the message quotes it and says what is valid.
    """

    method: ComponentConfig = field(default_factory=lambda: ComponentConfig("darts1"))
    selection: ComponentConfig = field(default_factory=lambda: ComponentConfig("magnitude"))
    network: NB201SupernetConfig = field(default_factory=NB201SupernetConfig)
    affine: bool = False
    steps: Annotated[int, Range(1, MAX_COUNT)] = 1000
    batch_size: Annotated[int, Range(1, MAX_BATCH_SIZE)] = 64
    train_fraction: Annotated[float, Range(0, 1, low_open=True, high_open=True)] = 0.5
    optim: OptimConfig = field(default_factory=_darts_weight_optim)
    arch_optim: ArchOptimConfig = field(default_factory=ArchOptimConfig)
    compute: ComputeConfig = field(default_factory=ComputeConfig)
    seed: Annotated[int, Range(0, MAX_SEED)] = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "method", _component(self.method, "method", DNAS_METHODS))
        object.__setattr__(self, "selection", _component(self.selection, "selection", DNAS_SELECTIONS))

    def method_params(self) -> Any:
        """The method's typed parameters (an instance of its ``Config``)."""
        return from_dict(DNAS_METHODS.get(self.method.name).Config, self.method.params, "method.params")

    def selection_params(self) -> Any:
        """The selection's typed parameters (an instance of its ``Config``)."""
        return from_dict(DNAS_SELECTIONS.get(self.selection.name).Config, self.selection.params, "selection.params")


def _component(section: Any, where: str, registry: Registry[Any]) -> ComponentConfig:
    """``section`` checked (a name of ``registry``, params against the entry's ``Config``)
    with every default parameter filled in."""
    if isinstance(section, str):
        section = ComponentConfig(section)
    if not isinstance(section, ComponentConfig):
        raise ConfigError(f"invalid value {section!r} for {where!r}; expected a {{name, params}} section")
    check_choice(section.name, f"{where}.name", registry.names())
    typed = from_dict(registry.get(section.name).Config, section.params, f"{where}.params")
    return ComponentConfig(section.name, to_dict(typed))
