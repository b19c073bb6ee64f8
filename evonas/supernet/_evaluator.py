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
from functools import lru_cache
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from evonas.data import DatasetConfig, DataSplits
from evonas.evaluation import Evaluation
from evonas.spaces import Arch, NB201Space
from evonas.supernet._config import SupernetEvalConfig, SupernetSpec
from evonas.supernet._network import SuperNet, bn_buffers, cumulative_bn, restore_buffers
from evonas.training import resolve_channels_last, select_device

METRIC_NAMES: tuple[str, ...] = ("val_loss", "val_acc")


@lru_cache(maxsize=2)
def _load_splits(config: DatasetConfig) -> DataSplits:
    return config.load()


@dataclass(frozen=True, eq=False)
class EvalData:
    """The fixed batches of supernet evaluation.

    Attributes:
        bn_batches: Non-augmented training batches for batch-norm re-estimation.
        val_batches: Validation batches.
    """

    bn_batches: tuple[tuple[torch.Tensor, torch.Tensor], ...]
    val_batches: tuple[tuple[torch.Tensor, torch.Tensor], ...]

    @property
    def num_val(self) -> int:
        return sum(int(y.shape[0]) for _, y in self.val_batches)

    @classmethod
    def build(cls, splits: DataSplits, config: SupernetEvalConfig, seed: int) -> EvalData:
        """Draw the seeded subsets of ``splits``: ``bn_batches`` training batches and
        ``val_images`` validation images (all of them when ``None``)."""
        rng = np.random.default_rng([seed, 7])
        train = splits.train.reseeded(0, augment=False) if hasattr(splits.train, "reseeded") else splits.train
        n_bn = min(len(train), config.bn_batches * config.batch_size)
        bn_pos = np.sort(rng.choice(len(train), size=n_bn, replace=False))
        n_val = len(splits.val) if config.val_images is None else min(config.val_images, len(splits.val))
        val_pos = np.sort(rng.choice(len(splits.val), size=n_val, replace=False))
        return cls(
            bn_batches=_batches(train, bn_pos, config.batch_size),
            val_batches=_batches(splits.val, val_pos, config.batch_size),
        )


def _batches(dataset: Any, positions: np.ndarray, batch_size: int) -> tuple[tuple[torch.Tensor, torch.Tensor], ...]:
    out = []
    for start in range(0, len(positions), batch_size):
        chunk = positions[start : start + batch_size]
        if hasattr(dataset, "batch"):
            x, y = dataset.batch(chunk)
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
    they are restored afterwards.

    ``evaluate(arch, seed)`` does not depend on ``seed``: the batches are fixed by
    ``data_seed`` so that architectures are compared on the same images.

    Args:
        weights: The supernet's ``state_dict``.
        spec: Its size.
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
    """

    metric_names: tuple[str, ...] = METRIC_NAMES

    def __init__(
        self,
        weights: dict[str, torch.Tensor],
        spec: SupernetSpec,
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
        self.weights = {k: v.detach().cpu() for k, v in weights.items()}
        self.spec = spec
        self.dataset = dataset
        self.config = SupernetEvalConfig() if config is None else config
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.device = device
        self.amp = amp
        self.channels_last = channels_last
        self.data_seed = data_seed
        self.num_threads = num_threads
        self.space = NB201Space()
        self._model: SuperNet | None = None
        self._data: EvalData | None = None
        self._splits: DataSplits | None = None
        self._cache: collections.OrderedDict[Arch, Evaluation] = collections.OrderedDict()
        self.hits = 0
        self.misses = 0

    @classmethod
    def attached(
        cls,
        model: SuperNet,
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
        of the model's weights."""
        spec = SupernetSpec(channels=model.C, cells_per_stage=model.N)
        self = cls.__new__(cls)
        self.weights = {}
        self.spec = spec
        self.dataset = dataset if dataset is not None else DatasetConfig()
        self.config = config
        self.num_classes, self.in_channels = model.num_classes, model.in_channels
        first = next(model.parameters())
        self.device = str(first.device)
        if channels_last is None:
            # a conv weight with several input channels and a spatial kernel: for it the two
            # memory formats differ (a 1-channel stem's weight is both at once)
            conv = next((p for p in model.parameters() if p.dim() == 4 and p.shape[1] > 1 and p.shape[2] > 1), None)
            channels_last = conv is not None and not conv.is_contiguous() and conv.is_contiguous(
                memory_format=torch.channels_last
            )
        self.amp, self.channels_last, self.data_seed, self.num_threads = amp, channels_last, data_seed, None
        self.space = NB201Space()
        self._model = model
        self._splits = splits
        self._data = data
        self._cache = collections.OrderedDict()
        self.hits = self.misses = 0
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
    def model(self) -> SuperNet:
        """The supernet (built and loaded on first use in this process)."""
        if self._model is None:
            device = select_device(self.device)
            net = SuperNet(self.spec.channels, self.spec.cells_per_stage, self.num_classes, self.in_channels)
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
            splits = self._splits if self._splits is not None else _load_splits(self.dataset)
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

    def evaluate_many(self, archs: Sequence[Sequence[int]]) -> list[Evaluation]:
        """:meth:`evaluate` for each of ``archs``, in order."""
        return [self.evaluate(a) for a in archs]

    def _evaluate(self, arch: Arch) -> Evaluation:
        start = time.perf_counter()
        model = self.model()
        data = self.data()
        device = next(model.parameters()).device
        recalibrate = self.config.bn_recalibration
        saved = bn_buffers(model) if recalibrate else None
        was_training = model.training
        dtype = torch.float16 if device.type == "cuda" else torch.bfloat16
        total_loss, correct, count = 0.0, 0, 0
        try:
            with torch.no_grad():
                if recalibrate:
                    model.train()
                    with cumulative_bn(model):
                        for x, _ in data.bn_batches:
                            with torch.autocast(device.type, dtype=dtype, enabled=self.amp):
                                model(self._to(x, device), arch)
                model.eval()
                for x, y in data.val_batches:
                    y = y.to(device)
                    with torch.autocast(device.type, dtype=dtype, enabled=self.amp):
                        logits = model(self._to(x, device), arch)
                    logits = logits.float()
                    total_loss += float(nn.functional.cross_entropy(logits, y, reduction="sum"))
                    correct += int((logits.argmax(dim=1) == y).sum())
                    count += int(y.shape[0])
        finally:
            if saved is not None:
                restore_buffers(model, saved)
            model.train(was_training)
        loss = total_loss / count if count else float("nan")
        acc = 100.0 * correct / count if count else float("nan")
        return Evaluation(
            metrics={"val_loss": loss, "val_acc": acc},
            cost=time.perf_counter() - start,
            info={"bn_recalibrated": recalibrate, "images": count},
        )

    def _to(self, x: torch.Tensor, device: torch.device) -> torch.Tensor:
        x = x.to(device, non_blocking=True)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def __repr__(self) -> str:
        return (
            f"SupernetEvaluator(C={self.spec.channels}, N={self.spec.cells_per_stage}, "
            f"bn_recalibration={self.config.bn_recalibration}, val_images={self.config.val_images})"
        )
