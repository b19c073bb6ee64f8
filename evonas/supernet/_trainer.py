"""Training the single-path supernet, with checkpoints, resume and the proxy-validation loop.

Each step takes one batch, asks the sampler for the step's paths (``archs_per_step``
proposals; the fair sampler's are ``num_ops`` paths each), runs forward and backward
for every path on that batch with gradients accumulated, clips the global gradient norm
and takes one SGD step. The learning rate warms up linearly and then follows a cosine
decay over the remaining steps (Loshchilov & Hutter, SGDR, ICLR 2017).

The space is built from the config's ``space`` section and handed to the supernet, the
sampler, the evaluator and the proxy predictor. Training counts how often each op of
each position was trained (it needs a ``fixed_length`` space); the proxy loop draws
architectures by ordinal (it needs an ``enumerable`` space).

Reproducibility: the data order, the augmentation, the sampler and the proxy loop draw
from separate generators derived from the run seed, so two runs with different samplers
see the same batches in the same order. Everything that changes during training (weights,
optimiser state, generators, data position, sampler, proxy memory and predictor) is in
the checkpoint; resuming from it continues exactly as if never interrupted (on the CPU
the weights are bit-identical).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Collection, Sequence, Sized
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import torch
from torch import nn

from evonas._json import jsonable
from evonas.data import DataSplits, ImageTensorDataset, cached_splits
from evonas.errors import ConfigError, RunDirError
from evonas.runs import RunDir
from evonas.spaces import Arch, EnumerableSpace, FixedLengthSpace, SearchSpace, require
from evonas.supernet._config import SupernetEvalConfig, SupernetRunConfig
from evonas.supernet._evaluator import EvalData, SupernetEvaluator
from evonas.supernet._proxy import (
    ProxyMemory,
    fit_proxy_predictor,
    make_proxy_predictor,
)
from evonas.supernet._samplers import Sampler, make_sampler, op_balance
from evonas.supernet._supernets import build_supernet, check_supernet
from evonas.training import amp_dtype, seeded_model, weights_finite

WEIGHTS = "supernet.pt"
PREDICTOR = "predictor.pkl"


@dataclass
class TrainState:
    """Everything about a supernet run besides the torch modules (pickled into checkpoints).

    Attributes:
        sampler: The sampler, with its archive or importance weights.
        rng: Generator of the sampler's draws.
        proxy_rng: Generator of the proxy rounds' architectures and the predictor feedback.
        data_rng: Generator of the epoch permutations.
        aug_state: The augmentation generator's state.
        order: The current epoch's permutation of the training images.
        op_counts: How often each op of each position was trained.
            Shapes: ``(space.length, space.num_choices)``.
        position: Images of ``order`` used so far.
        epoch: Completed passes over the training images.
        step: Optimiser steps taken.
        images: Images forwarded through a path (k paths on one batch count k times).
        trained: The architectures trained so far.
        memory: The proxy loop's evaluations.
        predictor: The latest fitted proxy predictor, or None.
        final_round_done: The round after the last step has run.
        sample_seconds: Time spent proposing architectures.
        train_seconds: Time spent in training steps (sampling included).
        proxy_seconds: Time spent in proxy rounds.
        recent_loss: Mean losses of the latest ``log_every`` steps.
    """

    sampler: Sampler
    rng: np.random.Generator
    proxy_rng: np.random.Generator
    data_rng: np.random.Generator
    aug_state: torch.Tensor
    order: np.ndarray
    op_counts: np.ndarray
    position: int = 0
    epoch: int = 0
    step: int = 0
    images: int = 0
    trained: set[Arch] = field(default_factory=set)
    memory: ProxyMemory = field(default_factory=ProxyMemory)
    predictor: Any = None
    final_round_done: bool = False
    sample_seconds: float = 0.0
    train_seconds: float = 0.0
    proxy_seconds: float = 0.0
    recent_loss: list[float] = field(default_factory=list)


@dataclass
class SupernetResult:
    """What a finished training run reports.

    Attributes:
        model: The trained supernet (on its training device, train mode).
        state: The final :class:`TrainState`.
        summary: JSON-ready figures (see :meth:`SupernetTrainer.summary`).
    """

    model: nn.Module
    state: TrainState
    summary: dict[str, Any]


def lr_at(step: int, total: int, lr: float, min_lr: float, warmup: int) -> float:
    """The learning rate of step ``step`` (0-based): linear warm-up, then cosine decay."""
    if step < warmup:
        return lr * (step + 1) / warmup
    span = max(total - warmup, 1)
    t = min(step - warmup, span) / span
    return min_lr + (lr - min_lr) * 0.5 * (1.0 + math.cos(math.pi * t))


def check_capabilities(config: SupernetRunConfig, space: SearchSpace) -> None:
    """Raise unless ``space`` offers what the run needs: a supernet serving it, the
    sampler's capabilities, ``fixed_length`` for the per-position op counts and, with the
    proxy loop on, ``enumerable`` for drawing its architectures.

    Raises:
        CapabilityError: One line naming what is missing.
        UnknownChoiceError: The supernet or sampler is not registered.
        ConfigError: A sampler parameter is invalid.
    """
    check_supernet(config.supernet, space)
    require(space, {"fixed_length"}, "supernet training (it counts the ops trained per position)")
    if config.proxy.enabled:
        require(space, {"enumerable"}, "the proxy loop (proxy.every > 0)")
    make_sampler(config.sampler.name, space, config.sampler.params)


class SupernetTrainer:
    """Trains a supernet as configured; see the module docstring.

    Everything that can fail on bad input (capabilities, sampler and predictor names and
    parameters, device, data) fails in the constructor, before any training.

    Args:
        config: The run config.
        splits: The data (default: the config's dataset, loaded once per process).
        run: Run directory for the log and checkpoints (None: in memory).
        progress: Show a tqdm bar.
        on_step: Called with the step count after every step and its bookkeeping
            (a way to stop a run from outside by raising).
        holdout: Architectures the proxy loop never evaluates, e.g. the cells a
            predictor is tested on afterwards, so that several runs can be compared on
            the same unseen cells (the supernet still trains on them).

    Raises:
        CapabilityError: The space lacks what the supernet, the sampler or the proxy
            loop needs.
        ConfigError: The device is not available, the training split is smaller than a
            batch, or a sampler / predictor parameter is invalid.
    """

    def __init__(
        self,
        config: SupernetRunConfig,
        splits: DataSplits | None = None,
        run: RunDir | None = None,
        progress: bool = False,
        on_step: Callable[[int], None] | None = None,
        holdout: Collection[Sequence[int]] = (),
    ) -> None:
        self.config = config
        self.space: SearchSpace = config.space.build("space")
        check_capabilities(config, self.space)
        held = {self.space.validate(a) for a in holdout}
        self._proxy_pool = np.empty(0, dtype=np.int64)
        if config.proxy.enabled:
            # the ordinals the proxy loop draws from (all of them without a holdout: the same draws)
            space = cast(EnumerableSpace, self.space)
            self._proxy_pool = np.setdiff1d(
                np.arange(space.size), np.asarray(sorted(space.ordinal(a) for a in held), dtype=np.int64)
            )
            make_proxy_predictor(config.proxy.predictor, config.proxy.predictor_params, self.space)  # names fail here
        tc = config.train
        self.device, self.amp, self.channels_last = tc.compute.resolve()
        self.splits = cached_splits(config.dataset) if splits is None else splits
        self._num_train = len(cast(Sized, self.splits.train))
        if self._num_train < tc.batch_size:
            raise ConfigError(
                f"invalid value {tc.batch_size!r} for 'train.batch_size'; expected at most the "
                f"{self._num_train} training images"
            )
        if config.proxy.enabled and len(cast(Sized, self.splits.val)) == 0:
            raise ConfigError("the proxy loop needs a validation split; set dataset.val_fraction > 0")
        self.run = run
        self.progress = progress
        self.on_step = on_step
        self.model = seeded_model(
            lambda: build_supernet(config.supernet, self.space, self.splits.num_classes, self.splits.in_channels),
            config.seed,
        ).to(self.device)
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.optimizer = tc.optim.sgd(self.model.parameters())
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp and self.device.type == "cuda")
        self.criterion = nn.CrossEntropyLoss(label_smoothing=tc.optim.label_smoothing)
        seeds = np.random.SeedSequence(config.seed).spawn(4)
        aug_seed = int(seeds[3].generate_state(1)[0])
        train = self.splits.train
        # the training images with an augmentation generator of this run (None: plain items)
        self._images = train.reseeded(aug_seed) if isinstance(train, ImageTensorDataset) else None
        self._seeds = seeds
        self._eval_data: EvalData | None = None

    # --------------------------------------------------------------------------- state
    def initial_state(self) -> TrainState:
        """The state before the first step."""
        seeds = self._seeds
        data_rng = np.random.default_rng(seeds[2])
        fixed = cast(FixedLengthSpace, self.space)
        aug = self._images.generator.get_state() if self._images is not None else torch.empty(0, dtype=torch.uint8)
        return TrainState(
            sampler=make_sampler(self.config.sampler.name, self.space, self.config.sampler.params),
            rng=np.random.default_rng(seeds[0]),
            proxy_rng=np.random.default_rng(seeds[1]),
            data_rng=data_rng,
            aug_state=aug,
            order=data_rng.permutation(self._num_train),
            op_counts=np.zeros((fixed.length, fixed.num_choices), dtype=np.int64),
        )

    def checkpoint(self, state: TrainState) -> dict[str, Any]:
        """The checkpoint payload of ``state`` and the current modules."""
        if self._images is not None:
            state.aug_state = self._images.generator.get_state()
        return {
            "state": state,
            "model": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
        }

    def restore(self, payload: dict[str, Any]) -> TrainState:
        """Load a checkpoint payload into the modules and return its state.

        Raises:
            RunDirError: The checkpoint belongs to another configuration.
        """
        try:
            self.model.load_state_dict(payload["model"])
            self.optimizer.load_state_dict(payload["optimizer"])
            self.scaler.load_state_dict(payload["scaler"])
            state: TrainState = payload["state"]
        except (KeyError, RuntimeError, ValueError) as exc:
            raise RunDirError(f"the checkpoint does not fit this run ({type(exc).__name__}: {exc})") from None
        if self._images is not None:
            self._images.generator.set_state(state.aug_state)
        return state

    # ---------------------------------------------------------------------------- run
    def train(self, state: TrainState | None = None) -> SupernetResult:
        """Run (or continue from ``state``) until ``train.steps`` steps and the final proxy round are done."""
        state = self.initial_state() if state is None else state
        tc = self.config.train
        threads = torch.get_num_threads()
        if tc.compute.num_threads is not None:
            torch.set_num_threads(tc.compute.num_threads)
        bar = None
        if self.progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=tc.steps, initial=state.step, desc="supernet", unit="step")
        try:
            with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
                torch.manual_seed(self.config.seed)
                diverged = False
                while state.step < tc.steps:
                    self._step(state)
                    if bar is not None:
                        bar.update(1)
                        if state.step % 10 == 0 and state.recent_loss:
                            bar.set_postfix(loss=f"{np.mean(state.recent_loss):.3f}", archs=len(state.trained))
                    self._after_step(state)
                    diverged = self._diverged(state)
                    if diverged:
                        break
                if (
                    self.config.proxy.enabled and self.config.proxy.final_round and not state.final_round_done
                    and not diverged
                ):
                    self._proxy_round(state, final=True)
                    state.final_round_done = True
                    self._save(state)
        finally:
            if bar is not None:
                bar.close()
            torch.set_num_threads(threads)
        return SupernetResult(self.model, state, self.summary(state))

    def _diverged(self, state: TrainState) -> bool:
        """Whether the weights are no longer finite (checked only after a non-finite loss).

        Training stops there: no later step can bring the weights back, and the run's
        summary then carries a non-finite ``final_loss``, which makes it a failure.
        """
        if not state.recent_loss or math.isfinite(state.recent_loss[-1]):
            return False
        if weights_finite(self.model):
            return False  # e.g. an AMP step the gradient scaler skipped
        if self.run is not None:
            self.run.append({"type": "diverged", "step": state.step})
        state.recent_loss[:] = [math.nan]
        return True

    def _after_step(self, state: TrainState) -> None:
        cfg = self.config
        step = state.step
        if self.run is not None and (step % cfg.log_every == 0 or step == cfg.train.steps):
            self.run.append(jsonable({
                "type": "step",
                "step": step,
                "loss": float(np.mean(state.recent_loss)) if state.recent_loss else None,
                "lr": self.optimizer.param_groups[0]["lr"],
                "distinct_archs": len(state.trained),
                "images": state.images,
                "train_seconds": round(state.train_seconds, 3),
            }))
        if step in cfg.proxy.round_steps(cfg.train.steps):
            self._proxy_round(state, final=False)
        if step % cfg.checkpoint_every == 0 or step == cfg.train.steps:
            self._save(state)
        if self.on_step is not None:
            self.on_step(step)

    def _save(self, state: TrainState) -> None:
        if self.run is not None:
            self.run.save_checkpoint(self.checkpoint(state))

    def _next_batch(self, state: TrainState) -> tuple[torch.Tensor, torch.Tensor]:
        b = self.config.train.batch_size
        if state.position + b > len(state.order):
            state.order = state.data_rng.permutation(self._num_train)
            state.position = 0
            state.epoch += 1
        positions = state.order[state.position : state.position + b]
        state.position += b
        if self._images is not None:
            x, y = self._images.batch(torch.as_tensor(positions))
        else:
            items = [self.splits.train[int(i)] for i in positions]
            x, y = torch.stack([it[0] for it in items]), torch.as_tensor([int(it[1]) for it in items])
        x = x.to(self.device, non_blocking=True)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, y.to(self.device, non_blocking=True)

    def _step(self, state: TrainState) -> None:
        tc = self.config.train
        t0 = time.perf_counter()
        paths: list[Arch] = []
        for _ in range(tc.archs_per_step):
            paths.extend(state.sampler.propose(state.rng))
        t1 = time.perf_counter()
        x, y = self._next_batch(state)
        lr = lr_at(state.step, tc.steps, tc.optim.lr, tc.optim.min_lr, tc.warmup_steps)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        total = torch.zeros((), device=self.device)
        for arch in paths:
            with torch.autocast(self.device.type, dtype=amp_dtype(self.device), enabled=self.amp):
                loss = self.criterion(self.model(x, arch), y)
            # FairNAS accumulates the k paths' gradients without averaging, so every op
            # gets the gradient scale of single-path training.
            self.scaler.scale(loss).backward()
            total += loss.detach().float()
        if tc.optim.grad_clip is not None:
            self.scaler.unscale_(self.optimizer)
            tc.optim.clip(self.model)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        mean_loss = float(total) / len(paths)
        t2 = time.perf_counter()
        state.sample_seconds += t1 - t0
        state.train_seconds += t2 - t0
        state.images += len(paths) * int(y.shape[0])
        for arch in paths:
            state.trained.add(tuple(arch))
            state.op_counts[np.arange(len(arch)), list(arch)] += 1
        state.recent_loss.append(mean_loss)
        del state.recent_loss[: -self.config.log_every]
        state.step += 1

    # ---------------------------------------------------------------------- proxy loop
    def evaluator(self, config: SupernetEvalConfig | None = None) -> SupernetEvaluator:
        """A :class:`SupernetEvaluator` over the live supernet (fresh cache), with the
        run's evaluation settings or ``config``; the run's evaluation batches are built
        once and shared by every evaluator that draws the same ones."""
        run = self.config.evaluation
        config = run if config is None else config
        data = None
        if (config.bn_batches, config.val_images, config.batch_size) == (run.bn_batches, run.val_images, run.batch_size):
            if self._eval_data is None:
                self._eval_data = EvalData.build(self.splits, run, self.config.seed)
            data = self._eval_data
        return SupernetEvaluator.attached(
            self.model, self.space, self.config.supernet, self.splits, config, dataset=self.config.dataset,
            amp=self.amp, channels_last=self.channels_last, data_seed=self.config.seed, data=data,
        )

    def _proxy_round(self, state: TrainState, final: bool) -> None:
        pc = self.config.proxy
        start = time.perf_counter()
        pool = self._proxy_pool
        space = cast(EnumerableSpace, self.space)
        chosen = pool[state.proxy_rng.choice(len(pool), size=min(pc.archs_per_round, len(pool)), replace=False)]
        archs = [space.from_ordinal(int(o)) for o in chosen]
        evaluator = self.evaluator()
        evals = [evaluator.evaluate(a) for a in archs]
        losses = [e.metrics["val_loss"] for e in evals]
        stored = state.memory.add_round(archs, losses, state.step, pc.normalize)
        fitted = False
        if len(state.memory) >= pc.min_memory and (final or state.sampler.uses_feedback):
            pairs = state.memory.pairs(pc.memory_size)
            state.predictor = fit_proxy_predictor(
                pairs, pc.predictor, pc.predictor_params, seed=self.config.seed, ensemble=pc.ensemble,
                space=self.space,
            )
            state.sampler.update(state.predictor, pairs, state.proxy_rng)
            fitted = True
        self.model.train()
        state.proxy_seconds += time.perf_counter() - start
        if self.run is not None:
            self.run.append(jsonable({
                "type": "proxy",
                "step": state.step,
                "final": final,
                "archs": [list(a) for a in archs],
                "val_loss": losses,
                "val_acc": [e.metrics["val_acc"] for e in evals],
                "stored": stored,
                "memory": len(state.memory),
                "fitted": fitted,
                "sampler": state.sampler.summary() if fitted else None,
            }))

    # ------------------------------------------------------------------------- summary
    def summary(self, state: TrainState) -> dict[str, Any]:
        """Figures of the run so far.

        ``throughput_img_s`` counts path-images per second of training steps (sampling
        included); ``sampling_overhead`` is the share of that time spent proposing
        architectures; ``op_balance`` is least- over most-trained op count.
        """
        secs = state.train_seconds
        return {
            "steps": state.step,
            "epochs": round(state.epoch + state.position / max(self._num_train, 1), 3),
            "images": state.images,
            "distinct_archs": len(state.trained),
            "op_balance": op_balance(state.op_counts),
            "throughput_img_s": state.images / secs if secs > 0 else math.nan,
            "sampling_overhead": state.sample_seconds / secs if secs > 0 else math.nan,
            "train_seconds": secs,
            "proxy_seconds": state.proxy_seconds,
            "proxy_memory": len(state.memory),
            "predictor_fitted": state.predictor is not None,
            "final_loss": float(np.mean(state.recent_loss)) if state.recent_loss else math.nan,
            "sampler": {"name": self.config.sampler.name, **state.sampler.summary()},
        }
