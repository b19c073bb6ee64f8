"""RayExecutor: same results as SerialExecutor, bounded in-flight work, time-outs, errors,
worker crashes (at most max_retries + 1 runs) and node loss on a loopback multi-node
cluster, config validation, and the local instance's token authentication and reaper
(with driver processes of their own)."""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import select
import subprocess
import sys
import time
import types
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import psutil
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
from evonas.executors import _ray, _ray_reaper  # noqa: E402
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
def test_worker_crash_is_rerun(local_ray, tmp_path):
    with RayExecutor(max_retries=1) as ex:
        ex.start(EvaluationWorker(CrashingEvaluator(tmp_path, crashes=1)))
        got = run_all(ex, [Task(0, (4, 3, 2, 1, 0, 4), seed=5)])
    assert got[0] == PolyEvaluator().evaluate((4, 3, 2, 1, 0, 4), 5)
    assert attempts(tmp_path, 5) == 2


@pytest.mark.slow
def test_an_evaluation_runs_at_most_max_retries_plus_one_times(local_ray, tmp_path):
    last_chance, doomed, no_retries = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for folder in (last_chance, doomed, no_retries):
        folder.mkdir()
    with RayExecutor(max_retries=2) as ex:
        ex.start(EvaluationWorker(CrashingEvaluator(last_chance, crashes=2)))
        got = run_all(ex, [Task(0, (1, 2, 3, 4, 0, 1), seed=10)])
    assert got[0] == PolyEvaluator().evaluate((1, 2, 3, 4, 0, 1), 10)
    assert attempts(last_chance, 10) == 3
    with RayExecutor(max_retries=2) as ex:
        ex.start(EvaluationWorker(CrashingEvaluator(doomed, crashes=100)))
        got = run_all(ex, [Task(0, (1, 2, 3, 4, 0, 1), seed=10)])
    assert got[0].failed and got[0].metrics == {}
    assert got[0].error.startswith("worker lost after 3 run(s): WorkerCrashedError: ")
    assert "\n" not in got[0].error
    assert attempts(doomed, 10) == 3
    with RayExecutor(max_retries=0) as ex:
        ex.start(EvaluationWorker(CrashingEvaluator(no_retries, crashes=100)))
        got = run_all(ex, [Task(0, (1, 2, 3, 4, 0, 1), seed=10)])
    assert got[0].error.startswith("worker lost after 1 run(s): WorkerCrashedError: ")
    assert attempts(no_retries, 10) == 1


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


# -- Local instances: token and reaper ---------------------------------------------------

AUTH_VARS = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")

# A driver that starts a local instance the way the executor does, runs a task on it,
# reports what it started, and exits normally once its standard input is closed.
DRIVER = """
import json, os, sys
import psutil
from evonas.executors._ray import init_local_ray, ray

init_local_ray(num_cpus=1)

@ray.remote
def square(x):
    return x * x

assert ray.get(square.remote(7)) == 49

def command(process):
    try:
        return " ".join(process.cmdline())
    except psutil.Error:
        return ""

children = [(p.pid, command(p)) for p in psutil.Process().children(recursive=True)]
print(json.dumps({
    "gcs": ray.get_runtime_context().gcs_address,
    "mode": os.environ.get("RAY_AUTH_MODE"),
    "token": os.environ.get("RAY_AUTH_TOKEN"),
    "session_dir": ray._private.worker._global_node.get_session_dir_path(),
    "reapers": [pid for pid, cmd in children if "_ray_reaper" in cmd],
    "ray": [pid for pid, cmd in children if "_ray_reaper" not in cmd],
}), flush=True)
sys.stdin.read()
"""

CONNECT = """
import sys
import ray

ray.init(address=sys.argv[1])

@ray.remote
def answer():
    return 6 * 7

print(ray.get(answer.remote(), timeout=60))
"""


def alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def env_without_auth(**extra: str) -> dict[str, str]:
    """This environment without Ray authentication settings (conftest disables auth)."""
    env = {key: value for key, value in os.environ.items() if key not in AUTH_VARS}
    env.update(extra)
    return env


@contextlib.contextmanager
def local_driver(tmp_path: Path) -> Iterator[tuple[subprocess.Popen, dict, list[psutil.Process]]]:
    """A driver process with its own local instance: (process, its report, what it started)."""
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    # A token file Ray wrote itself would land in this HOME.
    env = env_without_auth(HOME=str(tmp_path / "home"))
    with open(tmp_path / "driver.err", "w") as err:
        driver = subprocess.Popen(
            [sys.executable, str(script)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
            text=True, env=env,
        )
    started: list[psutil.Process] = []
    try:
        ready, _, _ = select.select([driver.stdout], [], [], 180)
        line = driver.stdout.readline() if ready else ""
        if not line:
            pytest.fail(f"the driver reported nothing: {(tmp_path / 'driver.err').read_text()[-2000:]}")
        info = json.loads(line)
        for pid in info["ray"] + info["reapers"]:
            try:
                started.append(psutil.Process(pid))
            except psutil.NoSuchProcess:
                continue
        yield driver, info, started
    finally:
        driver.kill()
        driver.wait()
        for process in started:
            try:
                process.kill()
            except psutil.Error:
                continue


def wait_until_gone(processes: list[psutil.Process], timeout_s: float) -> list[str]:
    """Names of the processes still alive after up to ``timeout_s`` seconds."""
    deadline = time.monotonic() + timeout_s
    while any(alive(p) for p in processes) and time.monotonic() < deadline:
        time.sleep(0.2)
    living = []
    for process in processes:
        if alive(process):
            try:
                living.append(f"{process.pid} {process.name()}")
            except psutil.Error:
                continue
    return living


def test_a_fresh_token_per_local_instance_unless_the_user_chose(monkeypatch):
    reloads: list[str | None] = []
    monkeypatch.setattr(_ray, "_reload_ray_auth", lambda: reloads.append(os.environ.get("RAY_AUTH_MODE")))
    monkeypatch.setattr(_ray, "_own_auth", {})
    for key in AUTH_VARS:
        monkeypatch.delenv(key, raising=False)
    assert _ray._start_token_auth()
    first = os.environ["RAY_AUTH_TOKEN"]
    assert os.environ["RAY_AUTH_MODE"] == "token" and re.fullmatch("[0-9a-f]{64}", first)
    assert _ray._start_token_auth()  # the next instance of this process: a new token
    assert os.environ["RAY_AUTH_TOKEN"] != first
    _ray._end_token_auth()
    assert not any(key in os.environ for key in AUTH_VARS)
    assert reloads == ["token", "token", None]
    for choice in ({"RAY_AUTH_MODE": "disabled"}, {"RAY_AUTH_TOKEN_PATH": "/etc/ray-token"}, {"RAY_AUTH_TOKEN": "abc"}):
        with monkeypatch.context() as patch:
            for key, value in choice.items():
                patch.setenv(key, value)
            assert not _ray._start_token_auth()
            _ray._end_token_auth()
            assert {key: os.environ.get(key) for key in AUTH_VARS} == {key: choice.get(key) for key in AUTH_VARS}
    assert reloads == ["token", "token", None]
    # A token the user put in place of evonas's own stays.
    assert _ray._start_token_auth()
    monkeypatch.setenv("RAY_AUTH_TOKEN", "mine")
    _ray._end_token_auth()
    assert os.environ["RAY_AUTH_TOKEN"] == "mine"


SLEEPER = [sys.executable, "-c", "import time; time.sleep(600)"]
# Starts a child and reports its pid: a stand-in for a raylet and one of its agents.
PARENT = [sys.executable, "-c", "import subprocess, sys, time; child = subprocess.Popen(sys.argv[1:]); "
          "print(child.pid, flush=True); time.sleep(600)", *SLEEPER]


@pytest.mark.parametrize("ending", ["driver killed", "ray shut down"])
def test_the_reaper_stops_ray_only_when_the_driver_is_gone(ending):
    driver = subprocess.Popen(SLEEPER)
    raylet = subprocess.Popen(PARENT, stdout=subprocess.PIPE, text=True)
    agent = psutil.Process(int(raylet.stdout.readline()))
    reaper = subprocess.Popen([sys.executable, _ray_reaper.__file__, str(driver.pid), str(raylet.pid), str(agent.pid)])
    watched = [psutil.Process(raylet.pid), agent]
    try:
        time.sleep(1.5)  # the reaper is up and has looked once
        assert reaper.poll() is None and all(alive(p) for p in watched)
        # Ray's own fate-sharing takes the raylet down with the driver; its agent stays.
        raylet.kill()
        raylet.wait()
        assert alive(agent)
        if ending == "driver killed":
            driver.kill()
            assert reaper.wait(timeout=30) == 0
            assert wait_until_gone([agent], timeout_s=10) == []
        else:
            agent.kill()
            assert reaper.wait(timeout=30) == 0
            assert driver.poll() is None  # the reaper left the living driver alone
    finally:
        for process in (driver, raylet, reaper):
            process.kill()
            process.wait()
        with contextlib.suppress(psutil.Error):
            agent.kill()
    assert _ray_reaper.main(["123", "x"]) == 2


@pytest.mark.slow
def test_a_local_instance_refuses_connections_without_its_token(tmp_path):
    with local_driver(tmp_path) as (driver, info, started):
        token = info["token"]
        assert info["mode"] == "token" and re.fullmatch("[0-9a-f]{64}", token)
        assert info["gcs"].startswith(f"{LOOPBACK}:") and info["reapers"]
        (tmp_path / "connect.py").write_text(CONNECT)
        # Three attempts at once; a refused one gives up after a few seconds.
        variants = {
            "none": env_without_auth(RAY_AUTH_MODE="disabled"),
            "wrong": env_without_auth(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN="0" * 64),
            "right": env_without_auth(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=token),
        }
        connections = {
            name: subprocess.Popen(
                [sys.executable, str(tmp_path / "connect.py"), info["gcs"]], stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, text=True, env={**env, "RAY_gcs_server_port_wait_time_s": "3"},
            )
            for name, env in variants.items()
        }
        done = {name: (p.communicate(timeout=180), p.returncode) for name, p in connections.items()}
        (out, err), code = done["right"]
        assert code == 0 and out.strip().splitlines()[-1] == "42", err[-2000:]
        for name in ("none", "wrong"):
            (out, err), code = done[name]
            assert code != 0 and "42" not in out.split()
            assert "InvalidAuthToken" in err, err[-2000:]
        # The token is in no file: not in Ray's session directory, not where Ray keeps its own.
        assert not (tmp_path / "home" / ".ray").exists()
        for path in Path(info["session_dir"]).rglob("*"):
            if path.is_file() and not path.is_symlink():
                assert token.encode() not in path.read_bytes(), path
        # A normal exit shuts Ray down; the reaper then has nothing to guard and exits too.
        driver.stdin.close()
        assert driver.wait(timeout=120) == 0
        assert wait_until_gone(started, timeout_s=30) == []


@pytest.mark.slow
def test_ray_processes_stop_when_the_driver_is_killed(tmp_path):
    with local_driver(tmp_path) as (driver, info, started):
        names = {p.name() for p in started if alive(p)}
        assert "raylet" in names and "gcs_server" in names and len(info["reapers"]) == 1
        driver.kill()  # SIGKILL: no atexit, no ray.shutdown()
        # Not waited for: the driver stays a zombie of this process for now, which the
        # reaper must take for dead.
        assert wait_until_gone(started, timeout_s=30) == []


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
