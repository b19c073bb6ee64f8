"""The candidate operations of the NAS-Bench-201 cell and the network's reduction block.

Dong & Yang, "NAS-Bench-201: Extending the Scope of Reproducible Neural Architecture
Search", ICLR 2020. Every operation maps ``C_in`` channels to ``C_out`` channels with a
given stride; inside the benchmark's network all cell edges have ``C_in == C_out`` and
stride 1, but the factories also handle the general case so that a weight-sharing supernet
can reuse them (e.g. with ``affine=False``).

:data:`OPS` maps each name of :data:`evonas.spaces.OPS` to a factory
``factory(C_in, C_out, stride, affine=True, track_running_stats=True) -> nn.Module``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from evonas.spaces import OPS as OP_NAMES


class ReLUConvBN(nn.Sequential):
    """ReLU, convolution, batch norm (the ``nor_conv_kxk`` operations of NAS-Bench-201).

    The convolution has a bias only when the batch norm has no affine shift, as in the
    benchmark; parameter counts depend on it.

    Args:
        C_in: Input channels.
        C_out: Output channels.
        kernel_size: Square kernel size.
        stride: Convolution stride.
        padding: Zero padding on each side.
        affine: Learnable scale and shift in the batch norm.
        track_running_stats: Batch norm keeps running statistics for evaluation.

    Shapes:
        ``(N, C_in, H, W) -> (N, C_out, H', W')`` with ``H' = (H + 2 padding - kernel_size) // stride + 1``.
    """

    def __init__(
        self,
        C_in: int,
        C_out: int,
        kernel_size: int,
        stride: int,
        padding: int,
        affine: bool = True,
        track_running_stats: bool = True,
    ) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_out, kernel_size, stride=stride, padding=padding, bias=not affine),
            nn.BatchNorm2d(C_out, affine=affine, track_running_stats=track_running_stats),
        )


class Zero(nn.Module):
    """The ``none`` operation: an all-zero output of the right shape, without parameters.

    Shapes:
        ``(N, C_in, H, W) -> (N, C_out, ceil(H / stride), ceil(W / stride))``.
    """

    def __init__(self, C_in: int, C_out: int, stride: int) -> None:
        super().__init__()
        self.C_in, self.C_out, self.stride = C_in, C_out, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        strided = x[:, :, :: self.stride, :: self.stride]
        if self.C_in == self.C_out:
            return torch.zeros_like(strided)
        n, _, h, w = strided.shape
        return x.new_zeros(n, self.C_out, h, w)

    def extra_repr(self) -> str:
        return f"C_in={self.C_in}, C_out={self.C_out}, stride={self.stride}"


class FactorizedReduce(nn.Module):
    """``skip_connect`` when the shape changes: ReLU, 1x1 convolution(s), batch norm.

    With stride 2, half of the output channels come from a 1x1 stride-2 convolution of
    the input and the other half from the same on the input shifted by one pixel, so that
    every input position is seen (Zoph et al., NASNet, CVPR 2018; as in NAS-Bench-201).

    Args:
        C_in: Input channels.
        C_out: Output channels.
        stride: 1 or 2.
        affine: Learnable scale and shift in the batch norm.
        track_running_stats: Batch norm keeps running statistics for evaluation.

    Shapes:
        ``(N, C_in, H, W) -> (N, C_out, ceil(H / stride), ceil(W / stride))``.
    """

    def __init__(
        self, C_in: int, C_out: int, stride: int, affine: bool = True, track_running_stats: bool = True
    ) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"FactorizedReduce stride must be 1 or 2; got {stride!r}")
        self.stride = stride
        self.relu = nn.ReLU(inplace=False)
        if stride == 2:
            halves = (C_out // 2, C_out - C_out // 2)
            self.convs = nn.ModuleList(nn.Conv2d(C_in, c, 1, stride=2, bias=not affine) for c in halves)
        else:
            self.convs = nn.ModuleList([nn.Conv2d(C_in, C_out, 1, stride=1, bias=not affine)])
        self.bn = nn.BatchNorm2d(C_out, affine=affine, track_running_stats=track_running_stats)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        if self.stride == 2:
            shifted = nn.functional.pad(x, (0, 1, 0, 1))[:, :, 1:, 1:]
            out = torch.cat([self.convs[0](x), self.convs[1](shifted)], dim=1)
        else:
            out = self.convs[0](x)
        return self.bn(out)


class AvgPool(nn.Module):
    """``avg_pool_3x3``: 3x3 average pooling (padding 1, padded zeros not counted).

    A ReLU-Conv1x1-BN first maps ``C_in`` to ``C_out`` channels when they differ.

    Shapes:
        ``(N, C_in, H, W) -> (N, C_out, ceil(H / stride), ceil(W / stride))``.
    """

    def __init__(
        self, C_in: int, C_out: int, stride: int, affine: bool = True, track_running_stats: bool = True
    ) -> None:
        super().__init__()
        self.preprocess = (
            None if C_in == C_out else ReLUConvBN(C_in, C_out, 1, 1, 0, affine, track_running_stats)
        )
        self.pool = nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.preprocess is not None:
            x = self.preprocess(x)
        return self.pool(x)


def _skip(C_in: int, C_out: int, stride: int, affine: bool = True, track_running_stats: bool = True) -> nn.Module:
    if stride == 1 and C_in == C_out:
        return nn.Identity()
    return FactorizedReduce(C_in, C_out, stride, affine, track_running_stats)


def _none(C_in: int, C_out: int, stride: int, affine: bool = True, track_running_stats: bool = True) -> nn.Module:
    return Zero(C_in, C_out, stride)


def _conv1x1(C_in: int, C_out: int, stride: int, affine: bool = True, track_running_stats: bool = True) -> nn.Module:
    return ReLUConvBN(C_in, C_out, 1, stride, 0, affine, track_running_stats)


def _conv3x3(C_in: int, C_out: int, stride: int, affine: bool = True, track_running_stats: bool = True) -> nn.Module:
    return ReLUConvBN(C_in, C_out, 3, stride, 1, affine, track_running_stats)


def _avg_pool(C_in: int, C_out: int, stride: int, affine: bool = True, track_running_stats: bool = True) -> nn.Module:
    return AvgPool(C_in, C_out, stride, affine, track_running_stats)


OpFactory = Callable[..., nn.Module]

OPS: dict[str, OpFactory] = {
    "none": _none,
    "skip_connect": _skip,
    "nor_conv_1x1": _conv1x1,
    "nor_conv_3x3": _conv3x3,
    "avg_pool_3x3": _avg_pool,
}
"""Operation name -> ``factory(C_in, C_out, stride, affine=True, track_running_stats=True)``,
for every name of :data:`evonas.spaces.OPS` (same names, same order)."""

if tuple(OPS) != OP_NAMES:  # pragma: no cover - guards the two tables against drifting apart
    raise ImportError(f"evonas.models.OPS {tuple(OPS)} do not match evonas.spaces.OPS {OP_NAMES}")


class ResNetBasicBlock(nn.Module):
    """The residual block between the stages of the NAS-Bench-201 network.

    Two ReLU-Conv3x3-BN layers (the first with the stride) plus a shortcut: 2x2 average
    pooling followed by a bias-free 1x1 convolution when the stride is 2, a ReLU-Conv1x1-BN
    when only the channel count changes, the identity otherwise (He et al., CVPR 2016; as
    in NAS-Bench-201). The shortcut pooling rounds up (``ceil_mode``) so that odd feature
    maps give the same size as the strided convolution; for even sizes this is the
    benchmark's block exactly.

    Args:
        C_in: Input channels.
        C_out: Output channels.
        stride: 1 or 2.
        affine: Learnable scale and shift in the batch norms.
        track_running_stats: Batch norms keep running statistics for evaluation.

    Shapes:
        ``(N, C_in, H, W) -> (N, C_out, ceil(H / stride), ceil(W / stride))``.
    """

    def __init__(
        self, C_in: int, C_out: int, stride: int, affine: bool = True, track_running_stats: bool = True
    ) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"ResNetBasicBlock stride must be 1 or 2; got {stride!r}")
        self.conv_a = ReLUConvBN(C_in, C_out, 3, stride, 1, affine, track_running_stats)
        self.conv_b = ReLUConvBN(C_out, C_out, 3, 1, 1, affine, track_running_stats)
        self.downsample: nn.Module | None
        if stride == 2:
            self.downsample = nn.Sequential(
                nn.AvgPool2d(kernel_size=2, stride=2, ceil_mode=True),
                nn.Conv2d(C_in, C_out, kernel_size=1, bias=False),
            )
        elif C_in != C_out:
            self.downsample = ReLUConvBN(C_in, C_out, 1, 1, 0, affine, track_running_stats)
        else:
            self.downsample = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        return residual + self.conv_b(self.conv_a(x))
