"""An image dataset held in memory as one uint8 tensor, normalised and augmented per batch.

Decoding images once and keeping them as ``uint8`` makes an epoch over 50k 32x32 images
cost milliseconds of data handling instead of the seconds that per-sample decoding and
transforms take on a small CPU. Batches are built with vectorised tensor operations;
DataLoaders use them through ``__getitems__``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.utils.data import Dataset


class ImageTensorDataset(Dataset):
    """A view (a subset of rows) of in-memory images, yielding normalised float tensors.

    Pixels are ``images * scale`` (so in ``[0, 1]``), then ``(x - mean) / std`` per
    channel. With ``augment``, each sample is first zero-padded by ``pad`` pixels and
    randomly cropped back to its size, then flipped horizontally with probability 1/2 (the
    standard CIFAR augmentation, He et al., CVPR 2016). The random draws come from the
    dataset's own ``torch.Generator``, never from the global state: :meth:`reseeded`
    gives an independent copy for each training run, and DataLoader workers reseed their
    copy from their worker seed (see :func:`seed_worker`).

    Args:
        images: All images, ``uint8``. Shapes: ``(N, C, H, W)``.
        labels: Class indices. Shapes: ``(N,)``.
        indices: The rows of this view (default: all). Shapes: ``(M,)``.
        mean: Per-channel means of the scaled pixels (length ``C``).
        std: Per-channel standard deviations of the scaled pixels (length ``C``).
        scale: Factor turning stored values into ``[0, 1]`` (1/255 for 8-bit images).
        augment: Apply random crop and flip.
        pad: Padding of the random crop.
        seed: Seed of the augmentation generator.

    Items are ``(x, y)`` with ``x`` a float32 tensor of shape ``(C, H, W)`` and ``y`` an int.
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        indices: torch.Tensor | None = None,
        *,
        mean: Sequence[float],
        std: Sequence[float],
        scale: float = 1.0 / 255.0,
        augment: bool = False,
        pad: int = 4,
        seed: int = 0,
    ) -> None:
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise ValueError(
                f"images must be a uint8 tensor of shape (N, C, H, W); got {images.dtype} {tuple(images.shape)}"
            )
        if labels.shape != (images.shape[0],):
            raise ValueError(f"labels must have shape ({images.shape[0]},); got {tuple(labels.shape)}")
        channels = images.shape[1]
        if len(mean) != channels or len(std) != channels:
            raise ValueError(f"mean and std need {channels} values; got {list(mean)} and {list(std)}")
        self.images = images
        self.labels_all = labels.to(torch.int64)
        self.indices = torch.arange(images.shape[0]) if indices is None else indices.to(torch.int64)
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)
        self.scale = float(scale)
        self.augment = bool(augment)
        self.pad = int(pad)
        self.seed = int(seed)
        self.generator = torch.Generator().manual_seed(self.seed)
        self._mean_t = torch.tensor(self.mean).view(1, -1, 1, 1)
        self._std_t = torch.tensor(self.std).view(1, -1, 1, 1)

    def __getstate__(self) -> dict[str, object]:
        # The generator travels as plain bytes: pickling it (or any tensor made on the fly)
        # for DataLoader workers started by spawn/forkserver shares a temporary tensor's
        # memory that is freed before the worker can open it.
        state = self.__dict__.copy()
        state["generator"] = self.generator.get_state().numpy().tobytes()
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        generator_state = state.pop("generator")
        if not isinstance(generator_state, bytes):
            raise TypeError(f"ImageTensorDataset state holds a generator of type {type(generator_state).__name__}")
        self.__dict__.update(state)
        self.generator = torch.Generator()
        self.generator.set_state(torch.frombuffer(bytearray(generator_state), dtype=torch.uint8))

    # ------------------------------------------------------------------------- views
    def subset(self, rows: torch.Tensor | Sequence[int]) -> ImageTensorDataset:
        """The view of rows ``rows`` of this view (positions ``0..len(self)-1``)."""
        rows = torch.as_tensor(rows, dtype=torch.int64)
        return self._copy(indices=self.indices[rows])

    def reseeded(self, seed: int, augment: bool | None = None) -> ImageTensorDataset:
        """A copy sharing the images with a fresh augmentation generator seeded by ``seed``."""
        return self._copy(seed=seed, augment=self.augment if augment is None else augment)

    def _copy(
        self, indices: torch.Tensor | None = None, seed: int | None = None, augment: bool | None = None
    ) -> ImageTensorDataset:
        return ImageTensorDataset(
            self.images, self.labels_all, self.indices if indices is None else indices,
            mean=self.mean, std=self.std, scale=self.scale, pad=self.pad,
            augment=self.augment if augment is None else augment, seed=self.seed if seed is None else seed,
        )

    # ---------------------------------------------------------------------- contents
    @property
    def labels(self) -> torch.Tensor:
        """Labels of this view, in order. Shapes: ``(len(self),)``."""
        return self.labels_all[self.indices]

    @property
    def sample_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of one item."""
        _, c, h, w = self.images.shape
        return (int(c), int(h), int(w))

    def __len__(self) -> int:
        return int(self.indices.shape[0])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        x, y = self.batch([index])
        return x[0], int(y[0])

    def __getitems__(self, indices: Sequence[int]) -> list[tuple[torch.Tensor, int]]:
        x, y = self.batch(indices)
        return list(zip(x.unbind(0), y.tolist()))

    def batch(self, positions: Sequence[int] | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The normalised (and, if enabled, augmented) images and labels at ``positions``.

        Shapes:
            ``x``: ``(B, C, H, W)`` float32; ``y``: ``(B,)`` int64.
        """
        pos = torch.as_tensor(positions, dtype=torch.int64)
        if pos.numel() and (int(pos.min()) < -len(self) or int(pos.max()) >= len(self)):
            raise IndexError(f"index out of range for a dataset of {len(self)} items")
        rows = self.indices[pos]
        x = self.images[rows]
        if self.augment:
            x = self._crop_and_flip(x)
        x = x.to(torch.float32).mul_(self.scale)
        x = (x - self._mean_t) / self._std_t
        return x, self.labels_all[rows]

    def _crop_and_flip(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        p = self.pad
        if p > 0:
            padded = torch.nn.functional.pad(x, (p, p, p, p))
            dy = torch.randint(0, 2 * p + 1, (b,), generator=self.generator)
            dx = torch.randint(0, 2 * p + 1, (b,), generator=self.generator)
            rows = (dy[:, None] + torch.arange(h))[:, :, None]  # (B, H, 1)
            cols = (dx[:, None] + torch.arange(w))[:, None, :]  # (B, 1, W)
            # advanced indexing puts the broadcast (B, H, W) dims first, channels last
            x = padded[torch.arange(b)[:, None, None], :, rows, cols].permute(0, 3, 1, 2)
        flip = torch.rand(b, generator=self.generator) < 0.5
        return torch.where(flip[:, None, None, None], x.flip(-1), x).contiguous()

    def __repr__(self) -> str:
        c, h, w = self.sample_shape
        return f"ImageTensorDataset({len(self)} images of {c}x{h}x{w}, augment={self.augment})"


def seed_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: reseed the worker's dataset copy from its worker seed.

    PyTorch sets each worker's seed from the loader's ``generator``, so augmentation in
    workers stays a function of the loader's seed.
    """
    info = torch.utils.data.get_worker_info()
    if info is not None and isinstance(info.dataset, ImageTensorDataset):
        info.dataset.generator.manual_seed(info.seed % (2**63))
