"""Differentiable search methods: one step each on the mixed supernet, chosen by name.

Every method alternates an architecture update of ``alpha`` with a weight update of the
network on the two halves of the training set (DARTS' bilevel split): a step gets one
batch of each half, first updates ``alpha`` with the method's architecture gradient and
the ``arch_optimizer`` (Adam in the papers), then the weights with
``grad_w L_train(w, alpha)`` and the ``weight_optimizer`` (SGD with momentum), the
weight gradients' global norm clipped. :data:`DNAS_METHODS` maps a name to a
:class:`DNASMethod` (its ``Config`` and its ``step``):

- ``darts1``: DARTS, first order (Liu, Simonyan & Yang, ICLR 2019);
- ``darts2``: DARTS, second order (the unrolled one-step approximation);
- ``milenas``: MiLeNAS, mixed-level (He, Wang, Zhang & Wang, CVPR 2020);
- ``nadarts``: neighbourhood-aware DARTS (Wang, Cao, Li & Kitani, BMVC 2021).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np
import torch
import torch.nn.functional as F

from evonas._registry import Registry
from evonas.config import Checked, Range
from evonas.dnas._mixed import NUM_EDGES, NUM_OPS, MixedSuperNet
from evonas.errors import PluginError

Batch = tuple[torch.Tensor, torch.Tensor]
"""Images and labels, on the model's device. Shapes: ``(B, C, H, W)`` and ``(B,)``."""


@dataclass
class StepContext:
    """What a search step needs besides the model and its two batches.

    Attributes:
        weight_optimizer: Optimiser of ``model.weight_parameters()``; its first group's
            learning rate is the current ``eta_w``.
        arch_optimizer: Optimiser of ``model.arch_parameters()``.
        rng: Generator of the step's random draws (NA-DARTS's neighbour sample).
        grad_clip: Clip the weight gradients' global L2 norm to this value (None: no clipping).
        amp: Run forward passes under bfloat16 autocast. Bfloat16 keeps float32's
            exponent range, so the steps' gradient arithmetic needs no loss scaling.
        label_smoothing: Label smoothing of the losses on training batches.
    """

    weight_optimizer: torch.optim.Optimizer
    arch_optimizer: torch.optim.Optimizer
    rng: np.random.Generator
    grad_clip: float | None = 5.0
    amp: bool = False
    label_smoothing: float = 0.0

    @property
    def weight_lr(self) -> float:
        """The weights' current learning rate ``eta_w``."""
        return float(self.weight_optimizer.param_groups[0]["lr"])


@dataclass(frozen=True)
class StepStats:
    """Losses seen by one step.

    Attributes:
        train_loss: ``L_train`` of the weight update (before it).
        val_loss: The validation loss the architecture update differentiated (DARTS
            second order: at the virtual weights ``w'``; NA-DARTS: the neighbourhood mean).
    """

    train_loss: float
    val_loss: float


def batch_loss(
    model: MixedSuperNet, batch: Batch, ctx: StepContext, weights: torch.Tensor | None = None, train: bool = False
) -> torch.Tensor:
    """Mean cross-entropy of ``model`` on ``batch`` (under autocast when ``ctx.amp``; the
    loss of half-precision logits is computed in float32).

    Args:
        model: The supernet.
        batch: Images and labels.
        ctx: The step's settings.
        weights: Explicit edge weights (see :meth:`MixedSuperNet.forward`).
        train: A training batch (label smoothing applies).
    """
    x, y = batch
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=ctx.amp):
        logits = model(x, weights)
    return F.cross_entropy(full_precision(logits), y, label_smoothing=ctx.label_smoothing if train else 0.0)


def full_precision(logits: torch.Tensor) -> torch.Tensor:
    """``logits`` in float32 when autocast made them half precision, else unchanged."""
    return logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits


def weight_step(model: MixedSuperNet, train_batch: Batch, ctx: StepContext) -> float:
    """``w <- w - eta_w grad_w L_train(w, alpha)`` through ``ctx.weight_optimizer`` (with
    clipping); ``alpha`` gets no gradient. Returns ``L_train`` before the update."""
    model.train()
    ctx.weight_optimizer.zero_grad(set_to_none=True)
    loss = batch_loss(model, train_batch, ctx, model.edge_weights().detach(), train=True)
    loss.backward()
    if ctx.grad_clip is not None:
        torch.nn.utils.clip_grad_norm_(model.weight_parameters(), ctx.grad_clip)
    ctx.weight_optimizer.step()
    return float(loss.detach())


