"""Evaluating architectures with weights inherited from a trained supernet.

:class:`SupernetEvaluator` follows the :class:`~evonas.evaluation.Evaluator` protocol:
an architecture's validation loss and accuracy with the supernet's weights, optionally
after re-estimating the batch-norm statistics for that architecture on a few training
batches (Guo et al., SPOS, ECCV 2020). The evaluation data are fixed, seeded subsets
materialised once as tensors, so every architecture is measured on the same images and
a result depends on the architecture only; results are cached.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from evonas.config import ComponentConfig
from evonas.data import DatasetConfig, DataSplits, ImageTensorDataset, cached_splits
from evonas.evaluation import Evaluation
from evonas.spaces import Arch, SearchSpace
from evonas.supernet._config import SupernetEvalConfig
from evonas.supernet._network import bn_buffers, cumulative_bn, restore_buffers
from evonas.supernet._supernets import build_supernet, check_supernet
from evonas.training import (
    amp_dtype,
    evaluate_batches,
    resolve_channels_last,
    select_device,
)

METRIC_NAMES: tuple[str, ...] = ("val_loss", "val_acc")

Batches = tuple[tuple[torch.Tensor, torch.Tensor], ...]


@dataclass(frozen=True, eq=False)
class EvalData:
    """The fixed batches of supernet evaluation.

    Attributes:
        bn_batches: Non-augmented training batches for batch-norm re-estimation.
        val_batches: Validation batches.
    """

    bn_batches: Batches
    val_batches: Batches

    @property
    def num_val(self) -> int:
        return sum(int(y.shape[0]) for _, y in self.val_batches)

    @classmethod
    def build(cls, splits: DataSplits, config: SupernetEvalConfig, seed: int) -> EvalData:
        """Draw the seeded subsets of ``splits``: ``bn_batches`` training batches and
        ``val_images`` validation images (all of them when ``None``)."""
        rng = np.random.default_rng([seed, 7])
        train: Any = splits.train
        if isinstance(train, ImageTensorDataset):
            train = train.reseeded(0, augment=False)
        val: Any = splits.val
        n_bn = min(len(train), config.bn_batches * config.batch_size)
        bn_pos = np.sort(rng.choice(len(train), size=n_bn, replace=False))
        n_val = len(val) if config.val_images is None else min(config.val_images, len(val))
        val_pos = np.sort(rng.choice(len(val), size=n_val, replace=False))
        return cls(
            bn_batches=_batches(train, bn_pos, config.batch_size),
            val_batches=_batches(val, val_pos, config.batch_size),
        )


def _batches(dataset: Any, positions: np.ndarray, batch_size: int) -> Batches:
    out = []
    for start in range(0, len(positions), batch_size):
        chunk = positions[start : start + batch_size]
        if isinstance(dataset, ImageTensorDataset):
            x, y = dataset.batch(torch.as_tensor(chunk))
        else:
            items = [dataset[int(i)] for i in chunk]
            x = torch.stack([it[0] for it in items])
            y = torch.as_tensor([int(it[1]) for it in items])
        out.append((x, y))
    return tuple(out)


class SupernetEvaluator:
    """Validation loss and accuracy of architectures with inherited supernet weights.

    Build it from saved weights (picklable, for Ray workers and actors: the supernet and
    the data are set up lazily, once per process) or with :meth:`attached` around a live
    supernet (used by the trainer's proxy-validation loop). Batch-norm re-estimation
    changes the supernet's running statistics only for the duration of one evaluation:
    they are restored afterwards. The validation pass is
    :func:`evonas.training.evaluate_batches` over the supernet's path of the architecture.

    ``evaluate(arch, seed)`` does not depend on ``seed``: the batches are fixed by
    ``data_seed`` so that architectures are compared on the same images.

    Args:
        weights: The supernet's ``state_dict``.
        space: The search space of the architectures.
        supernet: The registered supernet and its size (``{name, params}``), which the
            weights belong to.
        dataset: The data the supernet was trained on.
        config: Evaluation settings.
        num_classes: Classifier outputs.
        in_channels: Image channels.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        amp: Autocast the forward passes (float16 on CUDA, bfloat16 on the CPU).
        channels_last: Channels-last inputs and weights; ``"auto"``: where the device
            prefers them (:func:`~evonas.training.prefers_channels_last`).
        data_seed: Seed of the evaluation subsets.
        num_threads: torch CPU threads during evaluations (None: unchanged).

    Attributes:
        metric_names: ``val_loss`` (mean cross-entropy) and ``val_acc`` (percent).

    Raises:
        CapabilityError: The supernet serves another space.
    """

    metric_names: tuple[str, ...] = METRIC_NAMES

    def __init__(
        self,
        weights: dict[str, torch.Tensor],
        space: SearchSpace,
        supernet: ComponentConfig,
        dataset: DatasetConfig,
        config: SupernetEvalConfig | None = None,
        *,
        num_classes: int = 10,
        in_channels: int = 3,
        device: str = "cpu",
        amp: bool = False,
        channels_last: bool | Literal["auto"] = "auto",
        data_seed: int = 0,
        num_threads: int | None = None,
    ) -> None:
        check_supernet(supernet, space)
        self.weights = {k: v.detach().cpu() for k, v in weights.items()}
        self.space = space
        self.supernet = supernet
        self.dataset = dataset
        self.config = SupernetEvalConfig() if config is None else config
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.device = device
        self.amp = amp
        self.channels_last = channels_last
        self.data_seed = data_seed
        self.num_threads = num_threads
        self._model: nn.Module | None = None
        self._data: EvalData | None = None
        self._splits: DataSplits | None = None
        self._cache: collections.OrderedDict[Arch, Evaluation] = collections.OrderedDict()
        self.hits = 0
        self.misses = 0

    @classmethod
    def attached(
        cls,
        model: nn.Module,
        space: SearchSpace,
        supernet: ComponentConfig,
        splits: DataSplits,
        config: SupernetEvalConfig,
        *,
        dataset: DatasetConfig | None = None,
        amp: bool = False,
        channels_last: bool | None = None,
        data_seed: int = 0,
        data: EvalData | None = None,
    ) -> SupernetEvaluator:
        """An evaluator using ``model`` itself (no copy); its weights must not change
        while cached results are in use. ``channels_last=None`` follows the memory format
        of the model's weights. ``supernet`` and ``dataset`` describe the model and its
        data for a pickled copy, which rebuilds both."""
        first = next(model.parameters())
        if channels_last is None:
            # a conv weight with several input channels and a spatial kernel: for it the two
            # memory formats differ (a 1-channel stem's weight is both at once)
            conv = next((p for p in model.parameters() if p.dim() == 4 and p.shape[1] > 1 and p.shape[2] > 1), None)
            channels_last = conv is not None and not conv.is_contiguous() and conv.is_contiguous(
                memory_format=torch.channels_last
            )
        self = cls(
            {}, space, supernet, dataset if dataset is not None else DatasetConfig(), config,
            num_classes=splits.num_classes, in_channels=splits.in_channels, device=str(first.device), amp=amp,
            channels_last=channels_last, data_seed=data_seed,
        )
        self._model = model
        self._splits = splits
        self._data = data
        return self

    # ----------------------------------------------------------------------- pickling
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        if self._model is not None and not self.weights:
            state["weights"] = {k: v.detach().cpu() for k, v in self._model.state_dict().items()}
        state["_model"] = None
        state["_data"] = None
        state["_splits"] = None
        state["_cache"] = collections.OrderedDict()
        return state

    # ------------------------------------------------------------------------- set-up
    def model(self) -> nn.Module:
        """The supernet (built and loaded on first use in this process)."""
        if self._model is None:
            device = select_device(self.device)
            net = build_supernet(self.supernet, self.space, self.num_classes, self.in_channels)
            net.load_state_dict(self.weights)
            net.to(device)
            self.channels_last = resolve_channels_last(self.channels_last, device)
            if self.channels_last:
                net.to(memory_format=torch.channels_last)
            net.eval()
            self._model = net
        return self._model

    def data(self) -> EvalData:
        """The fixed evaluation batches (built on first use in this process)."""
        if self._data is None:
            splits = self._splits if self._splits is not None else cached_splits(self.dataset)
            self._data = EvalData.build(splits, self.config, self.data_seed)
        return self._data

    def clear_cache(self) -> None:
        self._cache.clear()

    # --------------------------------------------------------------------- evaluation
    def evaluate(self, arch: Sequence[int], seed: int = 0) -> Evaluation:
        """Loss and accuracy of ``arch`` on the fixed validation images (cached)."""
        genotype = self.space.validate(arch)
        hit = self._cache.get(genotype)
        if hit is not None:
            self._cache.move_to_end(genotype)
            self.hits += 1
            return hit
        self.misses += 1
        threads = torch.get_num_threads()
        if self.num_threads is not None:
            torch.set_num_threads(self.num_threads)
        try:
            result = self._evaluate(genotype)
        finally:
            torch.set_num_threads(threads)
        if self.config.cache_size > 0:
            self._cache[genotype] = result
            while len(self._cache) > self.config.cache_size:
                self._cache.popitem(last=False)
        return result

    def _evaluate(self, arch: Arch) -> Evaluation:
        start = time.perf_counter()
        model = self.model()
        data = self.data()
        device = next(model.parameters()).device
        channels_last = self.channels_last is True
        recalibrate = self.config.bn_recalibration
        saved = bn_buffers(model) if recalibrate else None
        was_training = model.training
        try:
            if recalibrate:
                model.train()
                with torch.no_grad(), cumulative_bn(model):
                    for x, _ in data.bn_batches:
                        x = x.to(device, non_blocking=True)
                        if channels_last:
                            x = x.contiguous(memory_format=torch.channels_last)
                        with torch.autocast(device.type, dtype=amp_dtype(device), enabled=self.amp):
                            model(x, arch)
            model.eval()
            result = evaluate_batches(
                lambda x: model(x, arch), data.val_batches, device, amp=self.amp, channels_last=channels_last
            )
        finally:
            if saved is not None:
                restore_buffers(model, saved)
            model.train(was_training)
        return Evaluation(
            metrics={"val_loss": result.loss, "val_acc": result.acc},
            cost=time.perf_counter() - start,
            info={"bn_recalibrated": recalibrate, "images": result.num_samples},
        )

    def __repr__(self) -> str:
        return (
            f"SupernetEvaluator(space={self.space!r}, supernet={self.supernet!r}, "
            f"bn_recalibration={self.config.bn_recalibration}, val_images={self.config.val_images})"
        )
