"""Small, fast settings, toy data and a toy search space for the predictor tests."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from evonas.config import ComponentConfig
from evonas.errors import ArchError
from evonas.spaces import Arch, SpaceBase, get_space
from predictors import ZeroCostScorer

SPACE = get_space("nb201")

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


def tiny_network(channels: int = 4, cells_per_stage: int = 1) -> ComponentConfig:
    """The NAS-Bench-201 decoder at a test size."""
    return ComponentConfig("nb201", {"channels": channels, "cells_per_stage": cells_per_stage})


def tiny_scorer(shared_data: Path, **kw: Any) -> ZeroCostScorer:
    """A zero-cost scorer on real CIFAR-10 JPEGs with a tiny network and minibatch."""
    settings: dict[str, Any] = {
        "data_root": str(shared_data / "images" / "cifar10-jpg-small.tar.gz"),
        "batch_size": 8,
        "network": tiny_network(),
    }
    settings.update(kw)
    return ZeroCostScorer(**settings)


def toy_data(n: int, seed: int) -> tuple[list[Arch], np.ndarray]:
    """``n`` distinct random cells and a smooth synthetic accuracy-like target."""
    rng = np.random.default_rng(seed)
    archs: list[Arch] = []
    while len(archs) < n:
        a = SPACE.sample(rng)
        if a not in archs:
            archs.append(a)
    y = np.array([80 + 2.0 * a.count(3) + 1.0 * a.count(2) - 3.0 * a.count(0) for a in archs])
    return archs, y + rng.normal(0.0, 0.5, size=n)


# ---------------------------------------------------------------------- a toy space
@dataclass(frozen=True)
class FlatConfig:
    """Parameters of :class:`FlatSpace`."""

    length: int = 4
    num_choices: int = 3


class FlatSpace(SpaceBase):
    """A row of ``length`` positions with ``num_choices`` options each: enumerable and
    fixed-length, but without an op-node graph or a network decoder."""

    name = "toy_flat"
    capabilities = frozenset({"enumerable", "fixed_length"})
    Config = FlatConfig

    @property
    def length(self) -> int:
        return int(self.config.length)

    @property
    def num_choices(self) -> int:
        return int(self.config.num_choices)

    @property
    def size(self) -> int:
        return int(self.num_choices**self.length)

    def validate(self, arch: Any) -> Arch:
        if isinstance(arch, str):
            return self.parse(arch)
        if not isinstance(arch, Sequence) or len(arch) != self.length or not all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) and 0 <= v < self.num_choices for v in arch
        ):
            raise ArchError(f"a toy_flat genotype is {self.length} ints in 0..{self.num_choices - 1}; got {arch!r}")
        return tuple(int(v) for v in arch)

    def parse(self, text: str) -> Arch:
        try:
            return self.validate(tuple(int(t) for t in text.split("-")))
        except ValueError:
            raise ArchError(f"not a toy_flat string: {text!r}") from None

    def format(self, arch: Arch) -> str:
        return "-".join(map(str, arch))

    def sample(self, rng: np.random.Generator) -> Arch:
        return tuple(int(v) for v in rng.integers(0, self.num_choices, size=self.length))

    def mutate(self, arch: Arch, rng: np.random.Generator) -> Arch:
        pos = int(rng.integers(self.length))
        child = list(arch)
        child[pos] = (arch[pos] + int(rng.integers(1, self.num_choices))) % self.num_choices
        return tuple(child)

    def neighbors(self, arch: Arch) -> list[Arch]:
        return [(*arch[:i], v, *arch[i + 1:]) for i in range(self.length) for v in range(self.num_choices) if v != arch[i]]

    def canonical_key(self, arch: Arch) -> Arch:
        return arch

    def all_archs(self) -> list[Arch]:
        return list(itertools.product(range(self.num_choices), repeat=self.length))

    def ordinal(self, arch: Arch) -> int:
        value = 0
        for v in self.validate(arch):
            value = value * self.num_choices + v
        return value

    def from_ordinal(self, ordinal: int) -> Arch:
        return self.all_archs()[ordinal]


@pytest.fixture
def toy_flat_registered() -> Iterator[type[FlatSpace]]:
    """:class:`FlatSpace` registered as the space ``toy_flat`` for one test."""
    from evonas.spaces import SPACES

    SPACES.register("toy_flat")(FlatSpace)
    try:
        yield FlatSpace
    finally:
        SPACES.unregister("toy_flat")


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread() -> Iterator[None]:
    """Tiny models run fastest single-threaded, and the test machine is shared."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
