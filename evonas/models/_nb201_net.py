"""The NAS-Bench-201 network for one cell genotype.

Dong & Yang, "NAS-Bench-201: Extending the Scope of Reproducible Neural Architecture
Search", ICLR 2020 (their ``TinyNetwork`` built from ``InferCell``s): a 3x3 convolution
stem, three stages of ``N`` identical cells with ``C``, ``2C`` and ``4C`` channels joined
by stride-2 residual blocks, then batch norm, ReLU, global average pooling and a linear
classifier. With ``C=16, N=5`` and 10 classes :func:`count_parameters` equals the
benchmark's ``params_M`` column (times 10^6) for every cell.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import torch
from torch import nn

from evonas.config import check_int
from evonas.models._ops import OPS, ResNetBasicBlock, Zero
from evonas.spaces import EDGES, Arch, format_nb201, validate_nb201
from evonas.spaces import OPS as OP_NAMES

_OUTPUT_NODE = max(j for _, j in EDGES)
_NONE = OP_NAMES.index("none")

Plan = tuple[tuple[int, tuple[tuple[int, str, int], ...]], ...]

MAX_CHANNELS = 256
"""Largest ``C`` (channels of the first stage) of NAS-Bench-201 networks and supernets.

The benchmark uses 16; the last stage has ``4 C`` channels, so ``C = 256`` with
:data:`MAX_CELLS_PER_STAGE` cells already means billions of weights. The bound refuses
sizes that would exhaust memory before anything is trained."""
MAX_CELLS_PER_STAGE = 32
"""Largest ``N`` (cells per stage) of NAS-Bench-201 networks and supernets (the benchmark uses 5)."""


@lru_cache(maxsize=None)
def cell_plan(arch: Arch) -> Plan:
    """The computation of a cell for ``arch``, in node order.

    Each entry is ``(node, ((source, edge_key, op), ...))``: ``none`` edges are left out,
    and nodes that cannot reach the output are not computed (they cannot change it).
    Both :class:`NB201Cell` and the supernet's cells follow this plan.
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


