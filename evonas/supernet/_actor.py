"""A supernet evaluator served by Ray actors that hold the weights once.

Evaluations of a search run as Ray tasks (:class:`evonas.executors.RayExecutor`), which
receive their evaluator by reference. With a plain :class:`SupernetEvaluator` every
worker process would deserialise the weights and build the supernet and its evaluation
batches itself. :class:`SupernetActorEvaluator` instead starts ``num_actors`` actors,
each building them once; the evaluator object the tasks receive only holds the actor
handles, and each architecture is routed to a fixed actor so that its cache is used.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Any

from evonas.config import check_int, check_number
from evonas.evaluation import Evaluation
from evonas.spaces import Arch
from evonas.supernet._evaluator import SupernetEvaluator


class _EvaluatorActor:
    """Actor body: one :class:`SupernetEvaluator`, set up on the first request."""

    def __init__(self, evaluator: SupernetEvaluator) -> None:
        self.evaluator = evaluator

    def evaluate(self, arch: Arch, seed: int) -> Evaluation:
        return self.evaluator.evaluate(arch, seed)

    def stats(self) -> dict[str, int]:
        return {"hits": self.evaluator.hits, "misses": self.evaluator.misses}


class SupernetActorEvaluator:
    """An :class:`~evonas.evaluation.Evaluator` whose evaluations run in Ray actors.

    Ray must be initialised (e.g. with :func:`evonas.executors._ray.init_local_ray` or by
    a :class:`~evonas.executors.RayExecutor` started first). The weights go into the
    object store once and every actor loads them once. Because Ray tasks that call this
    evaluator only wait for an actor, give them a small ``cpus_per_eval`` (e.g. 0.1) so
    that they do not starve the actors of CPUs.

    Args:
        evaluator: The evaluator to serve (its weights and settings).
        num_actors: Actors (each holds a copy of the supernet).
        num_cpus: CPUs reserved by each actor.
        num_gpus: GPUs reserved by each actor (fractions allowed).

    Raises:
        ConfigError: A bad actor count or resource amount.
        RuntimeError: Ray is not initialised.
    """

    def __init__(
        self, evaluator: SupernetEvaluator, num_actors: int = 1, num_cpus: float = 1.0, num_gpus: float = 0.0
    ) -> None:
        from evonas.executors import (
            _ray,  # sets Ray's environment defaults before importing it
        )

        ray = _ray.ray
        check_int(num_actors, "num_actors", 1, owner="SupernetActorEvaluator")
        for name, value in (("num_cpus", num_cpus), ("num_gpus", num_gpus)):
            check_number(value, name, 0, owner="SupernetActorEvaluator")
        if not ray.is_initialized():
            raise RuntimeError("SupernetActorEvaluator needs an initialised Ray (start a RayExecutor or ray.init first)")
        self.metric_names: tuple[str, ...] = tuple(evaluator.metric_names)
        ref = ray.put(evaluator)
        actor_cls = ray.remote(_EvaluatorActor).options(num_cpus=num_cpus, num_gpus=num_gpus)
        self.actors: list[Any] = [actor_cls.remote(ref) for _ in range(num_actors)]
        self.space = evaluator.space

    def _actor(self, arch: Arch) -> Any:
        # a digest of the genotype, the same in every process (str hashes are salted)
        return self.actors[zlib.crc32(repr(arch).encode()) % len(self.actors)]

    def evaluate(self, arch: Sequence[int], seed: int = 0) -> Evaluation:
        """Evaluate ``arch`` in its actor (blocks until done)."""
        from evonas.executors._ray import ray

        genotype = self.space.validate(arch)
        return ray.get(self._actor(genotype).evaluate.remote(genotype, seed))

    def evaluate_many(self, archs: Sequence[Sequence[int]], seeds: Sequence[int] | None = None) -> list[Evaluation]:
        """Evaluate ``archs`` spread over the actors in parallel; results in input order
        (the evaluations do not depend on ``seeds``)."""
        from evonas.executors._ray import ray

        genotypes = [self.space.validate(a) for a in archs]
        refs = [self._actor(g).evaluate.remote(g, 0) for g in genotypes]
        return list(ray.get(refs))

    def stats(self) -> list[dict[str, int]]:
        """Cache hits and misses of every actor."""
        from evonas.executors._ray import ray

        return list(ray.get([a.stats.remote() for a in self.actors]))

    def close(self) -> None:
        """Stop the actors."""
        from evonas.executors._ray import ray

        for actor in self.actors:
            ray.kill(actor)
        self.actors = []
