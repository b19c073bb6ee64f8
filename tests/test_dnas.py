"""Differentiable NAS: the mixed supernet, the methods' updates, the selections, the config."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from evonas.config import ComponentConfig, from_dict
from evonas.data import DataSplits, ImageTensorDataset
from evonas.dnas import (
    DNAS_METHODS,
    DNAS_SELECTIONS,
    DNASConfig,
    DNASMethod,
    DNASSearch,
    MiLeNASConfig,
    MixedSuperNet,
    NADARTSConfig,
    PerturbationConfig,
    SelectionContext,
    StepContext,
    batch_loss,
    darts1_step,
    edit_moves,
    magnitude,
    milenas_step,
    move_towards,
    nadarts_step,
    perturbation,
    removal_weights,
    unrolled_arch_gradient,
)
from evonas.dnas._mixed import _RUNNABLE, _mixed_cell
from evonas.errors import ConfigError, PluginError, UnknownChoiceError
from evonas.spaces import NB201Space
from evonas.supernet import NB201SupernetConfig, SuperNet
from evonas.training import ComputeConfig, OptimConfig

torch.set_num_threads(1)

CPU = ComputeConfig(device="cpu", channels_last=False)


def onehot(arch, dtype=torch.float32) -> torch.Tensor:
    return torch.nn.functional.one_hot(torch.tensor(arch), 5).to(dtype)


def _with_row(weights: torch.Tensor, edge: int, op: int) -> torch.Tensor:
    out = weights.clone()
    out[edge] = torch.nn.functional.one_hot(torch.tensor(op), 5).to(weights.dtype)
    return out


def tiny_batch(seed: int, n: int = 4, dtype=torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, 8, 8, generator=g, dtype=dtype), torch.randint(0, 3, (n,), generator=g)


def tiny_model(seed: int = 0, dtype=torch.float32, alpha_std: float = 0.0) -> MixedSuperNet:
    torch.manual_seed(seed)
    model = MixedSuperNet(C=2, N=1, num_classes=3, in_channels=3).to(dtype)
    if alpha_std:
        with torch.no_grad():
            model.alpha.normal_(0.0, alpha_std)
    return model


def context(model: MixedSuperNet, arch_lr: float = 0.1, weight_lr: float = 0.05, seed: int = 0) -> StepContext:
    return StepContext(
        weight_optimizer=torch.optim.SGD(model.weight_parameters(), lr=weight_lr),
        arch_optimizer=torch.optim.SGD(model.arch_parameters(), lr=arch_lr),
        rng=np.random.default_rng(seed),
        grad_clip=None,
    )


def toy_splits(n: int = 48, size: int = 8, seed: int = 0) -> DataSplits:
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=g)
    labels = torch.randint(0, 3, (n,), generator=g)
    train = ImageTensorDataset(images, labels, mean=(0.5,) * 3, std=(0.25,) * 3, augment=True)
    empty = train.subset([])
    return DataSplits("toy", train, empty, empty, 3, 3, (size, size))


def tiny_config(**kw) -> DNASConfig:
    base = {"network": NB201SupernetConfig(channels=2, cells_per_stage=1), "steps": 2, "batch_size": 8, "compute": CPU}
    base.update(kw)
    return DNASConfig(**base)


# ------------------------------------------------------------------------- the supernet
def test_one_hot_mixture_equals_single_path_supernet_and_standalone_network() -> None:
    model = tiny_model(alpha_std=1.0)
    x, _ = tiny_batch(1, n=6)
    with torch.no_grad():  # non-trivial weights, batch-norm statistics and affine parameters
        for p in model.net.parameters():
            p.add_(0.1 * torch.randn_like(p))
        for _ in range(3):
            model(torch.randn_like(x))
    single = SuperNet(C=2, N=1, num_classes=3, in_channels=3)
    archs = [(3, 2, 1, 4, 3, 2), (0, 0, 0, 0, 0, 0), (3, 0, 0, 1, 0, 0), (1, 3, 0, 0, 4, 2)]
    close = {"rtol": 1e-5, "atol": 1e-6}
    for mode in ("train", "eval"):
        model.train(mode == "train")
        single.train(mode == "train")
        for arch in archs:
            # a separately built single-path supernet with the same weights and statistics
            # (train-mode passes update the statistics of the ops they run)
            single.load_state_dict(model.net.state_dict())
            mixed = model(x, onehot(arch))
            torch.testing.assert_close(mixed, single(x, arch), **close)
            torch.testing.assert_close(mixed, model.standalone(arch)(x), **close)
            for e, op in enumerate(arch):  # discretised edges run only their op: the same function
                model.discretize(e, op)
            torch.testing.assert_close(model(x), mixed, **close)
            assert model.genotype() == arch
            model.release()
        # a proper mixture is not any single path
        assert not torch.allclose(model(x), single(x, model.genotype()), **close)


def test_mixed_edge_is_the_weighted_sum_of_its_operations() -> None:
    # a cell is linear in the weights of its edge (2, 3), which feeds only the output node
    model = tiny_model(dtype=torch.float64).eval()
    x, _ = tiny_batch(2, dtype=torch.float64)
    cell = model.net.cells[0]
    stem = model.net.stem(x)
    base = onehot((1, 2, 3, 4, 1, 1), torch.float64)
    edge = 5
    mix = torch.tensor([0.1, 0.2, 0.3, 0.25, 0.15], dtype=torch.float64)

    def cell_output(w: torch.Tensor) -> torch.Tensor:
        return _mixed_cell(cell, stem, w, [list(_RUNNABLE)] * 6)

    weights = base.clone()
    weights[edge] = mix
    expected = sum(mix[o] * cell_output(_with_row(base, edge, o)) for o in range(5))
    torch.testing.assert_close(cell_output(weights), expected, rtol=1e-10, atol=1e-12)


def test_arch_and_weight_parameters_are_separate() -> None:
    model = tiny_model()
    assert [p.shape for p in model.arch_parameters()] == [torch.Size([6, 5])]
    weights = model.weight_parameters()
    assert all(p is not model.alpha for p in weights)
    frozen = [m for m in model.net.cells[0].edges.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert frozen and all(not m.weight.requires_grad for m in frozen)
    ids = {id(p) for p in weights}
    assert all(id(m.weight) not in ids for m in frozen)
    assert id(model.net.stem[1].weight) in ids  # the shared parts keep their affine batch norms
    affine = MixedSuperNet(C=2, N=1, num_classes=3, affine=True)
    assert len(affine.weight_parameters()) == len(list(affine.parameters())) - 1
    with pytest.raises(ConfigError, match="'edge'"):
        model.discretize(6, 0)


# --------------------------------------------------------------------------- the methods
def test_second_order_hypergradient_matches_finite_differences() -> None:
    model = tiny_model(seed=3, dtype=torch.float64, alpha_std=0.5).train()
    # ReLU's kinks make gradients jump, which no finite difference of gradients survives;
    # a smooth activation leaves the formula (and the paper's epsilon) as the only error
    for module in list(model.modules()):
        for name, child in module.named_children():
            if isinstance(child, torch.nn.ReLU):
                setattr(module, name, torch.nn.Softplus())
    train_batch, val_batch = tiny_batch(4, dtype=torch.float64), tiny_batch(5, dtype=torch.float64)
    ctx = context(model)
    xi = 0.5
    weights = model.weight_parameters()
    before = [w.detach().clone() for w in weights]
    paper, _ = unrolled_arch_gradient(model, train_batch, val_batch, ctx, xi)  # epsilon = 0.01 / ||v||
    assert all(torch.equal(w, b) for w, b in zip(weights, before))  # weights restored exactly
    # the central difference errs by O(epsilon^2): a smaller one pins the formula itself
    fine, _ = unrolled_arch_gradient(model, train_batch, val_batch, ctx, xi, fd_scale=1e-4)

    def unrolled_val_loss(alpha: torch.Tensor) -> float:
        with torch.no_grad():
            model.alpha.copy_(alpha)
        grads = torch.autograd.grad(batch_loss(model, train_batch, ctx), weights)
        with torch.no_grad():
            for w, w0, g in zip(weights, before, grads):
                w.copy_(w0 - xi * g)
            loss = float(batch_loss(model, val_batch, ctx))
            for w, w0 in zip(weights, before):
                w.copy_(w0)
        return loss

    alpha0 = model.alpha.detach().clone()
    # the first-order part alone, grad_alpha L_val(w', alpha), to show the second-order term matters
    grads = torch.autograd.grad(batch_loss(model, train_batch, ctx), weights)
    with torch.no_grad():
        for w, g in zip(weights, grads):
            w.sub_(xi * g)
    (direct,) = torch.autograd.grad(batch_loss(model, val_batch, ctx), [model.alpha])
    with torch.no_grad():
        for w, w0 in zip(weights, before):
            w.copy_(w0)

    h = 1e-5
    g = torch.Generator().manual_seed(0)
    for _ in range(3):
        d = torch.randn(6, 5, generator=g, dtype=torch.float64)
        fd = (unrolled_val_loss(alpha0 + h * d) - unrolled_val_loss(alpha0 - h * d)) / (2 * h)
        first_order = float((direct * d).sum())
        assert float((fine[0] * d).sum()) == pytest.approx(fd, rel=1e-5)
        assert float((paper[0] * d).sum()) == pytest.approx(fd, rel=1e-2)
        assert first_order != pytest.approx(fd, rel=0.1)  # without the second-order term


@pytest.mark.parametrize("method", ["darts1", "milenas"])
def test_first_order_and_mixed_level_updates_equal_their_formulas(method: str) -> None:
    model = tiny_model(seed=1, dtype=torch.float64, alpha_std=0.3).train()
    train_batch, val_batch = tiny_batch(6, dtype=torch.float64), tiny_batch(7, dtype=torch.float64)
    ctx = context(model, arch_lr=0.2, weight_lr=0.05)
    lam = 2.5
    alpha0 = model.alpha.detach().clone()
    (g_train,) = torch.autograd.grad(batch_loss(model, train_batch, ctx), [model.alpha])
    (g_val,) = torch.autograd.grad(batch_loss(model, val_batch, ctx), [model.alpha])
    reference = copy.deepcopy(model)
    if method == "milenas":
        milenas_step(model, train_batch, val_batch, ctx, MiLeNASConfig(lam=lam))
        expected_alpha = alpha0 - 0.2 * (g_train + lam * g_val)
    else:
        darts1_step(model, train_batch, val_batch, ctx, DNAS_METHODS.get("darts1").Config())
        expected_alpha = alpha0 - 0.2 * g_val
    torch.testing.assert_close(model.alpha.detach(), expected_alpha, rtol=1e-10, atol=1e-12)
    if method == "milenas":  # the training-loss term moves alpha too
        assert not torch.allclose(model.alpha.detach(), alpha0 - 0.2 * (1 + lam) * g_val, atol=1e-6)
    # then the weights: one SGD step on L_train at the updated alpha
    with torch.no_grad():
        reference.alpha.copy_(model.alpha)
    ref_weights = reference.weight_parameters()
    grads = torch.autograd.grad(batch_loss(reference, train_batch, ctx, reference.edge_weights().detach()), ref_weights)
    for w, w0, g in zip(model.weight_parameters(), ref_weights, grads):
        torch.testing.assert_close(w.detach(), w0.detach() - 0.05 * g, rtol=1e-10, atol=1e-12)


def test_nadarts_neighbourhood_at_radius_one_is_the_one_edit_neighbours() -> None:
    space = NB201Space()
    arch = (3, 0, 2, 4, 1, 3)
    p = onehot(arch)
    moves = edit_moves(p, range(6))
    neighbours = [tuple(move_towards(p, e, o, 1.0).argmax(dim=1).tolist()) for e, o in moves]
    assert neighbours == space.neighbors(arch)
    assert all(torch.equal(move_towards(p, e, o, 1.0), onehot(n)) for (e, o), n in zip(moves, neighbours))
    # a partial move keeps a distribution and the other edges
    q = move_towards(torch.full((6, 5), 0.2, dtype=torch.float64), 2, 4, 0.25)
    torch.testing.assert_close(q[2], torch.tensor([0.15, 0.15, 0.15, 0.15, 0.4], dtype=torch.float64))
    assert torch.equal(q[[0, 1, 3, 4, 5]], torch.full((5, 5), 0.2, dtype=torch.float64))
    # discretised edges are not moved
    assert {e for e, _ in edit_moves(p, [1, 4])} == {1, 4}


def test_nadarts_reduces_to_darts_at_radius_zero_and_aggregates_otherwise() -> None:
    model = tiny_model(seed=2, dtype=torch.float64, alpha_std=0.3).train()
    batches = tiny_batch(8, dtype=torch.float64), tiny_batch(9, dtype=torch.float64)
    start = copy.deepcopy(model.state_dict())
    darts1_step(model, *batches, context(model), DNAS_METHODS.get("darts1").Config())
    darts_alpha = model.alpha.detach().clone()
    results = {}
    for radius in (0.0, 0.5):
        model.load_state_dict(start)
        stats = nadarts_step(model, *batches, context(model, seed=4), NADARTSConfig(radius=radius, neighbours=3))
        results[radius] = (model.alpha.detach().clone(), stats.val_loss)
    torch.testing.assert_close(results[0.0][0], darts_alpha, rtol=1e-9, atol=1e-12)
    assert not torch.allclose(results[0.5][0], darts_alpha, atol=1e-6)
    assert results[0.5][1] != pytest.approx(results[0.0][1])


def test_amp_losses_are_float32_and_close_to_full_precision() -> None:
    model = tiny_model(seed=5).train()
    batch = tiny_batch(10)
    ctx = context(model)
    full = batch_loss(model, batch, ctx).detach()
    ctx.amp = True
    mixed = batch_loss(model, batch, ctx).detach()
    assert mixed.dtype == torch.float32
    assert float(mixed) == pytest.approx(float(full), abs=0.05)


# ------------------------------------------------------------------------- the selections
ESSENTIAL = (3, 1, 4, 2, 0, 3)


class EssentialOps(MixedSuperNet):
    """Classifies correctly while every edge keeps some weight on its essential op.

    Inputs are the one-hot labels (``x = onehot(y)``); the logits are the input when all
    essential ops have weight, otherwise the input shifted to a wrong class.
    """

    def __init__(self) -> None:
        super().__init__(C=1, N=1, num_classes=3, in_channels=3)
        with torch.no_grad():  # alpha favours another op than the essential one on every edge
            self.alpha.zero_()
            for e, op in enumerate(ESSENTIAL):
                self.alpha[e, (op + 1) % 5] = 2.0
        self.order: list[int] = []

    def forward(self, x: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
        w = self.edge_weights() if weights is None else weights
        ok = all(float(w[e, op]) > 1e-3 for e, op in enumerate(ESSENTIAL))
        return x if ok else x.roll(1, dims=1)

    def discretize(self, edge: int, op: int) -> None:
        self.order.append(edge)
        super().discretize(edge, op)


def essential_batches() -> list[tuple[torch.Tensor, torch.Tensor]]:
    y = torch.arange(12) % 3
    return [(torch.nn.functional.one_hot(y, 3).float(), y)]


@pytest.mark.parametrize("criterion", ["acc", "loss"])
def test_perturbation_selects_the_op_whose_removal_hurts_most(criterion: str) -> None:
    model = EssentialOps()
    assert magnitude(model, SelectionContext(essential_batches, np.random.default_rng(0)), None) == tuple(
        (op + 1) % 5 for op in ESSENTIAL
    )
    tuned: list[tuple[int, float]] = []
    ctx = SelectionContext(essential_batches, np.random.default_rng(0), tune=lambda n, lr: tuned.append((n, lr)))
    arch = perturbation(model, ctx, PerturbationConfig(tune_steps=3, tune_lr=0.01, criterion=criterion))
    assert arch == ESSENTIAL
    assert model.fixed == ESSENTIAL
    assert tuned == [(3, 0.01)] * 5  # between edges, not after the last
    assert sorted(model.order) == list(range(6))


def test_perturbation_edge_order_is_seeded_and_keeps_discretised_edges() -> None:
    orders = []
    for seed in (7, 7, 8):
        model = EssentialOps()
        model.discretize(2, ESSENTIAL[2])  # decided before the selection: kept, never scored
        model.order.clear()
        arch = perturbation(model, SelectionContext(essential_batches, np.random.default_rng(seed)),
                            PerturbationConfig(tune_steps=0))
        assert arch == ESSENTIAL
        orders.append(model.order)
    assert sorted(orders[0]) == [0, 1, 3, 4, 5]
    assert orders[0] == orders[1] and orders[0] != orders[2]


def test_removal_weights() -> None:
    w = torch.full((6, 5), 0.2)
    plain = removal_weights(w, 1, 3)
    assert float(plain[1, 3]) == 0.0 and float(plain[1].sum()) == pytest.approx(0.8)
    renorm = removal_weights(w, 1, 3, renormalize=True)
    torch.testing.assert_close(renorm[1], torch.tensor([0.25, 0.25, 0.25, 0.0, 0.25]))
    assert torch.equal(renorm[[0, 2, 3, 4, 5]], w[[0, 2, 3, 4, 5]])
    assert torch.equal(removal_weights(onehot((1,) * 6), 0, 1, renormalize=True)[0], torch.zeros(5))


def test_magnitude_argmax_includes_none() -> None:
    model = tiny_model()
    with torch.no_grad():
        model.alpha.zero_()
        model.alpha[:, 3] = 1.0
        model.alpha[4, 0] = 5.0
    assert magnitude(model, SelectionContext(list, np.random.default_rng(0)), None) == (3, 3, 3, 3, 0, 3)


# ------------------------------------------------------------------------------ searches
@pytest.mark.parametrize("method, params", [
    ("darts1", {}), ("darts2", {}), ("milenas", {"lam": 0.5}), ("nadarts", {"neighbours": 2}),
])
def test_searches_with_the_same_seed_give_identical_alpha(method: str, params: dict) -> None:
    splits = toy_splits()
    alphas = []
    for seed in (3, 3, 4):
        search = DNASSearch(tiny_config(method=ComponentConfig(method, params), seed=seed), splits)
        initial = search.alpha
        stats = search.run()
        assert len(stats) == 2 and all(np.isfinite([s.train_loss, s.val_loss]).all() for s in stats)
        assert not torch.equal(search.alpha, initial)
        alphas.append(search.alpha)
    assert torch.equal(alphas[0], alphas[1])
    assert not torch.equal(alphas[0], alphas[2])


def test_search_perturbation_selection_discretises_every_edge() -> None:
    selection = ComponentConfig("perturbation", {"tune_steps": 1, "val_batches": 1})
    search = DNASSearch(tiny_config(steps=1, selection=selection), toy_splits())
    search.run()
    before = search.weight_optimizer.param_groups[0]["lr"]
    arch = search.select()
    assert NB201Space().validate(arch) == arch
    assert search.model.fixed == arch and search.model.undecided_edges() == []
    assert search.weight_optimizer.param_groups[0]["lr"] == before  # tuning used its own optimiser


def test_search_optimisers_follow_the_papers() -> None:
    config = DNASConfig()
    assert (config.optim.lr, config.optim.min_lr, config.optim.momentum, config.optim.nesterov) == (
        0.025, 0.001, 0.9, False)
    assert (config.optim.weight_decay, config.optim.grad_clip, config.train_fraction) == (3e-4, 5.0, 0.5)
    assert (config.arch_optim.lr, config.arch_optim.beta1, config.arch_optim.beta2,
            config.arch_optim.weight_decay) == (3e-4, 0.5, 0.999, 1e-3)
    search = DNASSearch(tiny_config(), toy_splits())
    group = search.arch_optimizer.param_groups[0]
    assert isinstance(search.arch_optimizer, torch.optim.Adam)
    assert (group["lr"], group["betas"], group["weight_decay"]) == (3e-4, (0.5, 0.999), 1e-3)
    assert [id(p) for p in group["params"]] == [id(search.model.alpha)]
    sgd = search.weight_optimizer.param_groups[0]
    assert {id(p) for p in sgd["params"]} == {id(p) for p in search.model.weight_parameters()}
    assert (sgd["momentum"], sgd["nesterov"], sgd["weight_decay"]) == (0.9, False, 3e-4)
    assert len(search._train) == len(search._val) == 24  # DARTS' 50/50 split of the 48 images


def test_channels_last_reaches_model_and_batches() -> None:
    search = DNASSearch(tiny_config(compute=ComputeConfig(device="cpu", channels_last=True)), toy_splits())
    conv = search.model.net.stem[0].weight
    assert conv.is_contiguous(memory_format=torch.channels_last)
    x, _ = next(search.val_batches())
    assert x.is_contiguous(memory_format=torch.channels_last) and x.shape == (8, 3, 8, 8)


# ------------------------------------------------------------------------------ bad input
@pytest.mark.parametrize("data, quoted, valid", [
    ({"method": {"name": "darts3"}}, "'darts3'", "'darts1', 'darts2', 'milenas', 'nadarts'"),
    ({"selection": {"name": "best"}}, "'best'", "'magnitude', 'perturbation'"),
    ({"optim": {"lr": 0}}, "invalid value 0.0 for 'optim.lr'", "> 0"),
    ({"arch_optim": {"lr": -0.1}}, "invalid value -0.1 for 'arch_optim.lr'", "> 0"),
    ({"train_fraction": 0}, "invalid value 0.0 for 'train_fraction'", "in (0, 1)"),
    ({"train_fraction": 1.0}, "invalid value 1.0 for 'train_fraction'", "in (0, 1)"),
    ({"method": {"name": "milenas", "params": {"lambda": 1}}}, "'method.params.lambda'", "lam"),
    ({"method": {"name": "nadarts", "params": {"radius": 2}}}, "invalid value 2", "in [0, 1]"),
])
def test_bad_config_values_raise_one_line_config_errors(data: dict, quoted: str, valid: str) -> None:
    with pytest.raises(ConfigError) as info:
        from_dict(DNASConfig, data)
    message = str(info.value)
    assert quoted in message and valid in message and "\n" not in message


def test_bad_values_in_python_and_registries() -> None:
    with pytest.raises(ConfigError, match=r"'darts3'.*valid values"):
        DNASConfig(method=ComponentConfig("darts3"))
    with pytest.raises(ConfigError, match=r"invalid value 1\.5 for 'train_fraction'"):
        DNASConfig(train_fraction=1.5)
    with pytest.raises(ConfigError, match=r"'batch_size'; expected at most 24"):
        DNASSearch(tiny_config(batch_size=30), toy_splits())
    with pytest.raises(UnknownChoiceError, match="darts1"):
        DNAS_METHODS.get("darts3")
    with pytest.raises(PluginError):
        DNAS_METHODS.register("plain")(darts1_step)
    with pytest.raises(PluginError, match="already registered"):
        DNAS_SELECTIONS.register("magnitude")(DNAS_SELECTIONS.get("perturbation"))
    assert isinstance(DNAS_METHODS.get("nadarts"), DNASMethod)
    filled = DNASConfig(method=ComponentConfig("milenas"))
    assert filled.method.params == {"lam": 1.0}
    assert filled.method_params() == MiLeNASConfig()
    with pytest.raises(ConfigError, match=r"invalid value 0 for 'lr'"):
        OptimConfig(lr=0)
