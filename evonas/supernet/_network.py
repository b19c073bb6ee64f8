"""The single-path weight-sharing supernet of the NAS-Bench-201 space.

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
from functools import lru_cache

import torch
from torch import nn

from evonas.errors import ConfigError
from evonas.models import OPS, NB201Network, ResNetBasicBlock, Zero
from evonas.spaces import EDGES, NB201Space
from evonas.spaces import OPS as OP_NAMES
from evonas.spaces import Arch

_SPACE = NB201Space()
_OUTPUT_NODE = max(j for _, j in EDGES)
_NONE = OP_NAMES.index("none")
_EDGE_KEY = re.compile(r"^(cells\.\d+\.edges\.edge\d\d)\.(.*)$")

Plan = tuple[tuple[int, tuple[tuple[int, str, int], ...]], ...]


@lru_cache(maxsize=None)
def cell_plan(arch: Arch) -> Plan:
    """The computation of a cell for ``arch``, in node order, as :class:`NB201Cell` does it.

    Each entry is ``(node, ((source, edge_key, op), ...))``: ``none`` edges are left out,
    and nodes that cannot reach the output are not computed.
    """
    inputs: dict[int, list[tuple[int, str, int]]] = {j: [] for j in range(1, _OUTPUT_NODE + 1)}
    for (i, j), op in zip(EDGES, arch):
        if op != _NONE:
            inputs[j].append((i, f"edge{i}{j}", op))
    needed = {_OUTPUT_NODE}
    for j in range(_OUTPUT_NODE, 0, -1):
        if j in needed:
            needed.update(i for i, _, _ in inputs[j])
    return tuple((j, tuple(inputs[j])) for j in range(1, _OUTPUT_NODE + 1) if j in needed)


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
                term = self.edges[key][op](nodes[i])
                out = term if out is None else out + term
            nodes[j] = self.zero(x) if out is None else out
        return nodes[_OUTPUT_NODE]


class SuperNet(nn.Module):
    """Weight-sharing supernet over all 15,625 NAS-Bench-201 cells.

    The layout is :class:`evonas.models.NB201Network`'s (stem, three stages of ``N``
    cells with ``C``, ``2C``, ``4C`` channels joined by stride-2 residual blocks, head);
    all cells of the network share the sampled genotype, as in the benchmark.

    Args:
        C: Channels of the first stage (16 in NAS-Bench-201; 8-16 trains quickly on CPUs).
        N: Cells per stage (5 in NAS-Bench-201; 1-2 trains quickly on CPUs).
        num_classes: Outputs of the classifier.
        in_channels: Channels of the input images.

    Raises:
        ConfigError: A size is not a positive integer.

    Shapes:
        ``forward(x, arch)``: ``(B, in_channels, H, W) -> (B, num_classes)``.
    """

    def __init__(self, C: int = 16, N: int = 1, num_classes: int = 10, in_channels: int = 3) -> None:
        super().__init__()
        for name, value in (("C", C), ("N", N), ("num_classes", num_classes), ("in_channels", in_channels)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"SuperNet {name} must be a positive integer; got {value!r}")
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
        genotype = _SPACE.validate(arch)
        out = self.stem(x)
        for layer in self.cells:
            out = layer(out, genotype) if isinstance(layer, SuperCell) else layer(out)
        out = torch.flatten(self.global_pooling(self.lastact(out)), 1)
        return self.classifier(out)

    def path_modules(self, arch: Sequence[int]) -> list[nn.Module]:
        """The operation modules that ``forward(x, arch)`` runs (shared parts excluded)."""
        genotype = _SPACE.validate(arch)
        out = []
        for layer in self.cells:
            if isinstance(layer, SuperCell):
                for _, inputs in cell_plan(genotype):
                    out.extend(layer.edges[key][op] for _, key, op in inputs)
        return out

    def standalone(self, arch: Sequence[int]) -> NB201Network:
        """The standalone :class:`NB201Network` of ``arch`` with this supernet's weights.

        Parameters and batch-norm buffers (running statistics) are copied, so in eval mode
        the standalone network's outputs equal ``self(x, arch)``. Edges of ``arch`` that
        cannot reach the cell output get their (unused) weights copied as well.
        """
        genotype = _SPACE.validate(arch)
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
