"""Training: config checks, device choice, seeded reproducible runs, evaluation, the evaluator."""

from __future__ import annotations

import math
import pickle

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from evonas.config import ComponentConfig, from_dict
from evonas.data import DatasetConfig, DataSplits, load_dataset
from evonas.errors import ArchError, ConfigError
from evonas.evaluation import Evaluator, TrainingEvaluator, TrainingEvaluatorConfig
from evonas.evaluation._training import build_training
from evonas.models import NB201Network, count_parameters
from evonas.spaces import get_space
from evonas.training import (
    ComputeConfig,
    OptimConfig,
    TrainConfig,
    evaluate_batches,
    evaluate_model,
    seeded_model,
    select_device,
    train_model,
)

GOOD = (3, 3, 3, 1, 3, 3)  # NAS-Bench-201's best cell (index 6111)
SPACE = get_space("nb201")
_OPTIM = {f for f in OptimConfig.__dataclass_fields__}
_COMPUTE = {f for f in ComputeConfig.__dataclass_fields__}


def tc(**kw) -> TrainConfig:
    """A TrainConfig from flat keyword arguments (optimiser and compute keys sorted into their sections)."""
    optim = {k: kw.pop(k) for k in list(kw) if k in _OPTIM}
    compute = {k: kw.pop(k) for k in list(kw) if k in _COMPUTE}
    return TrainConfig(optim=OptimConfig(**optim), compute=ComputeConfig(**compute), **kw)


TINY = tc(epochs=2, batch_size=32, lr=0.05, device="cpu")


@pytest.fixture(scope="module")
def digits() -> DataSplits:
    return load_dataset("digits", max_train=256, max_val=64, max_test=64)


def _net(seed: int, splits: DataSplits, arch=GOOD, C: int = 4) -> NB201Network:
    return seeded_model(lambda: NB201Network(arch, C=C, N=1, num_classes=10, in_channels=splits.in_channels), seed)


# --------------------------------------------------------------------------- configs
@pytest.mark.parametrize(("changes", "message"), [
    ({"epochs": 0}, "invalid value 0 for 'train.epochs'; expected an integer in \\[1, 1000000000\\]"),
    ({"optim": {"lr": -0.1}}, r"invalid value -0.1 for 'train.optim.lr'; expected a finite number > 0"),
    ({"optim": {"momentum": 1.0}}, r"invalid value 1.0 for 'train.optim.momentum'; expected a finite number in \[0, 1\)"),
    ({"optim": {"momentum": 0.0}}, "Nesterov momentum needs momentum > 0"),
    ({"optim": {"min_lr": 0.5}}, r"invalid value 0.5 for 'min_lr'; expected a number <= lr \(0.1\)"),
    ({"optim": {"grad_clip": 0}}, r"invalid value 0.0 for 'train.optim.grad_clip'; expected a finite number > 0 or null"),
    ({"optim": {"label_smoothing": 1.0}}, r"for 'train.optim.label_smoothing'; expected a finite number in \[0, 1\)"),
    ({"compute": {"device": "gpu"}}, "invalid device 'gpu'; valid devices: auto, cpu, cuda, cuda:N"),
    ({"compute": {"amp": "yes"}}, "invalid value 'yes' for 'train.compute.amp'; expected 'auto', true or false"),
    ({"num_workers": -1}, "invalid value -1 for 'train.num_workers'; expected an integer in \\[0, 1024\\]"),
    ({"compute": {"num_threads": 0}}, "invalid value 0 for 'train.compute.num_threads'; expected an integer in \\[1, 1024\\] or null"),
    ({"val_every": 0}, "invalid value 0 for 'train.val_every'; expected an integer in \\[1, 1000000000\\]"),
    ({"lr": 0.1}, "unknown key 'train.lr'; valid keys: batch_size, compute, epochs, eval_batch_size, num_workers, optim, val_every"),
])
def test_train_config_rejects_bad_values(changes, message):
    with pytest.raises(ConfigError, match=message):
        from_dict(TrainConfig, changes, "train")


def test_train_config_checks_hold_when_built_in_python():
    with pytest.raises(ConfigError, match="invalid value 0 for 'epochs'"):
        tc(epochs=0)
    with pytest.raises(ConfigError, match="invalid value -0.1 for 'lr'"):
        OptimConfig(lr=-0.1)


def test_train_config_from_yaml_mapping():
    cfg = from_dict(TrainConfig, {"epochs": 3, "compute": {"amp": True, "channels_last": "auto"}, "optim": {"grad_clip": 5, "lr": 1e-3}}, "train")
    assert (cfg.epochs, cfg.compute.amp, cfg.compute.channels_last, cfg.optim.grad_clip, cfg.optim.lr) == (3, True, "auto", 5.0, 0.001)
    device, amp, channels_last = ComputeConfig(device="cpu", amp="auto", channels_last=False).resolve()
    assert (device, amp, channels_last) == (torch.device("cpu"), False, False)


