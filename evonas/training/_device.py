"""Choosing the torch device a training run uses."""

from __future__ import annotations

import re

import torch

from evonas.errors import ConfigError

_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")
DEVICE_CHOICES = ("auto", "cpu", "cuda", "cuda:N")


def check_device_spec(spec: str) -> str:
    """Check the syntax of a device string (not whether the device exists).

    Raises:
        ConfigError: ``spec`` is not one of ``auto``, ``cpu``, ``cuda``, ``cuda:N``.
    """
    if not isinstance(spec, str) or _DEVICE.match(spec) is None:
        raise ConfigError(f"invalid device {spec!r}; valid devices: {', '.join(DEVICE_CHOICES)}")
    return spec


def select_device(spec: str = "auto") -> torch.device:
    """The device named by ``spec``.

    Args:
        spec: ``"auto"`` (the current CUDA device when CUDA is available, else the CPU),
            ``"cpu"``, ``"cuda"`` (the current CUDA device; under Ray, the GPU assigned to
            the worker) or ``"cuda:N"``.

    Raises:
        ConfigError: Bad syntax, or CUDA asked for but not available, or no GPU ``N``.
    """
    check_device_spec(spec)
    if spec == "cpu":
        return torch.device("cpu")
    available = torch.cuda.is_available()
    if spec == "auto":
        return torch.device("cuda", torch.cuda.current_device()) if available else torch.device("cpu")
    if not available:
        raise ConfigError(
            f"device {spec!r} requested but CUDA is not available (torch {torch.__version__}); "
            "use device 'cpu' or 'auto'"
        )
    if spec == "cuda":
        return torch.device("cuda", torch.cuda.current_device())
    index = int(spec.split(":")[1])
    count = torch.cuda.device_count()
    if index >= count:
        raise ConfigError(
            f"device {spec!r} requested but only {count} CUDA device(s) are visible: cuda:0..cuda:{count - 1}"
        )
    return torch.device("cuda", index)


def prefers_channels_last(device: torch.device) -> bool:
    """Whether convolutions on ``device`` run faster on channels-last tensors: what the
    ``"auto"`` setting of ``channels_last`` resolves to.

    True on CUDA (tensor cores want NHWC) and on CPUs whose PyTorch build has oneDNN
    (``torch.backends.mkldnn``), whose convolution kernels are NHWC-native
    (``benchmarks/RESULTS.md`` has the measured speed-ups).
    """
    if device.type == "cuda":
        return True
    return device.type == "cpu" and bool(torch.backends.mkldnn.is_available())


def resolve_channels_last(setting: bool | str, device: torch.device) -> bool:
    """A ``channels_last`` setting (``"auto"``, true or false) resolved on ``device``."""
    return prefers_channels_last(device) if setting == "auto" else bool(setting)


def resolve_amp(setting: bool | str, device: torch.device) -> bool:
    """An ``amp`` setting (``"auto"``: on for CUDA only, true or false) resolved on ``device``."""
    return device.type == "cuda" if setting == "auto" else bool(setting)


def amp_dtype(device: torch.device) -> torch.dtype:
    """The autocast dtype of mixed precision on ``device``: float16 on CUDA, bfloat16 on the CPU."""
    return torch.float16 if device.type == "cuda" else torch.bfloat16
