"""Which architectures train the supernet: the sampler registry.

A sampler proposes the paths of one training step (one architecture for most samplers,
``num_ops`` for the fair sampler, whose gradients are accumulated) and may take feedback
from the proxy-validation loop (a fitted predictor and the memory of evaluated
architectures). Samplers hold no generator: every draw comes from the ``rng`` passed to
:meth:`Sampler.propose`, so a training run is reproducible from its seed and a sampler
pickles into a checkpoint as plain data.

Registered: ``uniform`` (Guo et al., SPOS, ECCV 2020), ``novelty`` (Zhang et al., IJCAI
2020), ``importance`` (Li et al., TPAMI 2022) and ``fair`` (Chu et al., FairNAS, ICCV
2021), which wraps any of the others.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar, cast

import numpy as np

from evonas._registry import Registry
from evonas.config import (
    MAX_ARCHS,
    MAX_COUNT,
    Checked,
    ComponentConfig,
    Range,
    Registered,
    from_dict,
)
from evonas.errors import ConfigError
from evonas.spaces import Arch, FixedLengthSpace, SearchSpace, require

SAMPLERS: Registry[type[Sampler]] = Registry("sampler")
"""Sampler name -> class with a ``Config`` dataclass; see :func:`make_sampler`."""


class Sampler(abc.ABC):
    """Proposes the architectures that the supernet trains on.

    Subclasses declare the space capabilities they use in ``requires``; building a
    sampler for a space that lacks one raises a one-line
    :class:`~evonas.errors.CapabilityError`.

    Args:
        space: The search space.
        config: The sampler's ``Config`` dataclass instance.

    Raises:
        CapabilityError: ``space`` lacks a capability in ``requires``.
    """

    name: ClassVar[str]
    Config: ClassVar[type]
    requires: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, space: SearchSpace, config: Any) -> None:
        require(space, self.requires, f"sampler {self.name!r}")
        self.space = space
        self.config = config

    @abc.abstractmethod
    def propose(self, rng: np.random.Generator) -> list[Arch]:
        """The architectures of one training step (their gradients are accumulated)."""

    def update(self, predictor: Any, memory: Sequence[tuple[Arch, float]], rng: np.random.Generator) -> None:
        """Feedback from the proxy-validation loop.

        Samplers that do not learn from evaluations (``uniform``, ``novelty``) keep this
        default, which ignores it.

        Args:
            predictor: A fitted predictor with ``predict(archs)`` returning proxy
                validation losses (lower is better).
            memory: The evaluated ``(architecture, validation loss)`` pairs so far.
            rng: Generator for any random draw of the update.
        """
        return

    @property
    def uses_feedback(self) -> bool:
        """Whether :meth:`update` does anything (the proxy loop then fits the predictor every round)."""
        return type(self).update is not Sampler.update

    def summary(self) -> dict[str, Any]:
        """JSON-ready facts about the sampler's state, for the run log."""
        return {}


class _PerPosition(Sampler):
    """A sampler that reads the positions and choices of a ``fixed_length`` space."""

    requires: ClassVar[frozenset[str]] = frozenset({"fixed_length"})

    def __init__(self, space: SearchSpace, config: Any) -> None:
        super().__init__(space, config)
        fixed = cast(FixedLengthSpace, space)
        self.num_edges = int(fixed.length)
        self.num_ops = int(fixed.num_choices)


def make_sampler(
    name: str, space: SearchSpace, params: dict[str, Any] | None = None, where: str = "sampler.params"
) -> Sampler:
    """Build the registered sampler ``name`` with ``params`` checked against its ``Config``.

    Raises:
        UnknownChoiceError: ``name`` is not registered.
        ConfigError: An unknown parameter or a bad value.
        CapabilityError: ``space`` lacks a capability the sampler (or a fair sampler's
            base) requires.
    """
    cls = SAMPLERS.get(name)
    return cls(space, from_dict(cls.Config, params or {}, where))


# --------------------------------------------------------------------------- uniform
@dataclass(frozen=True)
class UniformConfig(Checked):
    """The uniform sampler has no parameters."""


@SAMPLERS.register("uniform")
class UniformSampler(Sampler):
    """Single-path one-shot with uniform sampling: every step one architecture drawn
    uniformly from the space (Guo et al., "Single Path One-Shot Neural Architecture Search
    with Uniform Sampling", ECCV 2020)."""

    name = "uniform"
    Config = UniformConfig

    def propose(self, rng: np.random.Generator) -> list[Arch]:
        return [self.space.sample(rng)]


