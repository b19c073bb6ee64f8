"""Networks built from genotypes: the NAS-Bench-201 network and its operations."""

from __future__ import annotations

from evonas.models._nb201_net import NB201Cell, NB201Network, count_parameters
from evonas.models._ops import OPS, AvgPool, FactorizedReduce, ReLUConvBN, ResNetBasicBlock, Zero

__all__ = [
    "OPS",
    "AvgPool",
    "FactorizedReduce",
    "NB201Cell",
    "NB201Network",
    "ReLUConvBN",
    "ResNetBasicBlock",
    "Zero",
    "count_parameters",
]