def test_select_device():
    assert select_device("cpu") == torch.device("cpu")
    with pytest.raises(ConfigError, match="invalid device 'tpu'"):
        select_device("tpu")
    if torch.cuda.is_available():
        assert select_device("auto").type == "cuda"
        with pytest.raises(ConfigError, match="only"):
            select_device(f"cuda:{torch.cuda.device_count()}")
    else:
        assert select_device("auto") == torch.device("cpu")
        with pytest.raises(ConfigError, match="'cuda:1' requested but CUDA is not available"):
            select_device("cuda:1")


# ------------------------------------------------------------------------- seeding
def test_seeded_model_is_reproducible_and_leaves_global_state_alone(digits):
    state = torch.get_rng_state()
    a, b, c = _net(1, digits), _net(1, digits), _net(2, digits)
    assert torch.equal(torch.get_rng_state(), state)
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(va, vb), k
    assert not torch.equal(a.stem[0].weight, c.stem[0].weight)


def test_same_seed_gives_identical_curves_whatever_the_global_state(digits):
    torch.manual_seed(123)
    r1 = train_model(_net(0, digits), digits, TINY, seed=7)
    torch.manual_seed(456)
    state, threads = torch.get_rng_state(), torch.get_num_threads()
    r2 = train_model(_net(0, digits), digits, TINY, seed=7)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.get_num_threads() == threads
    r3 = train_model(_net(0, digits), digits, TINY, seed=8)
    assert r1.curves == r2.curves
    assert (r1.test_loss, r1.test_acc) == (r2.test_loss, r2.test_acc)
    assert r1.curves["train_loss"] != r3.curves["train_loss"]  # other shuffling
    assert r1.epochs == 2 and not r1.diverged and r1.device == "cpu"
    assert r1.num_params == count_parameters(_net(0, digits))
    for key in ("train_loss", "train_acc", "val_loss", "val_acc", "lr"):
        assert len(r1.curves[key]) == 2


def test_cosine_schedule_per_step(digits):
    cfg = tc(epochs=4, batch_size=64, lr=0.2, min_lr=0.02, device="cpu")
    result = train_model(_net(0, digits), digits, cfg, seed=0)
    steps = math.ceil(256 / 64)  # 4 steps per epoch, 16 in all
    expected = [0.02 + 0.5 * (0.2 - 0.02) * (1 + math.cos(math.pi * e * steps / 16)) for e in range(4)]
    assert result.curves["lr"] == pytest.approx(expected, rel=1e-9)


def test_training_on_digits_reaches_high_accuracy():
    splits = load_dataset("digits")
    cfg = tc(epochs=5, batch_size=64, lr=0.05, device="cpu")
    result = train_model(_net(0, splits, C=8), splits, cfg, seed=0)
    assert result.test_acc > 90.0 and result.val_acc > 90.0
    assert result.curves["train_loss"][-1] < result.curves["train_loss"][0]


def test_val_every_skips_epochs_but_always_evaluates_the_last(digits):
    cfg = tc(epochs=3, batch_size=32, lr=0.05, device="cpu", val_every=2)
    result = train_model(_net(0, digits), digits, cfg, seed=0)
    val = result.curves["val_acc"]
    assert math.isnan(val[0]) and not math.isnan(val[1]) and not math.isnan(val[2])
    assert result.val_acc == val[2]
    # Skipping validation passes does not change the training itself.
    every = train_model(_net(0, digits), digits, tc(epochs=3, batch_size=32, lr=0.05, device="cpu"), seed=0)
    assert every.curves["train_loss"] == result.curves["train_loss"]
    assert every.val_acc == result.val_acc and every.test_acc == result.test_acc


def test_return_logits_keeps_the_final_passes(digits):
    model = _net(0, digits)
    result = train_model(model, digits, TINY, seed=0, return_logits=True)
    for ev, split, acc in ((result.val_eval, "val", result.val_acc), (result.test_eval, "test", result.test_acc)):
        assert ev is not None and ev.logits is not None
        assert ev.logits.shape == (len(getattr(digits, split)), 10)
        assert 100.0 * float((ev.logits.argmax(1) == ev.targets).float().mean()) == pytest.approx(acc)
        again = evaluate_model(model, digits.loader(split, 256, shuffle=False), "cpu", return_logits=True)
        torch.testing.assert_close(ev.logits, again.logits)
    plain = train_model(_net(0, digits), digits, TINY, seed=0)
    assert plain.test_eval is not None and plain.test_eval.logits is None


def test_divergence_stops_training(digits):
    class Exploding(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.zeros(10))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.w + x.flatten(1)[:, :1] * float("inf")

    result = train_model(Exploding(), digits, tc(epochs=3, device="cpu"), seed=0)
    assert result.diverged and result.epochs == 1
    assert math.isnan(result.train_loss)


def test_cpu_bfloat16_autocast_and_channels_last_train(digits):
    cfg = tc(epochs=1, batch_size=64, device="cpu", amp=True, channels_last=True)
    model = _net(0, digits)
    result = train_model(model, digits, cfg, seed=0)
    assert math.isfinite(result.train_loss) and math.isfinite(result.test_loss)
    assert model.stem[0].weight.is_contiguous(memory_format=torch.channels_last)


