"""The search loop on Ray: same results as serial for order-independent strategies, and no
evaluation lost when a node of a multi-node cluster goes away mid-search."""

from __future__ import annotations

import numpy as np
import pytest

ray = pytest.importorskip("ray")

import _toys  # noqa: E402
from ray.cluster_utils import Cluster  # noqa: E402

from evonas.config import ComponentConfig  # noqa: E402
from evonas.evaluation import TabularEvaluator, TabularEvaluatorConfig  # noqa: E402
from evonas.executors import RayExecutor, SerialExecutor  # noqa: E402
from evonas.executors import init_local_ray  # noqa: E402
from evonas.fitness import NeighbourhoodAwareFitness, Objective, PlainFitness  # noqa: E402
from evonas.search import Budget, Search  # noqa: E402
from evonas.spaces import get_space  # noqa: E402
from evonas.strategies import NSGA2, NSGA2Config, RandomSearch  # noqa: E402

ray.cloudpickle.register_pickle_by_value(_toys)
pytestmark = pytest.mark.ray
SPACE = get_space("nb201")


@pytest.fixture(scope="module")
def local_ray():
    if ray.is_initialized():
        ray.shutdown()
    init_local_ray(num_cpus=2)
    yield
    ray.shutdown()


def history(executor, strategy, fitness, evaluator, budget, seed=0):
    search = Search(SPACE, strategy, fitness, evaluator, executor, budget, seed)
    return [(r.cand_id, r.arch, r.values, r.used_evaluations) for r in search.run_search()]


def test_nsga2_on_ray_equals_serial(local_ray, nb201_path):
    tables = (ComponentConfig("nb201", {"path": str(nb201_path)}),)
    evaluator = TabularEvaluator(TabularEvaluatorConfig(tables=tables, metric="cifar10-valid_valid_acc", noisy=True), SPACE)
    objectives = (Objective("cifar10-valid_valid_acc"), Objective("params_M", "min"))

    def run(executor):
        strategy = NSGA2(SPACE, 2, np.random.default_rng(1), NSGA2Config(population_size=8))
        return history(executor, strategy, PlainFitness(objectives), evaluator, Budget(evaluations=40), seed=1)

    serial = run(SerialExecutor())
    parallel = run(RayExecutor(max_in_flight=2))
    assert parallel == serial
    assert len(serial) == 40


@pytest.mark.parametrize("evaluator_cls", [_toys.SumEvaluator, _toys.BatchSumEvaluator])
def test_na_random_search_on_ray_equals_serial(local_ray, evaluator_cls):
    """With a batch evaluator a candidate's 25 evaluations travel as one Ray task."""
    evaluator = evaluator_cls(noise=1.0)
    objectives = (Objective("score"),)

    def run(executor):
        na = NeighbourhoodAwareFitness(SPACE, objectives)
        return {
            (arch, values) for _, arch, values, _ in history(executor, RandomSearch(SPACE, 1, np.random.default_rng(2)), na, evaluator, Budget(evaluations=120), seed=2)
        }

    assert run(RayExecutor(max_in_flight=2)) == run(SerialExecutor())


def test_node_removed_mid_search_loses_no_evaluation(tmp_path):
    if ray.is_initialized():
        ray.shutdown()
    cluster = Cluster(
        initialize_head=True,
        head_node_args={
            "num_cpus": 0,
            "node_ip_address": "127.0.0.1",
            "include_dashboard": False,
            "_system_config": {"health_check_period_ms": 300, "health_check_failure_threshold": 3},
        },
    )
    workers = [cluster.add_node(num_cpus=1, node_ip_address="127.0.0.1") for _ in range(2)]
    cluster.wait_for_nodes()
    assert cluster.address.startswith("127.0.0.1:")
    try:
        from evonas.runs import RunDir

        run = RunDir.create(tmp_path / "run", {"test": True}, 0, "search")
        removed = []

        def on_candidate(record):
            if record.cand_id == 4 and not removed:
                cluster.remove_node(workers[0])
                removed.append(True)

        search = Search(
            SPACE,
            RandomSearch(SPACE, 1, np.random.default_rng(0)),
            PlainFitness((Objective("score"),)),
            _toys.SumEvaluator(sleep=0.4),
            RayExecutor(address=cluster.address, max_in_flight=2, max_retries=3),
            Budget(evaluations=16),
            seed=0,
            run=run,
            on_candidate=on_candidate,
        )
        records = search.run_search()
        run.close()
        assert removed
        assert len(records) == 16 and not any(r.failed for r in records)
        logged = [r for r in run.read_log() if r["type"] == "eval"]
        assert sorted(r["eval_id"] for r in logged) == list(range(16))
        assert all(not r["evaluation"]["failed"] for r in logged)
        # the same evaluations as a serial run: nothing lost, nothing changed
        serial = Search(SPACE, RandomSearch(SPACE, 1, np.random.default_rng(0)), PlainFitness((Objective("score"),)),
                        _toys.SumEvaluator(), SerialExecutor(), Budget(evaluations=16), seed=0).run_search()
        assert {(r.arch, r.values) for r in records} == {(r.arch, r.values) for r in serial}
    finally:
        ray.shutdown()
        cluster.shutdown()