class NB201Cell(nn.Module):
    """One NAS-Bench-201 cell: a 4-node DAG whose 6 edges carry the genotype's operations.

    Node 0 is the cell input; node ``j`` is the sum of its incoming edges' operations
    applied to their source nodes; node 3 is the output. Edges whose operation is
    ``none`` hold no module and are not computed (a node without other inputs is zero),
    and edges that cannot reach the output are kept, so that parameter counts match the
    benchmark, but skipped in ``forward`` because they cannot change the output.

    Args:
        arch: The genotype: 6 op indices (see :class:`evonas.spaces.NB201Space`) or the
            official NAS-Bench-201 string.
        C_in: Channels of the cell input (edges leaving node 0 map them to ``C_out``).
        C_out: Channels of the other nodes and of the output.
        stride: Stride of the edges leaving node 0.
        affine: Learnable scale and shift in the operations' batch norms.
        track_running_stats: Batch norms keep running statistics for evaluation.

    Shapes:
        ``(N, C_in, H, W) -> (N, C_out, ceil(H / stride), ceil(W / stride))``.
    """

    def __init__(
        self,
        arch: Sequence[int] | str,
        C_in: int,
        C_out: int,
        stride: int = 1,
        affine: bool = True,
        track_running_stats: bool = True,
    ) -> None:
        super().__init__()
        self.arch = validate_nb201(arch)
        self.edges = nn.ModuleDict()
        for (i, j), op in zip(EDGES, self.arch):
            name = OP_NAMES[op]
            if name == "none":
                continue
            c_in, s = (C_in, stride) if i == 0 else (C_out, 1)
            self.edges[f"edge{i}{j}"] = OPS[name](c_in, C_out, s, affine, track_running_stats)
        self._plan = cell_plan(self.arch)
        self.zero = Zero(C_in, C_out, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = {0: x}
        for j, inputs in self._plan:
            out: torch.Tensor | None = None
            for i, key, _ in inputs:
                term = self.edges[key](nodes[i])
                out = term if out is None else out + term
            nodes[j] = self.zero(x) if out is None else out
        return nodes[_OUTPUT_NODE]

    def extra_repr(self) -> str:
        return f"arch={format_nb201(self.arch)!r}"


class NB201Network(nn.Module):
    """The NAS-Bench-201 network (``TinyNetwork``) of one cell genotype.

    Stem ``Conv3x3(in_channels -> C) + BN``; stages of ``N`` cells with ``C``, ``2C``,
    ``4C`` channels separated by stride-2 :class:`ResNetBasicBlock`\\ s; ``BN + ReLU``,
    global average pooling, ``Linear(4C -> num_classes)``. Weights keep PyTorch's default
    initialisation, as in the benchmark; build the model under
    :func:`evonas.training.seeded_model` for a seeded initialisation.

    Args:
        arch: The cell genotype (6 op indices) or its NAS-Bench-201 string.
        C: Channels of the first stage (16 in the benchmark).
        N: Cells per stage (5 in the benchmark).
        num_classes: Outputs of the classifier.
        in_channels: Channels of the input images (3 for RGB, 1 for greyscale).

    Raises:
        ArchError: ``arch`` is not a valid nb201 genotype.
        ConfigError: A size is not a positive integer, or C or N is beyond its bound
            (:data:`~evonas.models.MAX_CHANNELS`, :data:`~evonas.models.MAX_CELLS_PER_STAGE`).

    Shapes:
        ``(B, in_channels, H, W) -> (B, num_classes)``; images of any size of at least
        1x1 (8x8 digits, 28x28 MNIST, 32x32 CIFAR); the stages see ``H``, ``ceil(H/2)``,
        ``ceil(H/4)``.
    """

    def __init__(
        self,
        arch: Sequence[int] | str,
        C: int = 16,
        N: int = 5,
        num_classes: int = 10,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        check_int(C, "C", 1, MAX_CHANNELS, owner="NB201Network")
        check_int(N, "N", 1, MAX_CELLS_PER_STAGE, owner="NB201Network")
        for name, value in (("num_classes", num_classes), ("in_channels", in_channels)):
            check_int(value, name, 1, owner="NB201Network")
        self.arch = validate_nb201(arch)
        self.C, self.N, self.num_classes, self.in_channels = C, N, num_classes, in_channels
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, C, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(C),
        )
        layers: list[nn.Module] = []
        c_prev = C
        for stage, width in enumerate((C, 2 * C, 4 * C)):
            if stage > 0:
                layers.append(ResNetBasicBlock(c_prev, width, stride=2))
            layers.extend(NB201Cell(self.arch, width, width) for _ in range(N))
            c_prev = width
        self.cells = nn.Sequential(*layers)
        self.lastact = nn.Sequential(nn.BatchNorm2d(c_prev), nn.ReLU(inplace=False))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, num_classes)
        self.num_features = c_prev

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features before the classifier.

        Shapes:
            ``(B, in_channels, H, W) -> (B, 4 C)``.
        """
        out = self.lastact(self.cells(self.stem(x)))
        return torch.flatten(self.global_pooling(out), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits.

        Shapes:
            ``(B, in_channels, H, W) -> (B, num_classes)``.
        """
        return self.classifier(self.forward_features(x))

    def extra_repr(self) -> str:
        return f"arch={format_nb201(self.arch)!r}, C={self.C}, N={self.N}"


def count_parameters(model: nn.Module) -> int:
    """Number of parameters of ``model``, each shared tensor counted once.

    This is what NAS-Bench-201 reports as ``params_M`` (divided by 10^6): every
    parameter, including batch-norm scales and shifts and the classifier's weight and bias.
    """
    return sum(p.numel() for p in model.parameters())
