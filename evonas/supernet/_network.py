"""The single-path weight-sharing supernet of the NAS-Bench-201 space (the ``nb201``
entry of :data:`evonas.supernet.SUPERNETS`).

Guo et al., "Single Path One-Shot Neural Architecture Search with Uniform Sampling",
ECCV 2020, on the network of Dong & Yang, "NAS-Bench-201", ICLR 2020. Every cell edge
holds one module per candidate operation; a forward pass for an architecture runs only
that architecture's operations (no zero-masking of the others), so only they receive
gradients and only their batch norms update running statistics. The stem, the stride-2
residual blocks between stages and the classifier head are shared by all architectures.

Module names mirror :class:`evonas.models.NB201Network` with one extra level (the op
index) under every edge, so :meth:`SuperNet.standalone` can copy one architecture's
weights into the standalone network, which then computes exactly the same function.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import cast

import torch
from torch import nn

from evonas.config import check_int
from evonas.models import (
    MAX_CELLS_PER_STAGE,
    MAX_CHANNELS,
    OPS,
    NB201Network,
    ResNetBasicBlock,
    Zero,
    cell_plan,
)
from evonas.spaces import EDGES, Arch, validate_nb201
from evonas.spaces import OPS as OP_NAMES

_OUTPUT_NODE = max(j for _, j in EDGES)
_EDGE_KEY = re.compile(r"^(cells\.\d+\.edges\.edge\d\d)\.(.*)$")


class SuperCell(nn.Module):
    """A NAS-Bench-201 cell holding every candidate operation on every edge.

    Args:
        C: Channels of the input, the nodes and the output.

    Shapes:
        ``(B, C, H, W) -> (B, C, H, W)``.
    """

    def __init__(self, C: int) -> None:
        super().__init__()
        self.edges = nn.ModuleDict(
            {f"edge{i}{j}": nn.ModuleList(OPS[name](C, C, 1) for name in OP_NAMES) for i, j in EDGES}
        )
        self.zero = Zero(C, C, 1)

    def forward(self, x: torch.Tensor, arch: Arch) -> torch.Tensor:
        nodes = {0: x}
        for j, inputs in cell_plan(arch):
            out: torch.Tensor | None = None
            for i, key, op in inputs:
                term = self._op(key, op)(nodes[i])
                out = term if out is None else out + term
            nodes[j] = self.zero(x) if out is None else out
        return nodes[_OUTPUT_NODE]

    def _op(self, key: str, op: int) -> nn.Module:
        """The module of operation ``op`` on edge ``key`` (e.g. ``"edge01"``)."""
        ops = cast(nn.ModuleList, self.edges[key])
        return ops[op]


class SuperNet(nn.Module):
    """Weight-sharing supernet over all 15,625 NAS-Bench-201 cells.

    The layout is :class:`evonas.models.NB201Network`'s (stem, three stages of ``N``
    cells with ``C``, ``2C``, ``4C`` channels joined by stride-2 residual blocks, head);
    all cells of the network share the sampled genotype, as in the benchmark.

    Args:
        C: Channels of the first stage (16 in NAS-Bench-201).
        N: Cells per stage (5 in NAS-Bench-201).
        num_classes: Outputs of the classifier.
        in_channels: Channels of the input images.

    Raises:
        ConfigError: A size is not a positive integer, or C or N is beyond its bound
            (:data:`~evonas.models.MAX_CHANNELS`, :data:`~evonas.models.MAX_CELLS_PER_STAGE`).

    Shapes:
        ``forward(x, arch)``: ``(B, in_channels, H, W) -> (B, num_classes)``.
    """

    def __init__(self, C: int = 16, N: int = 1, num_classes: int = 10, in_channels: int = 3) -> None:
        super().__init__()
        check_int(C, "C", 1, MAX_CHANNELS, owner="SuperNet")
        check_int(N, "N", 1, MAX_CELLS_PER_STAGE, owner="SuperNet")
        for name, value in (("num_classes", num_classes), ("in_channels", in_channels)):
            check_int(value, name, 1, owner="SuperNet")
        self.C, self.N, self.num_classes, self.in_channels = C, N, num_classes, in_channels
        self.stem = nn.Sequential(nn.Conv2d(in_channels, C, 3, padding=1, bias=False), nn.BatchNorm2d(C))
        layers: list[nn.Module] = []
        c_prev = C
        for stage, width in enumerate((C, 2 * C, 4 * C)):
            if stage > 0:
                layers.append(ResNetBasicBlock(c_prev, width, stride=2))
            layers.extend(SuperCell(width) for _ in range(N))
            c_prev = width
        self.cells = nn.ModuleList(layers)
        self.lastact = nn.Sequential(nn.BatchNorm2d(c_prev), nn.ReLU(inplace=False))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, num_classes)

    def forward(self, x: torch.Tensor, arch: Sequence[int]) -> torch.Tensor:
        """Class logits of the sub-network ``arch`` (only its operations run).

        Shapes:
            ``(B, in_channels, H, W) -> (B, num_classes)``.
        """
        genotype = validate_nb201(arch)
        out = self.stem(x)
        for layer in self.cells:
            out = layer(out, genotype) if isinstance(layer, SuperCell) else layer(out)
        out = torch.flatten(self.global_pooling(self.lastact(out)), 1)
        return self.classifier(out)

    def path_modules(self, arch: Sequence[int]) -> list[nn.Module]:
        """The operation modules that ``forward(x, arch)`` runs (shared parts excluded)."""
        genotype = validate_nb201(arch)
        out: list[nn.Module] = []
        for layer in self.cells:
            if isinstance(layer, SuperCell):
                for _, inputs in cell_plan(genotype):
                    out.extend(layer._op(key, op) for _, key, op in inputs)
        return out

    def standalone(self, arch: Sequence[int]) -> NB201Network:
        """The standalone :class:`NB201Network` of ``arch`` with this supernet's weights.

        Parameters and batch-norm buffers (running statistics) are copied, so in eval mode
        the standalone network's outputs equal ``self(x, arch)``. Edges of ``arch`` that
        cannot reach the cell output get their (unused) weights copied as well.
        """
        genotype = validate_nb201(arch)
        net = NB201Network(genotype, C=self.C, N=self.N, num_classes=self.num_classes, in_channels=self.in_channels)
        source = self.state_dict()
        mapped = {}
        for key in net.state_dict():
            m = _EDGE_KEY.match(key)
            if m is None:
                mapped[key] = source[key]
            else:
                edge = m.group(1).rsplit(".", 1)[-1]
                op = genotype[[f"edge{i}{j}" for i, j in EDGES].index(edge)]
                mapped[key] = source[f"{m.group(1)}.{op}.{m.group(2)}"]
        net.load_state_dict(mapped)
        net.to(next(self.parameters()).device)
        net.train(self.training)
        return net


def batch_norms(module: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """Every batch-norm layer of ``module`` that tracks running statistics."""
    return [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]


def bn_buffers(module: nn.Module) -> dict[str, torch.Tensor]:
    """Copies of the running statistics (means, variances, counters) of ``module``."""
    return {k: v.detach().clone() for k, v in module.named_buffers() if k.rsplit(".", 1)[-1] in _BN_BUFFERS}


_BN_BUFFERS = ("running_mean", "running_var", "num_batches_tracked")


def restore_buffers(module: nn.Module, saved: dict[str, torch.Tensor]) -> None:
    """Put back buffers saved by :func:`bn_buffers`."""
    buffers = dict(module.named_buffers())
    with torch.no_grad():
        for k, v in saved.items():
            buffers[k].copy_(v)


@contextmanager
def cumulative_bn(module: nn.Module) -> Iterator[None]:
    """Reset every batch norm and let it average statistics over all following batches.

    With ``momentum=None`` PyTorch keeps a cumulative moving average, so after ``k``
    forward passes in train mode the running statistics are the plain mean over those
    ``k`` batches: BatchNorm re-estimation for one sub-network of a supernet (Guo et al.,
    SPOS, ECCV 2020, Sec. 3.4). The momenta are restored on exit.
    """
    norms = batch_norms(module)
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    try:
        yield
    finally:
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