# --------------------------------------------------------------------------- novelty
@dataclass(frozen=True)
class NoveltyConfig(Checked):
    """Parameters of the novelty-driven sampler.

    Attributes:
        k: Nearest archive members whose mean distance is an architecture's novelty (3;
            a mean over many near neighbours barely penalises repeats).
        num_candidates: Perturbed archive members scored per step; the most novel is
            trained (16).
        max_edits: Each candidate is its parent with 1 to ``max_edits`` random one-edit
            mutations (2).
        warmup_steps: Uniform proposals before novelty search starts; they seed the
            archive (100).
        archive_size: Most recent proposals kept in the archive (5000).
    """

    k: Annotated[int, Range(1, MAX_ARCHS)] = 3
    num_candidates: Annotated[int, Range(1, MAX_ARCHS)] = 16
    max_edits: Annotated[int, Range(1, MAX_COUNT)] = 2
    warmup_steps: Annotated[int, Range(0, MAX_COUNT)] = 100
    archive_size: Annotated[int, Range(1, MAX_ARCHS)] = 5000


@SAMPLERS.register("novelty")
class NoveltySampler(_PerPosition):
    """Novelty-driven sampling (Zhang et al., "One-Shot Neural Architecture Search via
    Novelty Driven Sampling", IJCAI 2020).

    An archive holds the architectures trained so far. The novelty of an architecture is
    its mean Hamming distance to the ``k`` nearest archive members (Lehman & Stanley's
    novelty search). After a uniform warm-up, each step perturbs ``num_candidates``
    archive members (each a uniformly chosen member, mutated by 1..``max_edits`` one-edit
    mutations of the space) and trains the most novel candidate, ties broken at random:
    an evolutionary (1, lambda) step towards higher novelty, used here in place of the
    paper's evolution-strategy update on continuous architecture parameters. The trained
    architecture joins the archive, so the sampler keeps moving to the least-trained
    regions of the space and covers it faster than uniform sampling, while every op of
    every position is still drawn about as often as under uniform sampling. Needs a
    ``fixed_length`` space (the archive is a table of positions).
    """

    name = "novelty"
    Config = NoveltyConfig

    def __init__(self, space: SearchSpace, config: NoveltyConfig) -> None:
        super().__init__(space, config)
        self.archive = np.zeros((config.archive_size, self.num_edges), dtype=np.int16)
        self.size = 0  # members in the archive
        self.written = 0  # proposals ever added (ring-buffer position)
        self.steps = 0

    def novelty(self, archs: Sequence[Arch]) -> np.ndarray:
        """Mean Hamming distance of each of ``archs`` to its ``k`` nearest archive members.

        An empty archive makes every architecture maximally novel (``inf``).

        Shapes:
            ``(len(archs),)``.
        """
        cand = np.asarray(archs, dtype=np.int16).reshape(len(archs), self.num_edges)
        if self.size == 0:
            return np.full(len(cand), np.inf)
        dist = (cand[:, None, :] != self.archive[None, : self.size, :]).sum(axis=2)
        k = min(self.config.k, self.size)
        nearest = np.partition(dist, k - 1, axis=1)[:, :k]
        return nearest.mean(axis=1)

    def propose(self, rng: np.random.Generator) -> list[Arch]:
        if self.steps < self.config.warmup_steps or self.size == 0:
            arch = self.space.sample(rng)
        else:
            candidates = []
            for _ in range(self.config.num_candidates):
                child = tuple(int(v) for v in self.archive[int(rng.integers(self.size))])
                for _ in range(int(rng.integers(1, self.config.max_edits + 1))):
                    child = self.space.mutate(child, rng)
                candidates.append(child)
            scores = self.novelty(candidates)
            best = np.flatnonzero(scores == scores.max())
            arch = candidates[int(best[rng.integers(len(best))])]
        self._add(arch)
        self.steps += 1
        return [arch]

    def _add(self, arch: Arch) -> None:
        self.archive[self.written % self.config.archive_size] = arch
        self.written += 1
        self.size = min(self.written, self.config.archive_size)

    def summary(self) -> dict[str, Any]:
        members = {tuple(row) for row in self.archive[: self.size].tolist()}
        return {"archive": self.size, "archive_distinct": len(members)}


# ------------------------------------------------------------------------ importance
@dataclass(frozen=True)
class ImportanceConfig(Checked):
    """Parameters of the importance-guided sampler.

    Attributes:
        explore: Probability of drawing an edge's op uniformly instead of from the
            importance weights (0.5).
        temperature: Softmax temperature over standardised predicted losses (1.0).
        num_reference: Architectures of the memory whose one-edit variants measure the
            predictor's sensitivity to each op choice (64).
    """

    explore: Annotated[float, Range(0, 1)] = 0.5
    temperature: Annotated[float, Range(0, low_open=True)] = 1.0
    num_reference: Annotated[int, Range(1, MAX_ARCHS)] = 64


