"""The supernet registry: which weight-sharing network trains the architectures of a space.

A supernet entry has a ``Config`` (the network's size), the ``space`` whose architectures
it runs, and is called as
``entry(config, space=space, num_classes=n, in_channels=c) -> nn.Module``. The module
returned computes ``forward(x, arch)`` (the logits of the sub-network ``arch``, running
only its operations), ``path_modules(arch)`` (the operation modules that pass runs) and
``standalone(arch)`` (the standalone network of ``arch`` with the shared weights).
:class:`~evonas._registry.Component` builds an entry from a config class and a function.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from torch import nn

from evonas._registry import Component, Registry, entry_for_space
from evonas.config import Checked, ComponentConfig, Range
from evonas.models import MAX_CELLS_PER_STAGE, MAX_CHANNELS
from evonas.spaces import SearchSpace

SUPERNETS: Registry[Any] = Registry("supernet")
"""Supernet name -> entry with ``Config`` and ``space``; see the module docstring."""


@dataclass(frozen=True)
class NB201SupernetConfig(Checked):
    """Size of the NAS-Bench-201 supernet (the ``supernet.params`` section).

    Attributes:
        channels: ``C``, channels of the first stage (16 in the benchmark).
        cells_per_stage: ``N``, cells per stage (5 in the benchmark; the default 1 keeps
            a supernet quick to train on CPUs).
    """

    channels: Annotated[int, Range(1, MAX_CHANNELS)] = 16
    cells_per_stage: Annotated[int, Range(1, MAX_CELLS_PER_STAGE)] = 1


def _nb201_supernet(config: NB201SupernetConfig, *, space: SearchSpace, num_classes: int, in_channels: int) -> nn.Module:
    from evonas.supernet._network import SuperNet

    return SuperNet(config.channels, config.cells_per_stage, num_classes, in_channels)


SUPERNETS.register("nb201")(Component(NB201SupernetConfig, _nb201_supernet, space="nb201"))


def check_supernet(supernet: ComponentConfig, space: SearchSpace) -> None:
    """Raise unless the supernet ``supernet.name`` serves ``space``.

    Raises:
        UnknownChoiceError: The name is not registered.
        CapabilityError: The supernet serves another space.
    """
    entry_for_space("supernet", supernet.name, space)


def build_supernet(supernet: ComponentConfig, space: SearchSpace, num_classes: int, in_channels: int) -> nn.Module:
    """The untrained supernet of a config's ``supernet: {name, params}`` section (PyTorch's
    default initialisation; seed it with :func:`evonas.training.seeded_model`).

    Args:
        supernet: The registered supernet and its size.
        space: The search space its architectures come from.
        num_classes: Classifier outputs.
        in_channels: Image channels.

    Raises:
        CapabilityError: The supernet serves another space.
    """
    entry = entry_for_space("supernet", supernet.name, space)
    module: nn.Module = entry(supernet.typed("supernet"), space=space, num_classes=num_classes, in_channels=in_channels)
    return module
