"""The supernet evaluator served by Ray actors, driven by the Ray executor."""

from __future__ import annotations

# tests/conftest.py sets Ray's loopback environment before anything imports Ray.
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from _toys import trained_toy_supernet  # noqa: E402

from evonas.data import DatasetConfig  # noqa: E402
from evonas.errors import ConfigError  # noqa: E402
from evonas.executors._base import Request  # noqa: E402
from evonas.spaces import NB201Space  # noqa: E402
from evonas.supernet import SupernetActorEvaluator, SupernetEvalConfig, SupernetEvaluator, SupernetSpec  # noqa: E402

pytestmark = [pytest.mark.ray, pytest.mark.slow]

DIGITS = DatasetConfig(name="digits", max_train=128, max_val=40, max_test=16)
SPACE = NB201Space()


def _evaluator() -> SupernetEvaluator:
    net = trained_toy_supernet(DIGITS.load(), steps=3)
    config = SupernetEvalConfig(bn_batches=1, batch_size=32, val_images=32)
    # one thread in both places: oneDNN's channels-last kernels round differently with more threads
    return SupernetEvaluator(
        net.state_dict(), SupernetSpec(4, 1), DIGITS, config, num_classes=10, in_channels=1, num_threads=1
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
        executor.start(served)
        for i, arch in enumerate(archs):
            executor.submit(Request(i, arch, seed=i))
        done = {}
        while executor.num_pending:
            for request, evaluation in executor.wait():
                assert not evaluation.failed, evaluation.error
                done[request.eval_id] = evaluation.metrics
        assert [done[i] for i in range(len(archs))] == expected
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
    with pytest.raises(ConfigError, match="num_actors must be a positive integer; got 0"):
        SupernetActorEvaluator(_evaluator(), num_actors=0)
