"""RayExecutor: same results as SerialExecutor, bounded in-flight work, time-outs, errors,
worker crashes and node loss on a loopback multi-node cluster, and config validation."""

from __future__ import annotations

import math
import os
import sys
import time
import types
import uuid
from pathlib import Path

import numpy as np
import pytest

LOOPBACK = "127.0.0.1"
# tests/conftest.py sets Ray's loopback environment before anything imports Ray.

import ray  # noqa: E402
from ray.cluster_utils import Cluster  # noqa: E402

from evonas.config._loader import from_dict  # noqa: E402
from evonas.errors import ConfigError  # noqa: E402
from evonas.evaluation import Evaluation  # noqa: E402
from evonas.evaluation import EvaluationWorker  # noqa: E402
from evonas.executors import Task  # noqa: E402
from evonas.search import as_evaluation  # noqa: E402
from evonas.executors._ray import RayExecutor, RayExecutorConfig, init_local_ray  # noqa: E402
from evonas.executors._serial import SerialExecutor  # noqa: E402

pytestmark = pytest.mark.ray

# Ray workers cannot import this test module by name (pytest put its folder on the
# driver's sys.path only), so its evaluators travel by value.
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])


# -- Test evaluators ---------------------------------------------------------------------


class PolyEvaluator:
    """Metrics are a fixed polynomial of (arch, seed): exact values to compare against."""

    metric_names = ("score", "seed_mod")

    def evaluate(self, arch: tuple[int, ...], seed: int) -> Evaluation:
        score = sum((i + 1) * op for i, op in enumerate(arch)) + 0.5 * (seed % 7)
        return Evaluation(metrics={"score": float(score), "seed_mod": float(seed % 7)}, cost=0.25 * len(arch))


class CountingPickles(PolyEvaluator):
    """Counts, in the driver, how often the evaluator is pickled."""

    pickles = 0

    def __getstate__(self) -> dict:
        CountingPickles.pickles += 1
        return dict(self.__dict__)


def _record(log_dir: Path, kind: str, seed: int, value: str) -> None:
    # Write-then-rename, so that the test never reads a half-written record.
    name = f"{kind}-{seed}-{uuid.uuid4().hex}"
    (log_dir / f".tmp-{name}").write_text(value)
    os.replace(log_dir / f".tmp-{name}", log_dir / name)


class SleepyEvaluator(PolyEvaluator):
    """Sleeps, and logs each attempt's start and (start, end, node) to files named by seed."""

    def __init__(
        self, log_dir: Path, sleep_s: float, slow_seed: int | None = None, slow_s: float = 60.0
    ) -> None:
        self.log_dir = log_dir
        self.sleep_s = sleep_s
        self.slow_seed = slow_seed
        self.slow_s = slow_s

    def evaluate(self, arch: tuple[int, ...], seed: int) -> Evaluation:
        start = time.time()
        node = ray.get_runtime_context().get_node_id()
        _record(self.log_dir, "start", seed, f"{start} {node}")
        time.sleep(self.slow_s if seed == self.slow_seed else self.sleep_s)
        _record(self.log_dir, "done", seed, f"{start} {time.time()} {node}")
        return super().evaluate(arch, seed)


