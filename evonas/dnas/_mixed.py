"""The mixed-operation supernet of differentiable NAS on NAS-Bench-201.

Liu, Simonyan & Yang, "DARTS: Differentiable Architecture Search", ICLR 2019, on the
network of Dong & Yang, "NAS-Bench-201", ICLR 2020: every cell edge ``(i, j)`` outputs
the mixture ``sum_o p[e, o] * o(x_i)`` of the five candidate operations, with
``p[e] = softmax(alpha[e])``; all cells of the network share ``alpha``.

The network is :class:`evonas.supernet.SuperNet` itself (held as :attr:`MixedSuperNet.net`):
the same operation modules, stem, stages, residual reduction blocks and classifier as
the single-path supernet and, through :meth:`~evonas.supernet.SuperNet.standalone`,
as the standalone :class:`~evonas.models.NB201Network`. Only the way a cell combines
its operations differs, so weights move between the three without renaming.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from evonas.config import check_int
from evonas.models import NB201Network
from evonas.spaces import EDGES, OPS, Arch
from evonas.supernet import SuperCell, SuperNet

NUM_EDGES = len(EDGES)
NUM_OPS = len(OPS)
_NONE = OPS.index("none")
_OUTPUT_NODE = max(j for _, j in EDGES)
_EDGE_KEYS = tuple(f"edge{i}{j}" for i, j in EDGES)


class MixedSuperNet(nn.Module):
    """The DARTS supernet over all NAS-Bench-201 cells: every edge a softmax(α)-weighted
    sum of its five operations.

    ``alpha`` (shape ``(6, 5)``, rows in the space's edge order, columns in
    :data:`evonas.spaces.OPS` order) is a parameter of this module but kept apart from the
    network weights: :meth:`arch_parameters` and :meth:`weight_parameters` give the two
    groups that the bilevel methods optimise separately. It starts at ``1e-3 * N(0, 1)``
    as in DARTS. An edge can be *discretised* (:meth:`discretize`): its weights become the
    one-hot vector of one operation and only that operation runs, which is how DARTS-PT
    (Wang et al., ICLR 2021) fixes edges one by one.

    Args:
        C: Channels of the first stage (16 in NAS-Bench-201).
        N: Cells per stage (5 in NAS-Bench-201).
        num_classes: Outputs of the classifier.
        in_channels: Channels of the input images.
        affine: Train the scale and shift of the batch norms inside the cell operations.
            DARTS searches with ``affine=False`` so that a batch norm cannot undo the
            mixing weight of its operation; False (the default) keeps them at 1 and 0 and
            out of :meth:`weight_parameters` (the convolutions before them then have no
            bias, which a batch norm would remove anyway, so the function is DARTS').

    Raises:
        ConfigError: A size is not a positive integer or beyond its bound.

    Shapes:
        ``forward(x, weights)``: ``(B, in_channels, H, W) -> (B, num_classes)``;
        ``weights``: ``(6, 5)``.
    """

    def __init__(
        self, C: int = 16, N: int = 1, num_classes: int = 10, in_channels: int = 3, affine: bool = False
    ) -> None:
        super().__init__()
        self.net = SuperNet(C, N, num_classes, in_channels)
        self.affine = bool(affine)
        self.alpha = nn.Parameter(1e-3 * torch.randn(NUM_EDGES, NUM_OPS))
        self.register_buffer("fixed_ops", torch.full((NUM_EDGES,), -1, dtype=torch.int64))
        if not self.affine:
            for cell in self._cells():
                for module in cell.edges.modules():
                    if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.affine:
                        module.weight.requires_grad_(False)
                        module.bias.requires_grad_(False)

    # ----------------------------------------------------------------------- parameters
    def arch_parameters(self) -> list[nn.Parameter]:
        """The architecture parameters: ``[alpha]``."""
        return [self.alpha]

    def weight_parameters(self) -> list[nn.Parameter]:
        """The trainable network weights: every parameter but ``alpha`` and, with
        ``affine=False``, the cell operations' batch-norm scales and shifts."""
        return [p for p in self.parameters() if p is not self.alpha and p.requires_grad]

    # --------------------------------------------------------------------- edge weights
    def edge_weights(self) -> torch.Tensor:
        """``softmax(alpha)`` per edge, with discretised edges replaced by their one-hot
        vector (differentiable in ``alpha`` for the other edges).

        Shapes:
            ``(6, 5)``.
        """
        weights = torch.softmax(self.alpha, dim=-1)
        fixed = cast(torch.Tensor, self.fixed_ops)
        decided = fixed >= 0
        if bool(decided.any()):
            onehot = F.one_hot(fixed.clamp(min=0), NUM_OPS).to(weights.dtype)
            weights = torch.where(decided[:, None], onehot, weights)
        return weights

    def discretize(self, edge: int, op: int) -> None:
        """Fix edge ``edge`` to operation ``op`` (indices in the space's convention).

        Raises:
            ConfigError: ``edge`` is not in ``0..5`` or ``op`` not in ``0..4``.
        """
        check_int(edge, "edge", 0, NUM_EDGES - 1, owner="MixedSuperNet.discretize")
        check_int(op, "op", 0, NUM_OPS - 1, owner="MixedSuperNet.discretize")
        with torch.no_grad():
            cast(torch.Tensor, self.fixed_ops)[edge] = int(op)

    def release(self) -> None:
        """Undo every :meth:`discretize` (all edges mixed again)."""
        with torch.no_grad():
            cast(torch.Tensor, self.fixed_ops).fill_(-1)

    @property
    def fixed(self) -> tuple[int | None, ...]:
        """The operation of every discretised edge, None for the mixed ones."""
        return tuple(None if v < 0 else int(v) for v in cast(torch.Tensor, self.fixed_ops).tolist())

    def undecided_edges(self) -> list[int]:
        """The edges that are still mixed, in edge order."""
        return [e for e, op in enumerate(self.fixed) if op is None]

    def genotype(self) -> Arch:
        """The cell of the largest weight on every edge (discretised edges: their op).

        Ties go to the lower op index. The argmax runs over all five operations,
        ``none`` included, as in the DARTS baseline of NAS-Bench-201.
        """
        return tuple(int(i) for i in self.edge_weights().detach().argmax(dim=-1).tolist())

    def standalone(self, arch: Sequence[int] | None = None) -> NB201Network:
        """The standalone :class:`~evonas.models.NB201Network` of ``arch`` (default:
        :meth:`genotype`) with this supernet's weights (see
        :meth:`evonas.supernet.SuperNet.standalone`)."""
        return self.net.standalone(self.genotype() if arch is None else arch)

    # --------------------------------------------------------------------------- forward
    def forward(self, x: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
        """Class logits of the mixture.

        Args:
            x: Images.
            weights: Explicit per-edge operation weights (one-hot for a discrete cell,
                perturbed or neighbouring distributions); None: :meth:`edge_weights`, and
                discretised edges run only their operation. Explicit weights are used as
                given, and every operation but ``none`` (whose output is zero) runs, so
                gradients reach every entry of ``weights``.

        Raises:
            ValueError: ``weights`` is not of shape ``(6, 5)``.

        Shapes:
            ``(B, in_channels, H, W) -> (B, num_classes)``.
        """
        if weights is None:
            weights = self.edge_weights()
            active = [list(_RUNNABLE) if op is None else ([] if op == _NONE else [op]) for op in self.fixed]
        else:
            if tuple(weights.shape) != (NUM_EDGES, NUM_OPS):
                raise ValueError(f"weights must have shape ({NUM_EDGES}, {NUM_OPS}); got {tuple(weights.shape)}")
            active = [list(_RUNNABLE)] * NUM_EDGES
        net = self.net
        out = net.stem(x)
        for layer in net.cells:
            out = _mixed_cell(layer, out, weights, active) if isinstance(layer, SuperCell) else layer(out)
        out = torch.flatten(net.global_pooling(net.lastact(out)), 1)
        logits: torch.Tensor = net.classifier(out)
        return logits

    def _cells(self) -> list[SuperCell]:
        return [layer for layer in self.net.cells if isinstance(layer, SuperCell)]

    def extra_repr(self) -> str:
        return f"affine={self.affine}, fixed={self.fixed}"


_RUNNABLE = tuple(op for op in range(NUM_OPS) if op != _NONE)


def _mixed_cell(cell: SuperCell, x: torch.Tensor, weights: torch.Tensor, active: list[list[int]]) -> torch.Tensor:
    """One cell with mixed edges: node ``j`` is ``sum_{i<j} sum_o w[e(i,j), o] * o(node_i)``.

    ``none`` is never run: its output is zero, so its term is zero whatever its weight.
    """
    nodes = [x]
    for j in range(1, _OUTPUT_NODE + 1):
        out: torch.Tensor | None = None
        for e, (i, target) in enumerate(EDGES):
            if target != j:
                continue
            ops = cast(nn.ModuleList, cell.edges[_EDGE_KEYS[e]])
            for op in active[e]:
                term = ops[op](nodes[i]) * weights[e, op]
                out = term if out is None else out + term
        nodes.append(cell.zero(x) if out is None else out)
    return nodes[_OUTPUT_NODE]