def test_auto_channels_last_follows_the_device(digits, monkeypatch):
    from evonas.training import prefers_channels_last

    assert prefers_channels_last(torch.device("cuda", 0))
    for available, expected in ((True, True), (False, False)):
        monkeypatch.setattr(torch.backends.mkldnn, "is_available", lambda: available)
        assert prefers_channels_last(torch.device("cpu")) is expected
        model = _net(0, digits)
        train_model(model, digits, tc(epochs=1, batch_size=64, device="cpu", channels_last="auto"), seed=0)
        # a 3x3 conv with several input channels (the 1-channel stem is both layouts at once)
        weight = next(p for p in model.parameters() if p.dim() == 4 and p.shape[1] > 1 and p.shape[2] > 1)
        assert weight.is_contiguous(memory_format=torch.channels_last) is expected
        assert weight.is_contiguous() is not expected


# ------------------------------------------------------------------------ evaluation
def test_evaluate_model_exact_loss_accuracy_and_logits():
    # logits = x itself: the rows below predict classes 0, 1, 1 for labels 0, 1, 0
    x = torch.tensor([[2.0, 0.0], [0.0, 1.0], [0.0, 3.0]])
    y = torch.tensor([0, 1, 0])
    model = nn.Identity()
    model.register_parameter("dummy", nn.Parameter(torch.zeros(1)))
    model.train()
    result = evaluate_model(model, DataLoader(TensorDataset(x, y), batch_size=2), "cpu", return_logits=True)
    nll = [math.log(1 + math.exp(-2)), math.log(1 + math.exp(-1)), math.log(1 + math.exp(3))]
    assert result.loss == pytest.approx(sum(nll) / 3)
    assert result.acc == pytest.approx(200 / 3)
    assert result.num_samples == 3
    assert torch.equal(result.logits, x) and torch.equal(result.targets, y)
    assert model.training  # mode restored
    empty = evaluate_model(model, DataLoader(TensorDataset(x[:0], y[:0]), batch_size=2))
    assert math.isnan(empty.loss) and math.isnan(empty.acc) and empty.logits is None


# ------------------------------------------------------------------------- evaluator
def test_evaluate_batches_is_the_loop_of_evaluate_model(digits):
    model = _net(0, digits).eval()
    loader = digits.loader("val", 16, shuffle=False)
    whole = evaluate_model(model, loader, "cpu")
    batches = [(x, y) for x, y in loader]
    looped = evaluate_batches(model, batches, torch.device("cpu"))
    assert (looped.loss, looped.acc, looped.num_samples) == (whole.loss, whole.acc, whole.num_samples)


def test_training_evaluator_contract(digits):
    dataset = DatasetConfig(max_train=256, max_val=64, max_test=64)
    network = ComponentConfig("nb201", {"channels": 4, "cells_per_stage": 1})
    ev = TrainingEvaluator(SPACE, dataset, TINY, network)
    assert isinstance(ev, Evaluator)
    result = ev.evaluate(GOOD, seed=3)
    assert set(result.metrics) == set(ev.metric_names) and not result.failed
    assert result.metrics["params_M"] == count_parameters(_net(0, digits)) / 1e6
    assert result.cost > 0 and result.info["epochs"] == 2 and len(result.info["curves"]["val_acc"]) == 2
    # picklable, and the copy gives the same metrics for the same (arch, seed)
    clone = pickle.loads(pickle.dumps(ev))
    assert clone.evaluate(GOOD, seed=3).metrics == result.metrics
    with pytest.raises(ArchError):
        ev.evaluate((9, 9, 9, 9, 9, 9), seed=0)


def test_diverged_training_is_a_failed_evaluation():
    dataset = DatasetConfig(max_train=128, max_val=32, max_test=32)
    network = ComponentConfig("nb201", {"channels": 4, "cells_per_stage": 1})
    ev = TrainingEvaluator(SPACE, dataset, tc(epochs=2, batch_size=32, lr=1e6, momentum=0.0, nesterov=False, device="cpu"), network)
    result = ev.evaluate(GOOD, seed=0)
    assert result.failed and result.error.startswith("training diverged: the loss became nan")


def test_training_evaluator_config():
    cfg = from_dict(TrainingEvaluatorConfig, {
        "dataset": {"name": "digits", "val_fraction": 0.2},
        "train": {"epochs": 1, "compute": {"device": "cpu"}},
        "network": {"name": "nb201", "params": {"channels": 8, "cells_per_stage": 1}},
    }, "evaluator")
    ev = build_training(cfg, space=SPACE)
    assert (ev.dataset.val_fraction, ev.train.epochs, ev.network.params) == (0.2, 1, {"channels": 8, "cells_per_stage": 1})
    with pytest.raises(ConfigError, match="invalid value 0 for 'evaluator.network.params.channels'; expected an integer in \\[1, 256\\]"):
        from_dict(TrainingEvaluatorConfig, {"network": {"name": "nb201", "params": {"channels": 0}}}, "evaluator")
    with pytest.raises(ConfigError, match="unknown key 'evaluator.train.epoch'"):
        from_dict(TrainingEvaluatorConfig, {"train": {"epoch": 1}}, "evaluator")
