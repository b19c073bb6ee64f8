"""A differentiable search as a library object: supernet, optimisers, data halves, steps.

:class:`DNASSearch` builds the seeded :class:`~evonas.dnas.MixedSuperNet` of a
:class:`~evonas.dnas.DNASConfig`, splits the training images into the weights' half and
the architecture's half (DARTS' bilevel split), runs the configured method step by step
with a cosine weight learning rate (Loshchilov & Hutter, SGDR, ICLR 2017) and derives the
cell with the configured selection.

Reproducibility: the split, each half's batch order, the augmentation and the method's
and selection's random draws come from separate generators derived from the seed, and
the initialisation is seeded, so on the CPU two searches with the same config and data
end with identical ``alpha`` and weights.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sized
from contextlib import contextmanager
from typing import Any, cast

import numpy as np
import torch
from torch.utils.data import Dataset

from evonas.data import DataSplits, ImageTensorDataset
from evonas.dnas._config import DNASConfig
from evonas.dnas._methods import DNAS_METHODS, Batch, StepContext, StepStats
from evonas.dnas._mixed import MixedSuperNet
from evonas.dnas._select import DNAS_SELECTIONS, SelectionContext
from evonas.errors import ConfigError
from evonas.spaces import Arch
from evonas.supernet import lr_at
from evonas.training import seeded_model


class _Half:
    """One half of the training images as an endless stream of batches, reshuffled every
    pass with its own generator."""

    def __init__(
        self, dataset: Dataset, positions: np.ndarray, rng: np.random.Generator, device: torch.device,
        channels_last: bool,
    ) -> None:
        self.dataset = dataset
        self.positions = positions
        self.rng = rng
        self.device = device
        self.channels_last = channels_last
        self._order = rng.permutation(positions)
        self._at = 0

    def __len__(self) -> int:
        return int(self.positions.shape[0])

    def next(self, batch_size: int) -> Batch:
        if self._at + batch_size > len(self._order):
            self._order = self.rng.permutation(self.positions)
            self._at = 0
        rows = self._order[self._at : self._at + batch_size]
        self._at += batch_size
        return self.batch(rows)

    def batch(self, rows: np.ndarray, dataset: Dataset | None = None) -> Batch:
        data = self.dataset if dataset is None else dataset
        if isinstance(data, ImageTensorDataset):
            x, y = data.batch(torch.as_tensor(rows))
        else:
            items = [data[int(i)] for i in rows]
            x, y = torch.stack([it[0] for it in items]), torch.as_tensor([int(it[1]) for it in items])
        x = x.to(self.device, non_blocking=True)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, y.to(self.device, non_blocking=True)


class DNASSearch:
    """A differentiable search over the NAS-Bench-201 cell, as configured.

    Everything that can fail on bad input (method, selection, device, split sizes) fails
    in the constructor, before any training.

    Args:
        config: The search config.
        splits: The data; the search uses only ``splits.train`` (split into the two
            halves), never the validation or test split.

    Raises:
        ConfigError: The device is not available, mixed precision is asked for on a GPU
            without bfloat16, or a half of the training images is smaller than a batch.

    Attributes:
        model: The :class:`MixedSuperNet` (on the configured device).
        weight_optimizer: SGD over ``model.weight_parameters()``.
        arch_optimizer: Adam over ``model.arch_parameters()``.
        step_count: Steps taken.
        seconds: Wall seconds spent in steps (selection excluded), over every resume.
    """

    def __init__(self, config: DNASConfig, splits: DataSplits) -> None:
        self.config = config
        self.method = DNAS_METHODS.get(config.method.name)
        self.method_params = config.method_params()
        self.selection = DNAS_SELECTIONS.get(config.selection.name)
        self.selection_params = config.selection_params()
        self.device, self.amp, self.channels_last = config.compute.resolve()
        if self.amp and self.device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise ConfigError(
                f"invalid value True for 'compute.amp'; {self.device} has no bfloat16, and the bilevel "
                "steps do not scale float16 losses: set compute.amp to false"
            )
        seeds = np.random.SeedSequence(config.seed).spawn(5)
        train = splits.train
        if isinstance(train, ImageTensorDataset):
            train = train.reseeded(int(seeds[4].generate_state(1)[0]))
        num = len(cast(Sized, train))
        positions = np.random.default_rng(seeds[0]).permutation(num)
        cut = round(config.train_fraction * num)
        for name, size in (("weights", cut), ("architecture", num - cut)):
            if size < config.batch_size:
                raise ConfigError(
                    f"invalid value {config.batch_size!r} for 'batch_size'; expected at most {size}, the "
                    f"{name}' half of {num} training images at train_fraction {config.train_fraction!r}"
                )
        self._train = _Half(train, positions[:cut], np.random.default_rng(seeds[1]), self.device, self.channels_last)
        self._val = _Half(train, positions[cut:], np.random.default_rng(seeds[2]), self.device, self.channels_last)
        # scoring sees the architecture's half without augmentation, in a fixed order
        self._val_plain = train.reseeded(0, augment=False) if isinstance(train, ImageTensorDataset) else train
        self.rng = np.random.default_rng(seeds[3])
        net = config.network
        self.model = seeded_model(
            lambda: MixedSuperNet(net.channels, net.cells_per_stage, splits.num_classes, splits.in_channels,
                                  affine=config.affine),
            config.seed,
        ).to(self.device)
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.weight_optimizer = config.optim.sgd(self.model.weight_parameters())
        self.arch_optimizer = config.arch_optim.adam(self.model.arch_parameters())
        self.step_count = 0
        self.seconds = 0.0

    # ------------------------------------------------------------------------- steps
    def context(self, weight_optimizer: torch.optim.Optimizer | None = None) -> StepContext:
        """The :class:`StepContext` of this search's optimisers and settings."""
        return StepContext(
            weight_optimizer=self.weight_optimizer if weight_optimizer is None else weight_optimizer,
            arch_optimizer=self.arch_optimizer,
            rng=self.rng,
            grad_clip=self.config.optim.grad_clip,
            amp=self.amp,
            label_smoothing=self.config.optim.label_smoothing,
        )

    def step(self) -> StepStats:
        """One search step of the configured method at the scheduled learning rate."""
        optim = self.config.optim
        lr = lr_at(self.step_count, self.config.steps, optim.lr, optim.min_lr, 0)
        for group in self.weight_optimizer.param_groups:
            group["lr"] = lr
        start = time.perf_counter()
        stats = self._step(self.context())
        self.seconds += time.perf_counter() - start
        self.step_count += 1
        return stats

    def _step(self, ctx: StepContext) -> StepStats:
        b = self.config.batch_size
        return self.method.step(self.model, self._train.next(b), self._val.next(b), ctx, self.method_params)

    def run(self, progress: bool = False, on_step: Callable[[StepStats], bool | None] | None = None) -> list[StepStats]:
        """Take the remaining steps of ``config.steps``; returns their losses.

        Args:
            progress: Show a progress bar.
            on_step: Called after every step with its losses (``step_count`` is already
                advanced); returning True stops the search there.
        """
        out: list[StepStats] = []
        bar: Any = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=self.config.steps, initial=self.step_count, desc=f"dnas {self.config.method.name}",
                       unit="step")
        try:
            with self._threads():
                while self.step_count < self.config.steps:
                    out.append(self.step())
                    if bar is not None:
                        bar.update(1)
                        bar.set_postfix(val_loss=f"{out[-1].val_loss:.3f}")
                    if on_step is not None and on_step(out[-1]):
                        break
        finally:
            if bar is not None:
                bar.close()
        return out

    # --------------------------------------------------------------------- selection
    def val_batches(self) -> Iterator[Batch]:
        """The architecture's half once, in a fixed order, without augmentation."""
        rows = self._val.positions
        b = self.config.batch_size
        for start in range(0, len(rows), b):
            yield self._val.batch(rows[start : start + b], self._val_plain)

    def select(self) -> Arch:
        """The cell derived by the configured selection (which may discretise and
        fine-tune the supernet, e.g. DARTS-PT)."""
        tune_optimizer: torch.optim.Optimizer | None = None

        def tune(steps: int, lr: float) -> None:
            nonlocal tune_optimizer
            if tune_optimizer is None:  # reset once, as DARTS-PT does before its first edge
                tune_optimizer = self.config.optim.sgd(self.model.weight_parameters())
            for group in tune_optimizer.param_groups:
                group["lr"] = lr
            ctx = self.context(tune_optimizer)
            for _ in range(steps):
                self._step(ctx)

        ctx = SelectionContext(val_batches=self.val_batches, rng=self.rng, tune=tune, amp=self.amp)
        with self._threads():
            return self.selection.select(self.model, ctx, self.selection_params)

    @property
    def steps_per_epoch(self) -> int:
        """Steps of one pass over the weights' half (at least 1)."""
        return max(1, len(self._train) // self.config.batch_size)

    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed search needs to continue exactly: weights, ``alpha``, both
        optimisers, every generator (split halves, method, augmentation), the step
        count and the seconds spent. Tensors, numpy arrays and generators only."""
        aug = self._train.dataset.generator.get_state() if isinstance(self._train.dataset, ImageTensorDataset) else None
        return {
            "model": {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()},
            "weight_optimizer": self.weight_optimizer.state_dict(),
            "arch_optimizer": self.arch_optimizer.state_dict(),
            "rng": self.rng,
            "halves": [(h.rng, h._order.copy(), h._at) for h in (self._train, self._val)],
            "augmentation": aug,
            "step_count": self.step_count,
            "seconds": self.seconds,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from :meth:`state_dict` of a search with the same config and data.

        Raises:
            ConfigError: The state belongs to another configuration.
        """
        try:
            self.model.load_state_dict(state["model"])
            self.weight_optimizer.load_state_dict(state["weight_optimizer"])
            self.arch_optimizer.load_state_dict(state["arch_optimizer"])
            self.rng = state["rng"]
            for half, (rng, order, at) in zip((self._train, self._val), state["halves"], strict=True):
                if sorted(order.tolist()) != sorted(half.positions.tolist()):
                    raise ValueError("the data split differs")
                half.rng, half._order, half._at = rng, np.asarray(order), int(at)
            if state["augmentation"] is not None and isinstance(self._train.dataset, ImageTensorDataset):
                self._train.dataset.generator.set_state(state["augmentation"])
            self.step_count = int(state["step_count"])
            self.seconds = float(state["seconds"])
        except (KeyError, RuntimeError, ValueError, TypeError) as exc:
            raise ConfigError(f"the saved search state does not fit this config ({type(exc).__name__}: {exc})") from None

    @property
    def alpha(self) -> torch.Tensor:
        """A CPU copy of ``alpha``. Shapes: ``(6, 5)``."""
        return self.model.alpha.detach().cpu().clone()

    @contextmanager
    def _threads(self) -> Iterator[None]:
        threads = torch.get_num_threads()
        if self.config.compute.num_threads is not None:
            torch.set_num_threads(self.config.compute.num_threads)
        try:
            yield
        finally:
            torch.set_num_threads(threads)
