"""Deriving the cell from a searched mixed supernet: selections chosen by name.

:data:`DNAS_SELECTIONS` maps a name to a :class:`DNASSelection` (its ``Config`` and its
``select``); every selection returns an nb201 genotype (a tuple of op indices in the
space's convention), ready for a table look-up, to seed an evolution or to be trained.

- ``magnitude``: the largest ``alpha`` per edge (Liu et al., DARTS, ICLR 2019);
- ``perturbation``: DARTS-PT (Wang, Cheng, Chen, Tang & Hsieh, "Rethinking Architecture
  Selection in Differentiable NAS", ICLR 2021).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import numpy as np
import torch

from evonas._registry import Registry
from evonas.config import MAX_COUNT, Checked, Range
from evonas.dnas._methods import Batch, full_precision
from evonas.dnas._mixed import NUM_OPS, MixedSuperNet
from evonas.errors import PluginError
from evonas.spaces import Arch


@dataclass
class SelectionContext:
    """What a selection may use besides the supernet.

    Attributes:
        val_batches: Called for a fresh pass over the validation batches (on the model's
            device); every call yields the same batches.
        rng: Generator of the selection's random draws (DARTS-PT's edge order).
        tune: ``tune(steps, lr)`` trains the supernet (weights and the mixed edges'
            ``alpha``) for ``steps`` search steps at weight learning rate ``lr``; None:
            no fine-tuning is possible.
        amp: Evaluate under bfloat16 autocast.
    """

    val_batches: Callable[[], Iterable[Batch]]
    rng: np.random.Generator
    tune: Callable[[int, float], None] | None = None
    amp: bool = False


# --------------------------------------------------------------------------- magnitude
@dataclass(frozen=True)
class MagnitudeConfig(Checked):
    """Magnitude selection takes no parameters."""


def magnitude(model: MixedSuperNet, ctx: SelectionContext, config: MagnitudeConfig) -> Arch:
    """The operation of the largest ``alpha`` on every edge (Liu, Simonyan & Yang, DARTS,
    ICLR 2019, Sec. 2.4); discretised edges keep their operation.

    On NAS-Bench-201 the argmax runs over all five operations, ``none`` included, as in
    the DARTS baseline of Dong & Yang (ICLR 2020). The supernet is not changed.
    """
    return model.genotype()


# ------------------------------------------------------------------------ perturbation
@dataclass(frozen=True)
class PerturbationConfig(Checked):
    """Parameters of DARTS-PT.

    Attributes:
        tune_steps: Search steps that fine-tune the supernet after every edge but the last.
        tune_lr: Constant weight learning rate of the fine-tuning (the authors' code uses
            a tenth of the search's initial rate: 0.0025 for 0.025).
        val_batches: Validation batches every removal is scored on; null: all of them.
        criterion: ``acc``: the operation whose removal lowers the validation accuracy
            most (the paper's choice); ``loss``: the one whose removal raises the
            validation loss most.
        renormalize: After removing an operation, rescale the edge's remaining weights to
            sum 1. The authors' code does not (the removed weight is just set to zero),
            which is the default.
    """

    tune_steps: Annotated[int, Range(0, MAX_COUNT)] = 10
    tune_lr: Annotated[float, Range(0, low_open=True)] = 0.0025
    val_batches: Annotated[int | None, Range(1, MAX_COUNT)] = 10
    criterion: Literal["acc", "loss"] = "acc"
    renormalize: bool = False


def removal_weights(weights: torch.Tensor, edge: int, op: int, renormalize: bool = False) -> torch.Tensor:
    """``weights`` with operation ``op`` of ``edge`` removed: its weight set to zero, the
    edge's other weights rescaled to sum 1 when ``renormalize`` (and some remain).

    Shapes:
        ``(6, 5) -> (6, 5)``.
    """
    out = weights.detach().clone()
    out[edge, op] = 0.0
    if renormalize:
        total = out[edge].sum()
        if float(total) > 0.0:
            out[edge] = out[edge] / total
    return out


def evaluate_weights(
    model: MixedSuperNet, ctx: SelectionContext, weights: torch.Tensor, max_batches: int | None = None
) -> tuple[float, float]:
    """Top-1 accuracy (percent) and mean cross-entropy of ``model(x, weights)`` on the
    validation batches.

    The supernet runs in train mode, its batch norms normalising with the batch's own
    statistics, as DARTS-PT scores removals; the running statistics are restored
    afterwards, so scoring leaves the supernet as it was.
    """
    was_training = model.training
    saved = {k: v.detach().clone() for k, v in model.named_buffers()}
    model.train()
    correct, loss_sum, count = 0, 0.0, 0
    try:
        with torch.no_grad():
            for b, (x, y) in enumerate(ctx.val_batches()):
                if max_batches is not None and b >= max_batches:
                    break
                with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=ctx.amp):
                    logits = model(x, weights)
                loss_sum += float(torch.nn.functional.cross_entropy(full_precision(logits), y, reduction="sum"))
                correct += int((logits.argmax(dim=1) == y).sum())
                count += int(y.shape[0])
    finally:
        buffers = dict(model.named_buffers())
        with torch.no_grad():
            for k, v in saved.items():
                buffers[k].copy_(v)
        model.train(was_training)
    if count == 0:
        raise ValueError("no validation batches to score the supernet on")
    return 100.0 * correct / count, loss_sum / count


def perturbation(model: MixedSuperNet, ctx: SelectionContext, config: PerturbationConfig) -> Arch:
    """DARTS-PT: perturbation-based selection, edge by edge (Wang, Cheng, Chen, Tang &
    Hsieh, "Rethinking Architecture Selection in Differentiable NAS", ICLR 2021, Alg. 1).

    The mixed edges are visited in a random order drawn from ``ctx.rng`` (the paper's
    NAS-Bench-201 setting). On each, every operation ``o`` in turn is removed (weight set
    to zero; see :class:`PerturbationConfig` for renormalising) while the other edges keep
    their current weights (discretised edges one-hot), and the supernet's validation
    accuracy is measured; the operation whose removal hurts most is selected (ties: the
    lower index), the edge is discretised to it, and the supernet is fine-tuned for
    ``config.tune_steps`` steps before the next edge. Edges already discretised keep
    their operation. The supernet ends with every edge discretised.

    Returns:
        The selected genotype.
    """
    order = [int(e) for e in ctx.rng.permutation(model.undecided_edges())]
    for k, edge in enumerate(order):
        current = model.edge_weights().detach()
        best_op, best_score = 0, None
        for op in range(NUM_OPS):
            acc, loss = evaluate_weights(model, ctx, removal_weights(current, edge, op, config.renormalize),
                                         config.val_batches)
            # the most essential operation: lowest accuracy (or highest loss) without it
            score = acc if config.criterion == "acc" else -loss
            if best_score is None or score < best_score:
                best_op, best_score = op, score
        model.discretize(edge, best_op)
        if ctx.tune is not None and config.tune_steps > 0 and k < len(order) - 1:
            ctx.tune(config.tune_steps, config.tune_lr)
    return model.genotype()


# ---------------------------------------------------------------------------- registry
SelectFn = Callable[[MixedSuperNet, SelectionContext, Any], Arch]


@dataclass(frozen=True)
class DNASSelection:
    """A registered selection.

    Attributes:
        Config: Frozen dataclass of its parameters (the ``selection.params`` section).
        select: ``select(model, ctx, config) -> genotype``.
    """

    Config: type
    select: SelectFn


def _check_selection(entry: Any) -> None:
    if not isinstance(entry, DNASSelection):
        raise PluginError(f"a DNAS selection must be a DNASSelection(Config, select); got {entry!r}")


DNAS_SELECTIONS: Registry[DNASSelection] = Registry("DNAS selection", check=_check_selection)
"""Selection name -> :class:`DNASSelection`; see the module docstring."""

DNAS_SELECTIONS.register("magnitude")(DNASSelection(MagnitudeConfig, magnitude))
DNAS_SELECTIONS.register("perturbation")(DNASSelection(PerturbationConfig, perturbation))
