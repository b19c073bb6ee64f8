"""Networks built from genotypes: the decoder registry, the NAS-Bench-201 network and its operations."""

from __future__ import annotations

from evonas.models._decoders import DECODERS, NB201NetworkConfig, build_network, check_decoder
from evonas.models._nb201_net import (
    MAX_CELLS_PER_STAGE,
    MAX_CHANNELS,
    NB201Cell,
    NB201Network,
    cell_plan,
    count_parameters,
)
from evonas.models._ops import OPS, AvgPool, FactorizedReduce, ReLUConvBN, ResNetBasicBlock, Zero

__all__ = [
    "DECODERS",
    "MAX_CELLS_PER_STAGE",
    "MAX_CHANNELS",
    "OPS",
    "AvgPool",
    "FactorizedReduce",
    "NB201Cell",
    "NB201Network",
    "NB201NetworkConfig",
    "ReLUConvBN",
    "ResNetBasicBlock",
    "Zero",
    "build_network",
    "cell_plan",
    "check_decoder",
    "count_parameters",
]
