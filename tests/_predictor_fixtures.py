"""Small, fast settings and toy data for the predictor tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from evonas.spaces import NB201Space

SPACE = NB201Space()

# Test-size hyper-parameters per registered predictor (small epochs and widths); names
# without an entry use their defaults.
FAST: dict[str, dict[str, Any]] = {
    "bananas": {"n_models": 2, "hidden": 8, "layers": 1, "epochs": 6},
    "mlp": {"n_models": 2, "hidden": 8, "layers": 1, "epochs": 6},
    "mlp_haap": {"n_models": 1, "hidden": 8, "layers": 1, "epochs": 3, "haap_samples": 2},
    "gin": {"hidden": 8, "layers": 2, "epochs": 6},
    "gcn": {"hidden": 8, "layers": 2, "epochs": 6},
    "gae": {"hidden": 8, "latent": 4, "layers": 2, "epochs": 6, "pretrain_archs": 16, "pretrain_epochs": 2},
    "gae_scratch": {"hidden": 8, "latent": 4, "layers": 2, "epochs": 6},
    "rf": {"n_estimators": 10},
    "rf_haap": {"n_estimators": 10, "haap_samples": 2},
    "rf_zc": {"n_estimators": 10},
    "gbdt": {"n_estimators": 20},
    "gbdt_zc": {"n_estimators": 20},
}


def tiny_scorer(shared_data: Path, **kw: Any):  # type: ignore[no-untyped-def]
    """A zero-cost scorer on real CIFAR-10 JPEGs with a tiny network and minibatch."""
    from predictors import ZeroCostScorer

    settings = {
        "data_root": str(shared_data / "images" / "cifar10-jpg-small.tar.gz"),
        "batch_size": 8,
        "channels": 4,
        "cells": 1,
    }
    settings.update(kw)
    return ZeroCostScorer(**settings)


def toy_data(n: int, seed: int) -> tuple[list[tuple[int, ...]], np.ndarray]:
    """``n`` distinct random cells and a smooth synthetic accuracy-like target."""
    rng = np.random.default_rng(seed)
    archs: list[tuple[int, ...]] = []
    while len(archs) < n:
        a = SPACE.sample(rng)
        if a not in archs:
            archs.append(a)
    y = np.array([80 + 2.0 * a.count(3) + 1.0 * a.count(2) - 3.0 * a.count(0) for a in archs])
    return archs, y + rng.normal(0.0, 0.5, size=n)


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():  # type: ignore[no-untyped-def]
    """Tiny models run fastest single-threaded, and the test machine is shared."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
