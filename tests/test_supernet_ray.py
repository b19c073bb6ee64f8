"""The supernet evaluator served by Ray actors, driven by the Ray executor."""

from __future__ import annotations

# tests/conftest.py sets Ray's loopback environment before anything imports Ray.
import numpy as np
import pytest
from _toys import trained_toy_supernet

from evonas.config import ComponentConfig
from evonas.data import DatasetConfig
from evonas.errors import ConfigError
from evonas.evaluation import EvaluationWorker
from evonas.executors import Task
from evonas.spaces import get_space
from evonas.supernet import (
    SupernetActorEvaluator,
    SupernetEvalConfig,
    SupernetEvaluator,
)

pytestmark = [pytest.mark.ray, pytest.mark.slow]

DIGITS = DatasetConfig(name="digits", max_train=128, max_val=40, max_test=16)
SPACE = get_space("nb201")
TOY = ComponentConfig("nb201", {"channels": 4, "cells_per_stage": 1})  # the supernet of trained_toy_supernet


def _evaluator() -> SupernetEvaluator:
    net = trained_toy_supernet(DIGITS.load(), steps=3)
    config = SupernetEvalConfig(bn_batches=1, batch_size=32, val_images=32)
    # one thread in both places: oneDNN's channels-last kernels round differently with more threads
    return SupernetEvaluator(
        net.state_dict(), SPACE, TOY, DIGITS, config, num_classes=10, in_channels=1, num_threads=1
    )


def test_actor_evaluator_through_the_ray_executor_matches_in_process_results():
    from evonas.executors._ray import RayExecutor, init_local_ray, ray

    local = _evaluator()
    archs = [SPACE.sample(np.random.default_rng(s)) for s in range(6)] + [(3, 3, 3, 3, 3, 3)] * 2
    expected = [local.evaluate(a).metrics for a in archs]
    # tasks only wait for the actors: small CPU shares leave the CPUs to the actors
    init_local_ray(num_cpus=2)
    executor = RayExecutor(cpus_per_eval=0.25, max_in_flight=2, catch_errors=False)
    try:
        served = SupernetActorEvaluator(_evaluator(), num_actors=2, num_cpus=0.5)
        assert served.space == SPACE
        outcomes = executor.run_all(EvaluationWorker(served), [Task(i, arch, seed=i) for i, arch in enumerate(archs)])
        for outcome in outcomes:
            assert not outcome.failed and not outcome.value.failed, outcome.error
        assert [o.value.metrics for o in outcomes] == expected
        stats = served.stats()
        # each actor built the supernet once; the repeated architecture hit its actor's cache
        assert sum(s["misses"] for s in stats) == 7 and sum(s["hits"] for s in stats) == 1
        assert [e.metrics for e in served.evaluate_many(archs[:3])] == expected[:3]
        served.close()
    finally:
        executor.close()
        if ray.is_initialized():
            ray.shutdown()


def test_actor_evaluator_checks_its_arguments():
    with pytest.raises(ConfigError, match="invalid value 0 for 'num_actors' of SupernetActorEvaluator; expected an integer >= 1"):
        SupernetActorEvaluator(_evaluator(), num_actors=0)
