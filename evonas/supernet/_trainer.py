"""Training the single-path supernet, with checkpoints, resume and the proxy-validation loop.

Each step takes one batch, asks the sampler for the step's paths (``archs_per_step``
proposals; the fair sampler's are ``num_ops`` paths each), runs forward and backward
for every path on that batch with gradients accumulated, clips the global gradient norm
and takes one SGD step. The learning rate warms up linearly and then follows a cosine
decay over the remaining steps (Loshchilov & Hutter, SGDR, ICLR 2017).

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
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from evonas.data import DataSplits
from evonas.errors import ConfigError, RunDirError
from evonas.runs import RunDir
from evonas.spaces import Arch, NB201Space
from evonas.supernet._config import SupernetEvalConfig, SupernetRunConfig
from evonas.supernet._evaluator import EvalData, SupernetEvaluator
from evonas.supernet._network import SuperNet
from evonas.supernet._proxy import ProxyMemory, fit_proxy_predictor
from evonas.supernet._samplers import Sampler, make_sampler, op_balance
from evonas.training import resolve_channels_last, seeded_model, select_device

WEIGHTS = "supernet.pt"
PREDICTOR = "predictor.pkl"


@dataclass
class TrainState:
    """Everything about a supernet run besides the torch modules (pickled into checkpoints)."""

    sampler: Sampler
    rng: np.random.Generator  # sampler draws
    proxy_rng: np.random.Generator  # architectures of the proxy rounds, predictor feedback
    data_rng: np.random.Generator  # epoch permutations
    aug_state: torch.Tensor  # the augmentation generator's state
    order: np.ndarray
    position: int = 0
    epoch: int = 0
    step: int = 0
    images: int = 0  # images forwarded through a path (k paths on one batch count k times)
    trained: set[int] = field(default_factory=set)  # ordinals of architectures trained
    op_counts: np.ndarray = field(default_factory=lambda: np.zeros((6, 5), dtype=np.int64))
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

    model: SuperNet
    state: TrainState
    summary: dict[str, Any]


def lr_at(step: int, total: int, lr: float, min_lr: float, warmup: int) -> float:
    """The learning rate of step ``step`` (0-based): linear warm-up, then cosine decay."""
    if step < warmup:
        return lr * (step + 1) / warmup
    span = max(total - warmup, 1)
    t = min(step - warmup, span) / span
    return min_lr + (lr - min_lr) * 0.5 * (1.0 + math.cos(math.pi * t))


class SupernetTrainer:
    """Trains a :class:`SuperNet` as configured; see the module docstring.

    Args:
        config: The run config.
        splits: The data (default: ``config.dataset.load()``).
        run: Run directory for the log, checkpoints and final files (None: in memory).
        progress: Show a tqdm bar.
        on_step: Called with the step count after every step and its bookkeeping
            (a way to stop a run from outside by raising).
        holdout: Architectures the proxy loop never evaluates, e.g. the cells a
            predictor is tested on afterwards, so that several runs can be compared on
            the same unseen cells (the supernet still trains on them).

    Raises:
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
        self.space = NB201Space()
        held = [self.space.ordinal(self.space.validate(a)) for a in holdout]
        # ordinals the proxy loop draws from (all of them without a holdout: the same draws)
        self._proxy_pool = np.setdiff1d(np.arange(self.space.size), np.asarray(held, dtype=np.int64))
        self.splits = config.dataset.load() if splits is None else splits
        if len(self.splits.train) < config.train.batch_size:
            raise ConfigError(
                f"train.batch_size={config.train.batch_size} exceeds the {len(self.splits.train)} training images"
            )
        if len(self.splits.val) == 0 and (config.proxy.every > 0):
            raise ConfigError("the proxy loop needs a validation split; set dataset.val_fraction > 0")
        make_sampler(config.sampler.name, self.space, config.sampler.params)  # validate early
        if config.proxy.every > 0:
            from predictors import make_predictor

            make_predictor(config.proxy.predictor, **config.proxy.predictor_params)  # unknown names fail here
        self.run = run
        self.progress = progress
        self.on_step = on_step
        tc = config.train
        self.device = select_device(tc.device)
        self.amp = self.device.type == "cuda" if tc.amp == "auto" else bool(tc.amp)
        self.channels_last = resolve_channels_last(tc.channels_last, self.device)
        self.model = seeded_model(
            lambda: SuperNet(
                config.supernet.channels, config.supernet.cells_per_stage,
                self.splits.num_classes, self.splits.in_channels,
            ),
            config.seed,
        ).to(self.device)
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.optimizer = torch.optim.SGD(
            self.model.parameters(), lr=tc.lr, momentum=tc.momentum, nesterov=tc.nesterov, weight_decay=tc.weight_decay
        )
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp and self.device.type == "cuda")
        self.criterion = nn.CrossEntropyLoss(label_smoothing=tc.label_smoothing)
        train = self.splits.train
        self._augmenting = hasattr(train, "reseeded")
        seeds = np.random.SeedSequence(config.seed).spawn(4)
        aug_seed = int(seeds[3].generate_state(1)[0])
        self.train_data = train.reseeded(aug_seed) if self._augmenting else train
        self._seeds = seeds
        self._eval_data: EvalData | None = None

    # --------------------------------------------------------------------------- state
    def initial_state(self) -> TrainState:
        """The state before the first step."""
        seeds = self._seeds
        data_rng = np.random.default_rng(seeds[2])
        n = len(self.train_data)
        aug = self.train_data.generator.get_state() if self._augmenting else torch.empty(0, dtype=torch.uint8)
        return TrainState(
            sampler=make_sampler(self.config.sampler.name, self.space, self.config.sampler.params),
            rng=np.random.default_rng(seeds[0]),
            proxy_rng=np.random.default_rng(seeds[1]),
            data_rng=data_rng,
            aug_state=aug,
            order=data_rng.permutation(n),
            op_counts=np.zeros((self.space.length, self.space.num_choices), dtype=np.int64),
        )

    def checkpoint(self, state: TrainState) -> dict[str, Any]:
        """The checkpoint payload of ``state`` and the current modules."""
        if self._augmenting:
            state.aug_state = self.train_data.generator.get_state()
        return {
            "state": state,
            "model": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
        }

    def restore(self, payload: dict[str, Any]) -> TrainState:
        """Load a checkpoint payload into the modules and return its state."""
        try:
            self.model.load_state_dict(payload["model"])
            self.optimizer.load_state_dict(payload["optimizer"])
            self.scaler.load_state_dict(payload["scaler"])
            state: TrainState = payload["state"]
        except (KeyError, RuntimeError, ValueError) as exc:
            raise RunDirError(f"the checkpoint does not fit this run ({type(exc).__name__}: {exc})") from None
        if self._augmenting:
            self.train_data.generator.set_state(state.aug_state)
        return state

    # ---------------------------------------------------------------------------- run
    def train(self, state: TrainState | None = None) -> SupernetResult:
        """Run (or continue from ``state``) until ``train.steps`` steps and the final proxy round are done."""
        state = self.initial_state() if state is None else state
        tc = self.config.train
        threads = torch.get_num_threads()
        if tc.num_threads is not None:
            torch.set_num_threads(tc.num_threads)
        bar = None
        if self.progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=tc.steps, initial=state.step, desc="supernet", unit="step")
        try:
            with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
                torch.manual_seed(self.config.seed)
                while state.step < tc.steps:
                    self._step(state)
                    if bar is not None:
                        bar.update(1)
                        if state.step % 10 == 0 and state.recent_loss:
                            bar.set_postfix(loss=f"{np.mean(state.recent_loss):.3f}", archs=len(state.trained))
                    self._after_step(state)
                if self.config.proxy.every > 0 and self.config.proxy.final_round and not state.final_round_done:
                    self._proxy_round(state, final=True)
                    state.final_round_done = True
                    self._save(state)
        finally:
            if bar is not None:
                bar.close()
            torch.set_num_threads(threads)
        return SupernetResult(self.model, state, self.summary(state))

    def _after_step(self, state: TrainState) -> None:
        cfg = self.config
        step = state.step
        if self.run is not None and (step % cfg.log_every == 0 or step == cfg.train.steps):
            self.run.append({
                "type": "step",
                "step": step,
                "loss": float(np.mean(state.recent_loss)) if state.recent_loss else None,
                "lr": self.optimizer.param_groups[0]["lr"],
                "distinct_archs": len(state.trained),
                "images": state.images,
                "train_seconds": round(state.train_seconds, 3),
            })
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
            state.order = state.data_rng.permutation(len(self.train_data))
            state.position = 0
            state.epoch += 1
        positions = state.order[state.position : state.position + b]
        state.position += b
        if hasattr(self.train_data, "batch"):
            x, y = self.train_data.batch(positions)
        else:
            items = [self.train_data[int(i)] for i in positions]
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
        lr = lr_at(state.step, tc.steps, tc.lr, tc.min_lr, tc.warmup_steps)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        dtype = torch.float16 if self.device.type == "cuda" else torch.bfloat16
        total = torch.zeros((), device=self.device)
        for arch in paths:
            with torch.autocast(self.device.type, dtype=dtype, enabled=self.amp):
                loss = self.criterion(self.model(x, arch), y)
            # FairNAS accumulates the k paths' gradients without averaging, so every op
            # gets the gradient scale of single-path training.
            self.scaler.scale(loss).backward()
            total += loss.detach().float()
        if tc.grad_clip is not None:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), tc.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        mean_loss = float(total) / len(paths)
        t2 = time.perf_counter()
        state.sample_seconds += t1 - t0
        state.train_seconds += t2 - t0
        state.images += len(paths) * int(y.shape[0])
        for arch in paths:
            state.trained.add(self.space.ordinal(arch))
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
            self.model, self.splits, config, dataset=self.config.dataset,
            amp=self.amp, channels_last=self.channels_last, data_seed=self.config.seed, data=data,
        )

    def _uses_feedback(self, sampler: Sampler) -> bool:
        inner = getattr(sampler, "base", sampler)
        return type(inner).update is not Sampler.update

    def _proxy_round(self, state: TrainState, final: bool) -> None:
        pc = self.config.proxy
        start = time.perf_counter()
        pool = self._proxy_pool
        chosen = pool[state.proxy_rng.choice(len(pool), size=min(pc.archs_per_round, len(pool)), replace=False)]
        archs = [self.space.from_ordinal(int(o)) for o in chosen]
        evaluator = self.evaluator()
        evals = evaluator.evaluate_many(archs)
        losses = [e.metrics["val_loss"] for e in evals]
        stored = state.memory.add_round(archs, losses, state.step, pc.normalize)
        fitted = False
        if len(state.memory) >= pc.min_memory and (final or self._uses_feedback(state.sampler)):
            pairs = state.memory.pairs(pc.memory_size)
            state.predictor = fit_proxy_predictor(
                pairs, pc.predictor, pc.predictor_params, seed=self.config.seed, ensemble=pc.ensemble
            )
            state.sampler.update(state.predictor, pairs, state.proxy_rng)
            fitted = True
        self.model.train()
        state.proxy_seconds += time.perf_counter() - start
        if self.run is not None:
            self.run.append({
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
            })

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
            "epochs": round(state.epoch + state.position / max(len(self.train_data), 1), 3),
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
