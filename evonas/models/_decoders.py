"""Network decoders: how a genotype of a space becomes an ``nn.Module``.

Every consumer of networks (the training evaluator, ensemble members, zero-cost proxies)
builds them through :func:`build_network` from a config's ``network: {name, params}``
section, so a plugin space with a registered decoder trains, ensembles and scores like
NAS-Bench-201. A decoder entry has a ``Config`` (the network's size parameters), the
``space`` it decodes, and is called as
``entry(config, space=space, arch=arch, num_classes=n, in_channels=c) -> nn.Module``;
:class:`~evonas._registry.Component` builds one from a config class and a function.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from torch import nn

from evonas._registry import Component, Registry, entry_for_space
from evonas.config import Checked, ComponentConfig, Range
from evonas.models._nb201_net import MAX_CELLS_PER_STAGE, MAX_CHANNELS
from evonas.spaces import Arch, SearchSpace

DECODERS: Registry[Any] = Registry("decoder")
"""Decoder name -> entry with ``Config`` and ``space``; see the module docstring."""


@dataclass(frozen=True)
class NB201NetworkConfig(Checked):
    """Size of the NAS-Bench-201 network (Dong & Yang, ICLR 2020).

    Attributes:
        channels: ``C``, channels of the first stage (16 in the benchmark).
        cells_per_stage: ``N``, cells per stage (5 in the benchmark).
    """

    channels: Annotated[int, Range(1, MAX_CHANNELS)] = 16
    cells_per_stage: Annotated[int, Range(1, MAX_CELLS_PER_STAGE)] = 5


def _nb201_network(
    config: NB201NetworkConfig, *, space: SearchSpace, arch: Arch, num_classes: int, in_channels: int
) -> nn.Module:
    from evonas.models._nb201_net import NB201Network

    return NB201Network(
        space.validate(arch), C=config.channels, N=config.cells_per_stage, num_classes=num_classes, in_channels=in_channels
    )


DECODERS.register("nb201")(Component(NB201NetworkConfig, _nb201_network, space="nb201"))


def check_decoder(network: ComponentConfig, space: SearchSpace) -> None:
    """Raise unless the decoder ``network.name`` builds networks of ``space``."""
    entry_for_space("decoder", network.name, space)


def build_network(network: ComponentConfig, space: SearchSpace, arch: Arch, num_classes: int, in_channels: int) -> nn.Module:
    """The untrained network of ``arch`` (PyTorch's default initialisation; seed it with
    :func:`evonas.training.seeded_model`).

    Args:
        network: The ``network: {name, params}`` section (a registered decoder).
        space: The search space of ``arch``.
        arch: The genotype.
        num_classes: Classifier outputs.
        in_channels: Image channels.

    Raises:
        CapabilityError: The decoder serves another space.
        ArchError: ``arch`` is not a genotype of ``space``.
    """
    entry = entry_for_space("decoder", network.name, space)
    module: nn.Module = entry(network.typed("decoder"), space=space, arch=space.validate(arch),
                              num_classes=num_classes, in_channels=in_channels)
    return module