class RaisingEvaluator(PolyEvaluator):
    """Raises a two-line ValueError for archs starting with op 0; logs every attempt."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir

    def evaluate(self, arch: tuple[int, ...], seed: int) -> Evaluation:
        _record(self.log_dir, "start", seed, "")
        if arch[0] == 0:
            raise ValueError(f"bad arch {arch}\nsecond line of detail")
        return super().evaluate(arch, seed)


class CrashingEvaluator(PolyEvaluator):
    """Kills its worker process on the first ``crashes`` attempts of each seed."""

    def __init__(self, log_dir: Path, crashes: int) -> None:
        self.log_dir = log_dir
        self.crashes = crashes

    def evaluate(self, arch: tuple[int, ...], seed: int) -> Evaluation:
        attempt = len(list(self.log_dir.glob(f"start-{seed}-*")))
        _record(self.log_dir, "start", seed, "")
        if attempt < self.crashes:
            os._exit(1)
        return super().evaluate(arch, seed)


class DeviceReporter(PolyEvaluator):
    """Reports what the evaluation sees of CUDA_VISIBLE_DEVICES."""

    def evaluate(self, arch: tuple[int, ...], seed: int) -> Evaluation:
        base = super().evaluate(arch, seed)
        seen = os.environ.get("CUDA_VISIBLE_DEVICES")
        return Evaluation(base.metrics, base.cost, info={"cuda_visible": seen})


def attempts(log_dir: Path, seed: int) -> int:
    return len(list(log_dir.glob(f"start-{seed}-*")))


def intervals(log_dir: Path) -> dict[int, tuple[float, float, str]]:
    out = {}
    for path in log_dir.glob("done-*"):
        start, end, node = path.read_text().split()
        out[int(path.name.split("-")[1])] = (float(start), float(end), node)
    return out


def running_node(log_dir: Path, settle_s: float = 5.0) -> str | None:
    """Node id of the most recently started evaluation that has not finished yet."""
    deadline = time.monotonic() + settle_s
    while time.monotonic() < deadline:
        done = set(intervals(log_dir))
        started = []
        for path in log_dir.glob("start-*"):
            seed = int(path.name.split("-")[1])
            text = path.read_text().split()
            if seed not in done and len(text) == 2:
                started.append((float(text[0]), text[1]))
        if started:
            return max(started)[1]
        time.sleep(0.02)
    return None


def max_overlap(spans: list[tuple[float, float]]) -> int:
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    best = current = 0
    for _, step in events:
        current += step
        best = max(best, current)
    return best


def requests(n: int, seed: int = 0) -> list[Task]:
    rng = np.random.default_rng(seed)
    return [Task(i, tuple(int(v) for v in rng.integers(0, 5, size=6)), seed=100 + i) for i in range(n)]


def run_all(executor: RayExecutor | SerialExecutor, reqs: list[Task]) -> dict[int, Evaluation]:
    for r in reqs:
        executor.submit(r)
    out: dict[int, Evaluation] = {}
    while executor.num_pending:
        batch = executor.wait()
        assert batch, "wait() returned nothing while requests were pending"
        for outcome in batch:
            r = outcome.task
            assert r.task_id not in out, f"eval {r.task_id} returned twice"
            out[r.task_id] = as_evaluation(outcome)
    assert executor.wait() == []
    return out


# -- Fixtures ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def _ray_module():
    # If another test module imported Ray first, the environment variable came too late:
    # switch off the same constant it controls, for the loopback cluster of this module.
    patch = pytest.MonkeyPatch()
    patch.setattr(ray._private.ray_constants, "ENABLE_RAY_CLUSTER", False)
    yield
    if ray.is_initialized():
        ray.shutdown()
    patch.undo()


@pytest.fixture
def local_ray(_ray_module):
    """A 2-CPU loopback instance shared by the tests of this module (started once)."""
    if not ray.is_initialized():
        init_local_ray(num_cpus=2)
    assert ray.get_runtime_context().gcs_address.startswith(f"{LOOPBACK}:")
    yield


# -- Local instance ----------------------------------------------------------------------


def test_results_match_serial_executor(local_ray):
    reqs = requests(12)
    serial = SerialExecutor()
    serial.start(EvaluationWorker(PolyEvaluator()))
    expected = run_all(serial, reqs)
    with RayExecutor() as ex:
        ex.start(EvaluationWorker(PolyEvaluator()))
        assert ex.capacity == 2
        got = run_all(ex, reqs)
    assert got == expected
    # Hand-computed: arch (1, 2, 3, 4, 0, 1), seed 10 -> 1+4+9+16+0+6 + 0.5*3.
    assert PolyEvaluator().evaluate((1, 2, 3, 4, 0, 1), 10).metrics == {"score": 37.5, "seed_mod": 3.0}
    # The caller's Ray instance is reused and left running.
    assert ray.is_initialized()


def test_evaluator_is_put_once(local_ray):
    CountingPickles.pickles = 0
    with RayExecutor() as ex:
        ex.start(EvaluationWorker(CountingPickles()))
        assert CountingPickles.pickles == 1
        got = run_all(ex, requests(10))
    assert len(got) == 10 and not any(e.failed for e in got.values())
    assert CountingPickles.pickles == 1


def test_max_in_flight_one_runs_fifo_without_overlap(local_ray, tmp_path):
    reqs = [Task(i, (1, 1, 1, 1, 1, i % 5), seed=i) for i in range(4)]
    with RayExecutor(max_in_flight=1) as ex:
        ex.start(EvaluationWorker(SleepyEvaluator(tmp_path, sleep_s=0.3)))
        assert ex.capacity == 1
        for r in reqs:
            ex.submit(r)
        assert ex.num_pending == 4
        got = run_all(ex, [])
    assert sorted(got) == [0, 1, 2, 3]
    spans = intervals(tmp_path)
    starts = sorted(spans, key=lambda s: spans[s][0])
    assert starts == [0, 1, 2, 3]  # FIFO
    assert max_overlap([(s, e) for s, e, _ in spans.values()]) == 1


def test_max_in_flight_two_overlaps_two(local_ray, tmp_path):
    with RayExecutor(max_in_flight=2) as ex:
        ex.start(EvaluationWorker(SleepyEvaluator(tmp_path, sleep_s=0.6)))
        got = run_all(ex, requests(6))
    assert not any(e.failed for e in got.values())
    assert max_overlap([(s, e) for s, e, _ in intervals(tmp_path).values()]) == 2


def test_default_capacity_follows_cluster_cpus(local_ray):
    with RayExecutor(cpus_per_eval=0.5) as ex:
        ex.start(EvaluationWorker(PolyEvaluator()))
        assert ex.capacity == 4
    with pytest.raises(RuntimeError, match="start"):
        RayExecutor().capacity  # noqa: B018 -- unknown before start
    assert RayExecutor(max_in_flight=3).capacity == 3


def test_timeout_fails_the_evaluation_and_executor_keeps_working(local_ray, tmp_path):
    reqs = [Task(i, (2, 2, 2, 2, 2, 2), seed=i) for i in range(3)]
    with RayExecutor(max_in_flight=2, timeout_s=3.0) as ex:
        ex.start(EvaluationWorker(SleepyEvaluator(tmp_path, sleep_s=0.05, slow_seed=0, slow_s=60.0)))
        t0 = time.monotonic()
        got = run_all(ex, reqs)
        took = time.monotonic() - t0
        assert got[0].failed and got[0].error == "timed out after 3.0 s" and got[0].metrics == {}
        assert 3.0 <= got[0].cost < 10.0
        assert not got[1].failed and not got[2].failed
        assert took < 15.0
        # The slow task was cancelled, not retried, and the executor still runs work.
        later = run_all(ex, [Task(10 + i, (3, 3, 3, 3, 3, 3), seed=10 + i) for i in range(2)])
    assert attempts(tmp_path, 0) == 1
    assert [later[i].metrics["score"] for i in (10, 11)] == [63 + 0.5 * 3, 63 + 0.5 * 4]


def test_evaluator_exception_becomes_one_line_failure(local_ray, tmp_path):
    reqs = [Task(0, (0, 1, 2, 3, 4, 0), seed=0), Task(1, (1, 1, 1, 1, 1, 1), seed=1)]
    with RayExecutor() as ex:
        ex.start(EvaluationWorker(RaisingEvaluator(tmp_path)))
        got = run_all(ex, reqs)
    assert got[0].failed and got[0].metrics == {}
    assert got[0].error == "ValueError: bad arch (0, 1, 2, 3, 4, 0) second line of detail"
    assert got[1] == PolyEvaluator().evaluate((1, 1, 1, 1, 1, 1), 1)
    assert attempts(tmp_path, 0) == 1  # not retried
    serial = SerialExecutor()
    serial.start(EvaluationWorker(RaisingEvaluator(tmp_path)))
    assert run_all(serial, reqs)[0].error == got[0].error


def test_evaluator_exception_propagates_without_catch_errors(local_ray, tmp_path):
    with RayExecutor(catch_errors=False, max_in_flight=3) as ex:
        ex.start(EvaluationWorker(RaisingEvaluator(tmp_path)))
        ex.submit(Task(1, (1, 0, 0, 0, 0, 0), seed=1))
        ex.submit(Task(0, (0, 0, 0, 0, 0, 0), seed=0))
        ex.submit(Task(2, (2, 0, 0, 0, 0, 0), seed=2))
        deadline = time.monotonic() + 20
        while len(list(tmp_path.glob("start-*"))) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
        # All three are done; the exception surfaces while collecting them in order.
        with pytest.raises(ValueError, match="bad arch"):
            ex.wait()
        # Nothing else is lost: good results collected before the raise come back next.
        assert ex.num_pending == 2
        got = run_all(ex, [])
    assert sorted(got) == [1, 2]
    assert got[1] == PolyEvaluator().evaluate((1, 0, 0, 0, 0, 0), 1)
    assert got[2] == PolyEvaluator().evaluate((2, 0, 0, 0, 0, 0), 2)
    assert RayExecutor().wait() == []


def test_evaluator_the_workers_cannot_load_fails_without_retries(local_ray):
    # A class whose module exists only in this process: workers fail to unpickle it.
    module = types.ModuleType("driver_only_evaluators")
    driver_only = type("DriverOnly", (PolyEvaluator,), {"__module__": module.__name__})
    module.DriverOnly = driver_only
    sys.modules[module.__name__] = module
    try:
        with RayExecutor(max_retries=3) as ex:
            ex.start(EvaluationWorker(driver_only()))
            got = run_all(ex, [Task(0, (1, 1, 1, 1, 1, 1), seed=0)])
    finally:
        del sys.modules[module.__name__]
    assert got[0].failed
    assert got[0].error == "RaySystemError: System error: No module named 'driver_only_evaluators'"


@pytest.mark.slow
def test_worker_crash_is_retried_by_ray(local_ray, tmp_path):
    with RayExecutor(max_retries=1) as ex:
        ex.start(EvaluationWorker(CrashingEvaluator(tmp_path, crashes=1)))
        got = run_all(ex, [Task(0, (4, 3, 2, 1, 0, 4), seed=5)])
    assert got[0] == PolyEvaluator().evaluate((4, 3, 2, 1, 0, 4), 5)
    assert attempts(tmp_path, 5) == 2


@pytest.mark.slow
def test_crash_after_ray_retries_is_resubmitted_then_given_up(local_ray, tmp_path):
    # max_retries=1: Ray runs each submission at most twice, the executor resubmits once.
    resubmitted, doomed = tmp_path / "a", tmp_path / "b"
    resubmitted.mkdir()
    doomed.mkdir()
    with RayExecutor(max_retries=1) as ex:
        ex.start(EvaluationWorker(CrashingEvaluator(resubmitted, crashes=2)))
        got = run_all(ex, [Task(0, (1, 2, 3, 4, 0, 1), seed=10)])
    assert got[0] == PolyEvaluator().evaluate((1, 2, 3, 4, 0, 1), 10)
    assert attempts(resubmitted, 10) == 3
    with RayExecutor(max_retries=1) as ex:
        ex.start(EvaluationWorker(CrashingEvaluator(doomed, crashes=100)))
        got = run_all(ex, [Task(0, (1, 2, 3, 4, 0, 1), seed=10)])
    assert got[0].failed and got[0].metrics == {}
    assert got[0].error.startswith("worker lost after 2 submission(s): WorkerCrashedError: ")
    assert "\n" not in got[0].error
    assert attempts(doomed, 10) == 4


def test_evaluations_without_gpus_see_no_gpus(local_ray):
    with RayExecutor(gpus_per_eval=0.0) as ex:
        ex.start(EvaluationWorker(DeviceReporter()))
        got = run_all(ex, requests(2))
    assert [got[i].info for i in (0, 1)] == [{"cuda_visible": ""}] * 2


def test_unsatisfiable_resources_raise_at_start(local_ray):
    ex = RayExecutor(gpus_per_eval=0.5)
    with pytest.raises(ConfigError, match=r"gpus_per_eval=0\.5 but the Ray cluster has no GPUs"):
        ex.start(EvaluationWorker(PolyEvaluator()))
    ex = RayExecutor(cpus_per_eval=3)
    with pytest.raises(ConfigError, match=r"cpus_per_eval=3 .*largest node: CPU=2\.0"):
        ex.start(EvaluationWorker(PolyEvaluator()))
    with pytest.raises(RuntimeError, match="before start"):
        ex.submit(Task(0, (0,) * 6, 0))
    assert ray.is_initialized()


def test_connected_to_another_cluster_is_an_error(local_ray):
    ex = RayExecutor(address="127.0.0.1:1")
    with pytest.raises(RuntimeError, match="already connected"):
        ex.start(EvaluationWorker(PolyEvaluator()))


# -- Config ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "quoted"),
    [
        ({"cpus_per_eval": 0}, "invalid value 0 for 'cpus_per_eval'"),
        ({"cpus_per_eval": 0.00001}, "invalid value 1e-05 for 'cpus_per_eval'"),
        ({"gpus_per_eval": -0.5}, "invalid value -0.5 for 'gpus_per_eval'"),
        ({"max_in_flight": 0}, "invalid value 0 for 'max_in_flight'"),
        ({"max_retries": -1}, "invalid value -1 for 'max_retries'"),
        ({"max_retries": True}, "invalid value True for 'max_retries'"),
        ({"timeout_s": 0}, "invalid value 0 for 'timeout_s'"),
        ({"timeout_s": math.inf}, "invalid value inf for 'timeout_s'"),
        ({"num_cpus": 0}, "invalid value 0 for 'num_cpus'"),
        ({"address": "head-node"}, "invalid value 'head-node' for 'address'"),
        ({"address": "127.0.0.1:99999"}, "invalid value '127.0.0.1:99999' for 'address'"),
        ({"address": "127.0.0.1:6379", "num_cpus": 2}, "num_cpus=2"),
        ({"catch_errors": "yes"}, "invalid value 'yes' for 'catch_errors'"),
    ],
)
def test_bad_config_values_are_named(kwargs, quoted):
    with pytest.raises(ConfigError, match=quoted.replace("(", r"\(").replace(".", r"\.")):
        RayExecutor(**kwargs)
    with pytest.raises(ConfigError, match=quoted.replace("(", r"\(").replace(".", r"\.")):
        RayExecutorConfig(**kwargs)


def test_config_from_yaml_mapping():
    cfg = from_dict(
        RayExecutorConfig,
        {"address": "ray://127.0.0.1:10001", "gpus_per_eval": 0.25, "max_retries": 0, "timeout_s": 30},
    )
    assert cfg == RayExecutorConfig(
        address="ray://127.0.0.1:10001", gpus_per_eval=0.25, max_retries=0, timeout_s=30.0
    )
    assert RayExecutor.from_config(cfg).config == cfg
    with pytest.raises(ConfigError, match="unknown key 'workers'.*max_in_flight"):
        from_dict(RayExecutorConfig, {"workers": 4})
    with pytest.raises(ConfigError, match="invalid value 0 for 'max_in_flight'"):
        from_dict(RayExecutorConfig, {"max_in_flight": 0})
    with pytest.raises(ConfigError, match="'two'.*cpus_per_eval"):
        from_dict(RayExecutorConfig, {"cpus_per_eval": "two"})


# -- Multi-node cluster on loopback -------------------------------------------------------


@pytest.fixture
def loopback_cluster(_ray_module):
    # The local instance of the other tests must be gone before a cluster starts.
    ray.shutdown()
    cluster = Cluster(
        initialize_head=True,
        head_node_args={
            "num_cpus": 0,
            "node_ip_address": LOOPBACK,
            "include_dashboard": False,
            # Notice a dead node within ~1 s instead of Ray's default ~15 s.
            "_system_config": {"health_check_period_ms": 300, "health_check_failure_threshold": 3},
        },
    )
    workers = [cluster.add_node(num_cpus=1, node_ip_address=LOOPBACK) for _ in range(2)]
    cluster.wait_for_nodes()
    try:
        yield cluster, workers
    finally:
        ray.shutdown()
        cluster.shutdown()


@pytest.mark.slow
def test_node_loss_on_a_cluster_loses_no_evaluation(loopback_cluster, tmp_path):
    cluster, workers = loopback_cluster
    assert cluster.address.startswith(f"{LOOPBACK}:")
    reqs = requests(20, seed=3)
    evaluator = SleepyEvaluator(tmp_path, sleep_s=0.4)
    ex = RayExecutor(address=cluster.address, max_retries=3)
    ex.start(EvaluationWorker(evaluator))
    assert ex.capacity == 2  # two 1-CPU workers; the head has no CPUs
    for r in reqs:
        ex.submit(r)
    got: dict[int, Evaluation] = {}
    removed = None
    while ex.num_pending:
        for outcome in ex.wait():
            assert outcome.task.task_id not in got
            got[outcome.task.task_id] = as_evaluation(outcome)
        if removed is None and len(got) >= 6:
            # Kill the node of the evaluation that started last and is still running.
            victim = running_node(tmp_path)
            if victim is not None:
                removed = next(w for w in workers if w.node_id == victim)
                cluster.remove_node(removed, allow_graceful=False)
    assert removed is not None
    ex.close()
    assert not ray.is_initialized()  # it connected, so it disconnected
    assert sorted(got) == list(range(20))
    for r in reqs:
        assert got[r.task_id] == PolyEvaluator().evaluate(r.payload, r.seed)
    spans = intervals(tmp_path)
    assert sorted(spans) == [r.seed for r in reqs]
    # The evaluation running on the removed node was started twice and finished on the
    # other node (it may also have finished on the removed one just before it died: Ray
    # runs tasks at least once, the executor returns each exactly once).
    interrupted = [r.seed for r in reqs if attempts(tmp_path, r.seed) == 2]
    assert len(interrupted) == 1
    survivor = next(w.node_id for w in workers if w is not removed)
    finished_on = [path.read_text().split()[2] for path in tmp_path.glob(f"done-{interrupted[0]}-*")]
    assert survivor in finished_on
    assert {node for _, _, node in spans.values()} == {w.node_id for w in workers}