def _grads(loss: torch.Tensor, params: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """``d loss / d params``, zeros for parameters the loss does not depend on."""
    found = torch.autograd.grad(loss, list(params), allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for p, g in zip(params, found)]


def _arch_update(model: MixedSuperNet, grads: Sequence[torch.Tensor], ctx: StepContext) -> None:
    """One ``ctx.arch_optimizer`` step with ``grads`` as the gradients of ``alpha``."""
    ctx.arch_optimizer.zero_grad(set_to_none=True)
    for p, g in zip(model.arch_parameters(), grads):
        p.grad = g.detach().clone()
    ctx.arch_optimizer.step()


# ------------------------------------------------------------------------------- DARTS
@dataclass(frozen=True)
class FirstOrderConfig(Checked):
    """DARTS first order takes no parameters."""


def darts1_step(
    model: MixedSuperNet, train_batch: Batch, val_batch: Batch, ctx: StepContext, config: FirstOrderConfig
) -> StepStats:
    """DARTS, first-order approximation (Liu, Simonyan & Yang, "DARTS: Differentiable
    Architecture Search", ICLR 2019, Sec. 2.3 with ``xi = 0``).

    ``alpha <- alpha - eta_a grad_alpha L_val(w, alpha)`` (through the arch optimiser),
    then ``w <- w - eta_w grad_w L_train(w, alpha)``.
    """
    model.train()
    val_loss = batch_loss(model, val_batch, ctx)
    _arch_update(model, _grads(val_loss, model.arch_parameters()), ctx)
    return StepStats(weight_step(model, train_batch, ctx), float(val_loss.detach()))


@dataclass(frozen=True)
class UnrolledConfig(Checked):
    """Parameters of DARTS second order.

    Attributes:
        xi: Learning rate ``xi`` of the virtual weight step; null: the weights' current
            learning rate (``xi = eta_w``, as in the paper's experiments).
        fd_scale: ``r`` of the finite difference ``epsilon = r / ||grad_w' L_val(w', alpha)||``
            (0.01 in the paper).
    """

    xi: Annotated[float | None, Range(0, low_open=True)] = None
    fd_scale: Annotated[float, Range(0, low_open=True)] = 0.01


def unrolled_arch_gradient(
    model: MixedSuperNet,
    train_batch: Batch,
    val_batch: Batch,
    ctx: StepContext,
    xi: float,
    fd_scale: float = 0.01,
) -> tuple[list[torch.Tensor], float]:
    """The second-order DARTS hypergradient of ``alpha`` (Liu et al., ICLR 2019, Eq. 7-8).

    With the virtual step ``w' = w - xi grad_w L_train(w, alpha)``::

        g = grad_alpha L_val(w', alpha) - xi grad2_{alpha,w} L_train(w, alpha) grad_w' L_val(w', alpha)

    the Hessian-vector product by the central difference of Eq. 8: with
    ``v = grad_w' L_val(w', alpha)``, ``epsilon = fd_scale / ||v||`` and ``w+- = w +- epsilon v``,
    ``grad2 v ~ (grad_alpha L_train(w+, alpha) - grad_alpha L_train(w-, alpha)) / (2 epsilon)``.
    ``g`` approximates the total derivative of ``L_val(w - xi grad_w L_train(w, alpha), alpha)``.
    The virtual step is the plain gradient step of the paper's formula (the authors' code
    also folds the optimiser's momentum and weight decay into it). The weights are left as
    they were (restored from a copy, not by subtracting the steps again).

    Args:
        model: The supernet (batch norms see every forward pass, as in DARTS).
        train_batch: A batch of the weights' half.
        val_batch: A batch of the architecture's half.
        ctx: The step's settings (autocast, label smoothing).
        xi: Learning rate of the virtual step.
        fd_scale: ``r`` of ``epsilon = r / ||v||``.

    Returns:
        The hypergradient of every arch parameter, and ``L_val(w', alpha)``.
    """
    weights = model.weight_parameters()
    arch = model.arch_parameters()
    saved = [w.detach().clone() for w in weights]
    grad_w = _grads(batch_loss(model, train_batch, ctx, train=True), weights)
    try:
        with torch.no_grad():
            for w, g in zip(weights, grad_w):
                w.sub_(xi * g)
        val_loss = batch_loss(model, val_batch, ctx)
        found = _grads(val_loss, [*arch, *weights])
        direct, v = found[: len(arch)], found[len(arch) :]
        norm = math.sqrt(sum(float(g.detach().double().pow(2).sum()) for g in v))
        if norm == 0.0:
            return [g.detach() for g in direct], float(val_loss.detach())
        eps = fd_scale / norm
        sides = []
        for sign in (1.0, -1.0):
            with torch.no_grad():
                for w, w0, g in zip(weights, saved, v):
                    w.copy_(w0 + sign * eps * g)
            sides.append(_grads(batch_loss(model, train_batch, ctx, train=True), arch))
    finally:
        with torch.no_grad():
            for w, w0 in zip(weights, saved):
                w.copy_(w0)
    hyper = [(d - xi * (gp - gn) / (2.0 * eps)).detach() for d, gp, gn in zip(direct, *sides)]
    return hyper, float(val_loss.detach())


def darts2_step(
    model: MixedSuperNet, train_batch: Batch, val_batch: Batch, ctx: StepContext, config: UnrolledConfig
) -> StepStats:
    """DARTS, second-order approximation (Liu, Simonyan & Yang, ICLR 2019, Sec. 2.3).

    ``alpha <- alpha - eta_a g`` with the unrolled hypergradient ``g`` of
    :func:`unrolled_arch_gradient` (``xi`` from ``config``, default ``eta_w``), then
    ``w <- w - eta_w grad_w L_train(w, alpha)``.
    """
    model.train()
    xi = ctx.weight_lr if config.xi is None else config.xi
    grads, val_loss = unrolled_arch_gradient(model, train_batch, val_batch, ctx, xi, config.fd_scale)
    _arch_update(model, grads, ctx)
    return StepStats(weight_step(model, train_batch, ctx), val_loss)


# ----------------------------------------------------------------------------- MiLeNAS
@dataclass(frozen=True)
class MiLeNASConfig(Checked):
    """Parameters of MiLeNAS.

    Attributes:
        lam: ``lambda``, the weight of the validation loss in the architecture gradient.
    """

    lam: Annotated[float, Range(0)] = 1.0


def milenas_step(
    model: MixedSuperNet, train_batch: Batch, val_batch: Batch, ctx: StepContext, config: MiLeNASConfig
) -> StepStats:
    """MiLeNAS, mixed-level optimisation (He, Wang, Zhang & Wang, "MiLeNAS: Efficient
    Neural Architecture Search via Mixed-Level Reformulation", CVPR 2020, Eq. 6).

    ``alpha <- alpha - eta_a (grad_alpha L_train(w, alpha) + lambda grad_alpha L_val(w, alpha))``
    (the bracket is handed to the arch optimiser as the gradient), then
    ``w <- w - eta_w grad_w L_train(w, alpha)``.
    """
    model.train()
    arch = model.arch_parameters()
    train_loss = batch_loss(model, train_batch, ctx, train=True)
    val_loss = batch_loss(model, val_batch, ctx)
    g_train = _grads(train_loss, arch)
    g_val = _grads(val_loss, arch)
    _arch_update(model, [gt + config.lam * gv for gt, gv in zip(g_train, g_val)], ctx)
    return StepStats(weight_step(model, train_batch, ctx), float(val_loss.detach()))


# ---------------------------------------------------------------------------- NA-DARTS
@dataclass(frozen=True)
class NADARTSConfig(Checked):
    """Parameters of NA-DARTS (see :func:`nadarts_step` for the neighbourhood).

    Attributes:
        radius: ``r``: how far a neighbour moves one edge's distribution towards another
            operation, in ``[0, 1]`` (1: all the way, a one-hot edge).
        neighbours: Neighbours drawn per step, uniformly without replacement from the
            one-edit moves; null: all of them (24 while no edge is discretised).
    """

    radius: Annotated[float, Range(0, 1)] = 0.5
    neighbours: Annotated[int | None, Range(1, NUM_EDGES * (NUM_OPS - 1))] = None


def edit_moves(weights: torch.Tensor, edges: Sequence[int]) -> list[tuple[int, int]]:
    """The one-edit moves of a cell distribution: ``(edge, op)`` for every edge of
    ``edges`` and every operation other than that edge's most likely one (ties: the lower
    index), edge-major, op-ascending.

    Shapes:
        ``weights``: ``(6, 5)``.
    """
    current = weights.detach().argmax(dim=-1).tolist()
    return [(e, o) for e in edges for o in range(NUM_OPS) if o != current[e]]


def move_towards(weights: torch.Tensor, edge: int, op: int, radius: float) -> torch.Tensor:
    """``weights`` with row ``edge`` moved towards the one-hot vector of ``op``:
    ``(1 - radius) weights[edge] + radius onehot(op)`` (differentiable in ``weights``).

    Shapes:
        ``(6, 5) -> (6, 5)``.
    """
    target = F.one_hot(torch.tensor(op, device=weights.device), NUM_OPS).to(weights.dtype)
    row = (1.0 - radius) * weights[edge] + radius * target
    return torch.cat([weights[:edge], row[None], weights[edge + 1 :]])


def nadarts_step(
    model: MixedSuperNet, train_batch: Batch, val_batch: Batch, ctx: StepContext, config: NADARTSConfig
) -> StepStats:
    """Neighbourhood-aware DARTS (first order).

    Source: Wang, Cao, Li & Kitani, "Neighborhood-Aware Neural Architecture Search",
    BMVC 2021 (arXiv:2105.06369). The paper replaces the loss of an architecture by the
    loss aggregated over its neighbourhood, ``min_alpha f(N(alpha))``, so that the search
    prefers flat minima (architectures whose performance survives small edits), and gives
    DARTS a differentiable representation of that neighbourhood. Only the paper's abstract
    was available when this was written, not the section that defines that
    representation, so the neighbourhood below is this module's reading of the
    formulation, not a transcription of the paper's equations.

    With ``p = softmax(alpha)`` (discretised edges one-hot), a neighbour moves one mixed
    edge ``e`` towards an operation ``o`` other than its most likely one by ``r``
    (``config.radius``): ``p^(e->o)`` is ``p`` with row ``e`` replaced by
    ``(1 - r) p[e] + r onehot(o)``. The neighbourhood is
    ``N(p) = {p} + {p^(e->o)}`` (all moves, or ``config.neighbours`` of them drawn
    uniformly from ``ctx.rng`` each step), the aggregate is the mean, and the step is::

        alpha <- alpha - eta_a grad_alpha (1 / |N(p)|) sum_{q in N(p)} L_val(w, q)
        w     <- w - eta_w grad_w L_train(w, p)

    With ``r = 1`` and a one-hot ``p`` the neighbourhood is exactly the cell and its 24
    one-edit neighbours (:meth:`evonas.spaces.NB201Space.neighbors`); with ``r = 0`` the
    step is DARTS first order.
    """
    model.train()
    moves: list[tuple[int, int] | None] = list(edit_moves(model.edge_weights(), model.undecided_edges()))
    if config.neighbours is not None and config.neighbours < len(moves):
        picked = ctx.rng.choice(len(moves), size=config.neighbours, replace=False)
        moves = [moves[int(i)] for i in sorted(picked)]
    members = [None, *moves]
    arch = model.arch_parameters()
    total = [torch.zeros_like(p) for p in arch]
    total_loss = 0.0
    for move in members:
        # one graph per member, freed after its gradient, so memory does not grow with |N|
        weights = None if move is None else move_towards(model.edge_weights(), move[0], move[1], config.radius)
        loss = batch_loss(model, val_batch, ctx, weights) / len(members)
        for acc, g in zip(total, _grads(loss, arch)):
            acc.add_(g)
        total_loss += float(loss.detach())
    _arch_update(model, total, ctx)
    return StepStats(weight_step(model, train_batch, ctx), total_loss)


# ---------------------------------------------------------------------------- registry
StepFn = Callable[[MixedSuperNet, Batch, Batch, StepContext, Any], StepStats]


@dataclass(frozen=True)
class DNASMethod:
    """A registered search method.

    Attributes:
        Config: Frozen dataclass of its parameters (the ``method.params`` section).
        step: ``step(model, train_batch, val_batch, ctx, config) -> StepStats``.
    """

    Config: type
    step: StepFn


def _check_method(entry: Any) -> None:
    if not isinstance(entry, DNASMethod):
        raise PluginError(f"a DNAS method must be a DNASMethod(Config, step); got {entry!r}")


DNAS_METHODS: Registry[DNASMethod] = Registry("DNAS method", check=_check_method)
"""Method name -> :class:`DNASMethod`; see the module docstring."""

DNAS_METHODS.register("darts1")(DNASMethod(FirstOrderConfig, darts1_step))
DNAS_METHODS.register("darts2")(DNASMethod(UnrolledConfig, darts2_step))
DNAS_METHODS.register("milenas")(DNASMethod(MiLeNASConfig, milenas_step))
DNAS_METHODS.register("nadarts")(DNASMethod(NADARTSConfig, nadarts_step))