@SAMPLERS.register("importance")
class ImportanceSampler(_PerPosition):
    """Operation-importance-guided sampling (after Li et al., "Neural Architecture Search
    via Proxy Validation", TPAMI 2022).

    The proxy predictor's sensitivity to each op choice defines its importance: for
    reference architectures from the memory, every edge is set to every op and the
    predicted validation losses are averaged, giving ``L[edge, op]``. Importance weights
    are ``softmax(-z / temperature)`` per edge, with ``z`` the losses standardised over
    the whole table. Each edge's op is then drawn uniformly with probability ``explore``
    (exploration) and from the weights otherwise (exploitation). Until the first
    :meth:`update` the sampler is uniform. Needs a ``fixed_length`` space.
    """

    name = "importance"
    Config = ImportanceConfig

    def __init__(self, space: SearchSpace, config: ImportanceConfig) -> None:
        super().__init__(space, config)
        self.weights = np.full((self.num_edges, self.num_ops), 1.0 / self.num_ops)
        self.updates = 0

    def propose(self, rng: np.random.Generator) -> list[Arch]:
        explore = self.config.explore
        probs = explore / self.num_ops + (1.0 - explore) * self.weights
        u = rng.random(self.num_edges)
        ops = (probs.cumsum(axis=1) < u[:, None]).sum(axis=1)
        return [tuple(int(min(o, self.num_ops - 1)) for o in ops)]

    def update(self, predictor: Any, memory: Sequence[tuple[Arch, float]], rng: np.random.Generator) -> None:
        if predictor is None or not memory:
            return
        archs = [a for a, _ in memory]
        take = min(self.config.num_reference, len(archs))
        reference = [archs[i] for i in rng.choice(len(archs), size=take, replace=False)]
        variants = []
        for arch in reference:
            for e in range(self.num_edges):
                for o in range(self.num_ops):
                    child = list(arch)
                    child[e] = o
                    variants.append(tuple(child))
        pred = np.asarray(predictor.predict(variants), dtype=np.float64)
        table = pred.reshape(take, self.num_edges, self.num_ops).mean(axis=0)
        spread = table.std()
        z = (table - table.mean()) / (spread if spread > 0 else 1.0)
        logits = -z / self.config.temperature
        logits -= logits.max(axis=1, keepdims=True)
        w = np.exp(logits)
        self.weights = w / w.sum(axis=1, keepdims=True)
        self.updates += 1
        return

    def summary(self) -> dict[str, Any]:
        return {"updates": self.updates, "weights": np.round(self.weights, 4).tolist()}


# ------------------------------------------------------------------------------ fair
@dataclass(frozen=True)
class FairConfig(Checked):
    """Parameters of the fair sampler.

    Attributes:
        base: The sampler proposing the first path of every step, ``{name, params}``
            (``uniform``, ``novelty`` or ``importance``; default uniform).
    """

    base: Annotated[ComponentConfig, Registered("sampler")] = field(default_factory=lambda: ComponentConfig("uniform"))

    def __post_init__(self) -> None:
        super().__post_init__()
        SAMPLERS.get(self.base.name)
        if self.base.name == "fair":
            raise ConfigError("invalid value 'fair' for 'sampler.params.base.name'; the fair sampler does not nest")


@SAMPLERS.register("fair")
class FairSampler(_PerPosition):
    """Strict fairness (Chu et al., "FairNAS: Rethinking Evaluation Fairness of Weight
    Sharing Neural Architecture Search", ICCV 2021), combinable with any base sampler.

    Every step trains ``num_ops`` paths on the same batch with accumulated gradients,
    and together they use every candidate op of every edge exactly once, so all ops are
    trained equally often. The base sampler chooses the first path; on each edge the
    remaining paths take the other ops in a random order. Needs a ``fixed_length`` space.
    """

    name = "fair"
    Config = FairConfig

    def __init__(self, space: SearchSpace, config: FairConfig) -> None:
        super().__init__(space, config)
        self.base = make_sampler(config.base.name, space, config.base.params, "sampler.params.base.params")

    @property
    def uses_feedback(self) -> bool:
        return self.base.uses_feedback

    def propose(self, rng: np.random.Generator) -> list[Arch]:
        first = self.base.propose(rng)[0]
        columns = []
        for op in first:
            others = [o for o in range(self.num_ops) if o != op]
            columns.append([op, *(others[i] for i in rng.permutation(len(others)))])
        return [tuple(int(col[t]) for col in columns) for t in range(self.num_ops)]

    def update(self, predictor: Any, memory: Sequence[tuple[Arch, float]], rng: np.random.Generator) -> None:
        self.base.update(predictor, memory, rng)

    def summary(self) -> dict[str, Any]:
        return {"base": self.config.base.name, **self.base.summary()}


def coverage(archs: Sequence[Arch]) -> int:
    """Number of distinct architectures in ``archs``."""
    return len(set(map(tuple, archs)))


def op_balance(counts: np.ndarray) -> float:
    """Ratio of the least- to the most-trained op over all edges (1.0: perfectly fair).

    Shapes:
        ``counts``: ``(num_edges, num_ops)``.
    """
    top = float(counts.max())
    return math.nan if top == 0 else float(counts.min()) / top
