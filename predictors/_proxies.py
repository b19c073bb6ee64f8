"""Zero-cost proxies: training-free scores of an untrained network on one minibatch.

Each function takes any ``nn.Module`` classifier and returns a float where higher means
"expected to train to a better accuracy". They follow the definitions used by Abdelfattah
et al., "Zero-Cost Proxies for Lightweight NAS", ICLR 2021 and NAS-Bench-Suite-Zero
(Krishnakumar et al., NeurIPS 2022 Datasets and Benchmarks):

* :func:`naswot` — Mellor et al., "Neural Architecture Search without Training", ICML 2021.
* :func:`jacob_cov` — Mellor et al., arXiv:2006.04647v1 (the Jacobian-covariance score).
* :func:`synflow` — Tanaka et al., "Pruning neural networks without any data by iteratively
  conserving synaptic flow", NeurIPS 2020.
* :func:`gradient_scores` — ``snip`` (Lee et al., "SNIP", ICLR 2019) and ``grad_norm``.
* :func:`num_params`, :func:`flops`.

The functions do not change the network they are given (synflow works on a copy) except
for gradients and batch-norm running statistics.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
from torch import nn


def _weighted_layers(model: nn.Module) -> list[nn.Conv2d | nn.Linear]:
    return [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


DATA_PROXIES = ("naswot", "jacob_cov", "snip", "grad_norm")
"""The proxies computed from one forward pass on the minibatch (see :func:`minibatch_scores`)."""


def minibatch_scores(
    model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor | None, proxies: tuple[str, ...] = DATA_PROXIES
) -> dict[str, float]:
    """The data-dependent proxies of ``proxies`` from a single forward pass.

    One forward pass records NASWOT's activation codes; the cross-entropy gradient gives
    SNIP and grad-norm, and the gradient of the summed outputs with respect to the
    inputs gives the Jacobian covariance. The proxies share the forward pass (batch norms
    use the same batch statistics either way) instead of running one each.

    Args:
        model: The untrained classifier, run in its current mode (train mode: batch norms
            use batch statistics, as in the papers).
        inputs: One minibatch. Shapes: ``(B, C, H, W)``.
        targets: Class labels, needed for ``snip`` and ``grad_norm``. Shapes: ``(B,)``.
        proxies: Names among :data:`DATA_PROXIES`.

    Returns:
        ``{name: score}`` for the requested names.
    """
    want = set(proxies)
    unknown = want - set(DATA_PROXIES)
    if unknown:
        raise ValueError(f"minibatch_scores computes {DATA_PROXIES}; got {sorted(unknown)}")
    if want & {"snip", "grad_norm"} and targets is None:
        raise ValueError("snip and grad_norm need the minibatch's targets")
    kernel = torch.zeros(inputs.shape[0], inputs.shape[0], dtype=torch.float64)

    def hook(module: nn.Module, args: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        # relu(x) > 0 exactly when x > 0, so the output gives the code even for in-place ReLUs.
        codes = (output.detach() > 0).flatten(1).to(torch.float32)
        # (1-c)(1-c)^T = D - r_i - r_j + c c^T with r the active counts: one matrix product
        # instead of two. Entries are integers below 2^24, so float32 products are exact.
        gram = (codes @ codes.t()).to(torch.float64)
        active = codes.sum(dim=1, dtype=torch.float64)
        kernel.add_(2.0 * gram - active.unsqueeze(0) - active.unsqueeze(1) + codes.shape[1])

    handles = []
    if "naswot" in want:
        handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.ReLU)]
    need_grad = bool(want - {"naswot"})
    x = inputs.detach().clone().requires_grad_("jacob_cov" in want)
    try:
        with torch.set_grad_enabled(need_grad):
            out = model(x)
    finally:
        for h in handles:
            h.remove()
    scores: dict[str, float] = {}
    if "naswot" in want:
        sign, logdet = torch.linalg.slogdet(kernel)
        scores["naswot"] = float(logdet) if float(sign) > 0 else -math.inf
    if want & {"snip", "grad_norm"} and targets is not None:
        layers = [m for m in _weighted_layers(model) if m.weight.requires_grad]
        loss = nn.functional.cross_entropy(out, targets)
        grads = torch.autograd.grad(
            loss, [m.weight for m in layers], retain_graph="jacob_cov" in want, allow_unused=True
        )
        snip = norm = 0.0
        for layer, grad in zip(layers, grads):
            if grad is not None:
                snip += float((layer.weight.detach() * grad).abs().sum())
                norm += float(grad.norm())
        scores.update({k: v for k, v in (("snip", snip), ("grad_norm", norm)) if k in want})
    if "jacob_cov" in want:
        # A cell of only `none` edges cuts the output off from the input: no gradient at all.
        grad_x = torch.autograd.grad(out.sum(), x, allow_unused=True)[0] if out.requires_grad else None
        if grad_x is None:
            scores["jacob_cov"] = -math.inf
        else:
            scores["jacob_cov"] = _jacobian_score(grad_x.detach().flatten(1).to(torch.float64).numpy())
    return scores


def _jacobian_score(jac: np.ndarray, eps: float = 1e-5) -> float:
    if np.any(jac.std(axis=1) == 0):
        return -math.inf
    eig = np.linalg.eigvalsh(np.corrcoef(jac))
    return float(-np.sum(np.log(eig + eps) + 1.0 / (eig + eps)))


def naswot(model: nn.Module, inputs: torch.Tensor) -> float:
    """NASWOT score: log-determinant of the kernel of the ReLUs' binary activation codes.

    Every ReLU of the network gives each input a binary code (which units are active).
    ``K[i, j]`` counts, over all ReLU units, those where inputs ``i`` and ``j`` agree
    (``N_units - Hamming distance``); the score is ``log |det K|``. Networks that keep
    inputs apart (distinct codes) have a well-conditioned ``K`` and score high.

    Args:
        model: The untrained network (its ReLUs must be ``nn.ReLU`` modules). It is run in
            its current mode (train mode uses batch statistics in batch norms, as in the paper).
        inputs: One minibatch. Shapes: ``(B, C, H, W)``.

    Returns:
        The log-determinant, ``-inf`` when ``K`` is singular.
    """
    return minibatch_scores(model, inputs, None, ("naswot",))["naswot"]


def jacob_cov(model: nn.Module, inputs: torch.Tensor) -> float:
    """Jacobian-covariance score: how decorrelated the input Jacobians of a minibatch are.

    With ``J_i = d(sum of outputs)/d(input_i)`` flattened and ``Sigma`` the correlation
    matrix of the ``J_i`` with eigenvalues ``lambda``, the score is
    ``-sum(log(lambda + 1e-5) + 1 / (lambda + 1e-5))`` (Mellor et al., 2020, v1).

    Args:
        model: The untrained network.
        inputs: One minibatch. Shapes: ``(B, C, H, W)``.

    Returns:
        The score; ``-inf`` when a Jacobian is constant (e.g. the output ignores the input).
    """
    return minibatch_scores(model, inputs, None, ("jacob_cov",))["jacob_cov"]


def gradient_scores(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
    """SNIP and grad-norm from one cross-entropy backward pass.

    ``snip = sum |w * dL/dw|`` and ``grad_norm = sum over layers of ||dL/dw||_2``, over the
    weights of every ``Conv2d`` and ``Linear`` layer (biases excluded, as in Abdelfattah et
    al.), with ``L`` the mean cross-entropy of the minibatch.

    Args:
        model: The untrained classifier.
        inputs: One minibatch. Shapes: ``(B, C, H, W)``.
        targets: Class labels. Shapes: ``(B,)``.

    Returns:
        ``{"snip": ..., "grad_norm": ...}``.
    """
    return minibatch_scores(model, inputs, targets, ("snip", "grad_norm"))


def synflow(model: nn.Module, input_shape: tuple[int, ...]) -> float:
    """SynFlow: total synaptic saliency of the linearised network on an all-ones input.

    A double-precision copy of the network gets ``|theta|`` for every parameter and
    buffer and its batch norms reset and put in evaluation mode (so they pass the signal
    through unnormalised, as the reference implementation does by removing them); the
    score is ``sum |theta * dR/dtheta|`` over ``Conv2d``/``Linear`` weights with
    ``R = sum(f(1))``. No data is used.

    Args:
        model: The untrained network; it is not modified.
        input_shape: Shape of one input, e.g. ``(3, 32, 32)``.

    Returns:
        The score (``0.0`` when no signal reaches the output).
    """
    net = copy.deepcopy(model).double()
    for m in net.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
    net.eval()
    with torch.no_grad():
        for tensor in net.state_dict().values():
            if tensor.is_floating_point():
                tensor.abs_()
    net.zero_grad(set_to_none=True)
    out = net(torch.ones((1, *input_shape), dtype=torch.float64))
    out.sum().backward()
    total = 0.0
    for layer in _weighted_layers(net):
        if layer.weight.grad is not None:
            total += float((layer.weight.detach() * layer.weight.grad).abs().sum())
    return total


def num_params(model: nn.Module) -> float:
    """Trainable parameters, in millions (the NAS-Bench-201 table's ``params_M`` unit)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad) / 1e6


def flops(model: nn.Module, input_shape: tuple[int, ...]) -> float:
    """Floating-point operations of one forward pass of one input, in millions.

    Counted by :class:`torch.utils.flop_counter.FlopCounterMode` (a multiply-add counts
    as two operations; convolutions and matrix products only).
    """
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    was_training = model.training
    model.eval()
    try:
        with counter, torch.no_grad():
            model(torch.zeros((1, *input_shape)))
    finally:
        model.train(was_training)
    return counter.get_total_flops() / 1e6
