"""The training loop shared by the neural predictors: seeded, early-stopped, zero_grad each step.

Everything random in a fit (weight initialisation, dropout, batch order) draws from
torch's generator *inside* :func:`seeded_torch`, which forks the global RNG state and
restores it afterwards, so fitting never disturbs — nor depends on — the caller's random
state.
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Callable, Iterator

import numpy as np
import torch
from torch import nn


@contextlib.contextmanager
def seeded_torch(seed: int) -> Iterator[torch.Generator]:
    """Fork torch's CPU RNG, seed it with ``seed``, restore it on exit.

    Yields a :class:`torch.Generator` seeded from ``seed`` for explicit draws (batch order).
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield torch.Generator().manual_seed(seed + 1)


def holdout_split(
    n: int, val_fraction: float, rng: np.random.Generator, min_val: int = 5
) -> tuple[np.ndarray, np.ndarray]:
    """Split ``range(n)`` into training and early-stopping positions.

    The held-out slice has ``round(val_fraction * n)`` positions. When that is fewer than
    ``min_val`` (or ``val_fraction`` is 0) it is empty and training runs for all epochs:
    stopping on the loss of one or two architectures is noise, not a signal.
    """
    n_val = int(round(val_fraction * n)) if val_fraction > 0 else 0
    if n_val < min_val or n - n_val < 1:
        n_val = 0
    perm = rng.permutation(n)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def train_early_stopping(
    module: nn.Module,
    batch_loss: Callable[[torch.Tensor], torch.Tensor],
    n_train: int,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    weight_decay: float,
    generator: torch.Generator,
    val_loss: Callable[[], float] | None = None,
    patience: int = 20,
) -> int:
    """Adam on mini-batches with early stopping on a held-out loss.

    Args:
        module: The network; its best weights (lowest ``val_loss``) are restored at the end.
        batch_loss: Loss of the training positions it is given (a 1-d long tensor).
        n_train: Number of training positions.
        epochs: Most passes over the training positions.
        batch_size: Positions per step.
        lr: Adam learning rate.
        weight_decay: Adam (L2) weight decay.
        generator: Source of the batch order.
        val_loss: Held-out loss, evaluated after every epoch (``None``: no early stopping).
        patience: Epochs without improvement of ``val_loss`` before stopping.

    Returns:
        The number of epochs run.
    """
    optimizer = torch.optim.Adam(module.parameters(), lr=lr, weight_decay=weight_decay)
    best = math.inf
    best_state = None
    stale = 0
    epoch = 0
    for epoch in range(1, epochs + 1):
        module.train()
        order = torch.randperm(n_train, generator=generator)
        for start in range(0, n_train, batch_size):
            optimizer.zero_grad(set_to_none=True)
            loss = batch_loss(order[start : start + batch_size])
            loss.backward()
            optimizer.step()
        if val_loss is None:
            continue
        module.eval()
        with torch.no_grad():
            current = float(val_loss())
        if current < best - 1e-12:
            best, stale = current, 0
            best_state = copy.deepcopy(module.state_dict())
        else:
            stale += 1
            if stale >= patience:
                break
    if best_state is not None:
        module.load_state_dict(best_state)
    module.eval()
    return epoch
