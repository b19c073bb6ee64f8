"""The Ray executor: evaluations run as Ray tasks, locally or on a cluster.

A local Ray instance is started on loopback by default; given an ``address`` the executor
connects to an existing cluster instead. Either way the worker (an evaluator, a trainer)
is put into the object store once and every task receives it by reference, at most
``max_in_flight`` tasks are handed to Ray at a time (the rest wait, first in first out, in
this process), evaluations whose worker or node died are run again (each at most
``max_retries + 1`` times), and evaluations running past ``timeout_s`` are cancelled.
Plugins loaded in this process reach the workers through the tasks' ``runtime_env``
(:func:`evonas.plugins.ray_runtime_env`).

Importing this module sets ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` and
``RAY_USAGE_STATS_ENABLED=0`` in ``os.environ`` unless they are set already: Ray reads the
first one once, at its own import, and processes started from here inherit them.

Local instances (:func:`init_local_ray`, used by the executor without ``address``) bind
every Ray process to 127.0.0.1, start no dashboard, and are guarded in two more ways:

* **Token authentication.** Each instance gets a fresh random token
  (``secrets.token_hex(32)``), handed to Ray the way it documents: ``RAY_AUTH_MODE=token``
  and ``RAY_AUTH_TOKEN`` in this process's environment, which the GCS server, the raylet
  and the workers started from here inherit. Ray then checks the token on the gRPC and
  HTTP servers of the instance (the TCP ports of the GCS server, the raylet and its
  agents), so a process without it can neither attach (``ray.init(address=...)`` is
  refused) nor call those services: other users of this machine cannot use the instance to
  run code as this user. Processes running as the same user can read the token from the
  environment of the Ray processes (``/proc/PID/environ``), as they can read everything
  else of that user. The token is written to no file (not to ``~/.ray/auth_token``, where
  Ray keeps a token it generates itself, nor to Ray's session directory or a run
  directory) and never logged; the executor removes it from the environment when it shuts
  its instance down. If ``RAY_AUTH_MODE``, ``RAY_AUTH_TOKEN`` or ``RAY_AUTH_TOKEN_PATH``
  is set, that explicit choice wins and authentication is left to Ray
  (``RAY_AUTH_MODE=disabled`` turns it off). Ray releases without token authentication (no
  ``ray._raylet.AuthenticationTokenLoader``) start the instance without a token.
* **A reaper.** Ray ties the processes ``ray.init`` starts to this process, but not the
  agents its raylet starts, which can go on running after a ``kill -9`` of this process. A
  small process in a session of its own (:mod:`evonas.executors._ray_reaper`) watches this
  one and stops the instance's processes when it is gone; after ``ray.shutdown()`` it
  exits by itself.

On a cluster (``address``) evonas changes no authentication setting: whoever runs the
cluster starts every node with token authentication (``RAY_AUTH_MODE=token`` and the token
in ``RAY_AUTH_TOKEN``, or in a file named by ``RAY_AUTH_TOKEN_PATH``, before ``ray start``)
and gives the driver the same token the same way; ``ray.init`` reads it from there.
"""

from __future__ import annotations

import collections
import contextlib
import ipaddress
import math
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

# Keep Ray on this machine and quiet: no usage reports, and
# RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 so that Ray keeps "127.0.0.1" as the node address
# instead of swapping in this host's routable one. Ray reads the latter once, when it is
# first imported, hence before `import ray`. setdefault: a user's explicit choice wins.
_RAY_ENV_DEFAULTS = {
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "RAY_USAGE_STATS_ENABLED": "0",
}
for _key, _value in _RAY_ENV_DEFAULTS.items():
    os.environ.setdefault(_key, _value)

import psutil  # noqa: E402
import ray  # noqa: E402
import ray.exceptions as rex  # noqa: E402

from evonas.config import Checked, Range, check_int  # noqa: E402
from evonas.errors import ConfigError  # noqa: E402
from evonas.errors import one_line_error  # noqa: E402
from evonas.executors._base import Executor, Outcome, Task, Worker  # noqa: E402

_LOOPBACK_IP = "127.0.0.1"

# Failures of the machinery rather than of the evaluator: re-running can succeed.
# RaySystemError is not among them: Ray raises it e.g. when the worker cannot be
# unpickled on the worker, which fails again on every retry.
_SYSTEM_ERRORS: tuple[type[BaseException], ...] = (
    rex.WorkerCrashedError,
    rex.NodeDiedError,
    rex.LocalRayletDiedError,
    rex.ObjectLostError,  # also OwnerDiedError, ObjectReconstructionFailedError, ...
    rex.OutOfMemoryError,
)

# ray.wait is called in slices no longer than this, so time-outs are noticed promptly and
# a blocked wait() stays interruptible.
_POLL_S = 1.0


@dataclass(frozen=True)
class RayExecutorConfig(Checked):
    """Settings of :class:`RayExecutor` (the ``executor`` section of a run config).

    Attributes:
        address: Address of an existing Ray cluster to connect to (``"auto"``,
            ``"127.0.0.1:6379"``, ``"ray://host:10001"``); ``None`` starts a local
            instance bound to 127.0.0.1.
        num_cpus: CPUs of the local instance (``None``: all of this machine's). Only
            meaningful without ``address``.
        cpus_per_eval: CPUs reserved by each evaluation; fractions allowed.
        gpus_per_eval: GPUs reserved by each evaluation; fractions allowed (0.5 packs two
            evaluations per GPU). Ray sets ``CUDA_VISIBLE_DEVICES`` for the task, so the
            evaluator picks its device itself.
        max_in_flight: Evaluations handed to Ray at once (``None``: as many as the
            cluster can run, from its CPUs and GPUs at start).
        max_retries: Re-runs of an evaluation whose worker or node died (or whose result
            or worker object was lost): one evaluation runs at most ``max_retries + 1``
            times. Exceptions raised by the worker are never retried.
        timeout_s: Per-evaluation time limit in seconds from dispatch (``None``: none).
        catch_errors: Turn exceptions raised by the worker into failed outcomes
            (not retried). When False, :meth:`RayExecutor.wait` re-raises them.
    """

    address: str | None = None
    num_cpus: Annotated[int | None, Range(1)] = None
    cpus_per_eval: Annotated[float, Range(0, low_open=True)] = 1.0
    gpus_per_eval: Annotated[float, Range(0)] = 0.0
    max_in_flight: Annotated[int | None, Range(1)] = None
    max_retries: Annotated[int, Range(0)] = 3
    timeout_s: Annotated[float | None, Range(0, low_open=True)] = None
    catch_errors: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.address is not None:
            if not isinstance(self.address, str) or not _valid_address(self.address):
                raise ConfigError(
                    f"invalid value {self.address!r} for 'address'; expected 'auto', 'host:port' "
                    "(e.g. '127.0.0.1:6379'), 'ray://host:port', or null for a local instance"
                )
            if self.num_cpus is not None:
                raise ConfigError(
                    f"num_cpus={self.num_cpus!r} sizes a local Ray instance and cannot be combined "
                    f"with address={self.address!r}; drop one of them"
                )
        for name in ("cpus_per_eval", "gpus_per_eval"):
            value = getattr(self, name)
            # Ray rejects fractional resource amounts finer than 1e-4.
            if abs(round(value, 4) - value) > 1e-12:
                raise ConfigError(f"invalid value {value!r} for {name!r}; expected a number with at most 4 decimals")
        if not isinstance(self.catch_errors, bool):
            raise ConfigError(f"invalid value {self.catch_errors!r} for 'catch_errors'; expected true or false")


def _valid_address(address: str) -> bool:
    if address == "auto":
        return True
    rest = address[len("ray://"):] if address.startswith("ray://") else address
    host, sep, port = rest.rpartition(":")
    return bool(sep and host and port.isdigit() and 0 < int(port) < 65536)


def init_local_ray(num_cpus: int | None = None) -> None:
    """Start a local Ray instance bound to 127.0.0.1, without dashboard or usage reports.

    Useful to keep one instance alive across several executors (they reuse an
    initialised Ray and leave it running); shut it down with ``ray.shutdown()``. The
    plugins loaded so far travel to its workers with the job's runtime environment
    (:func:`evonas.plugins.ray_runtime_env`).

    Unless ``RAY_AUTH_MODE``, ``RAY_AUTH_TOKEN`` or ``RAY_AUTH_TOKEN_PATH`` is set, the
    instance requires a fresh random token, which stays in this process's environment
    while it runs (:class:`RayExecutor` removes it when it shuts the instance down; after
    a ``ray.shutdown()`` of your own, the next call replaces it). A reaper process stops
    the instance's processes if this process dies without shutting it down. See the
    module documentation for both.

    Args:
        num_cpus: CPUs Ray may schedule on (``None``: all of this machine's).

    Raises:
        RuntimeError: Ray is initialised already, or it bound to an address outside
            127.0.0.0/8 anyway (it was then shut down again).
    """
    check_int(num_cpus, "num_cpus", 1, optional=True)
    if ray.is_initialized():
        # Checked before the token is touched: the running instance keeps its own.
        raise RuntimeError("Ray is initialised already; call ray.shutdown() before init_local_ray()")
    for key, value in _RAY_ENV_DEFAULTS.items():
        os.environ.setdefault(key, value)
    _start_token_auth()
    before = _descendant_pids()
    try:
        with _keep_loopback():
            # address="local": a new instance even when RAY_ADDRESS or the address file of
            # a running cluster (/tmp/ray/ray_current_cluster) would make ray.init join it.
            ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, _node_ip_address=_LOOPBACK_IP,
                     runtime_env=_plugin_env())
    except BaseException:
        _end_token_auth()
        raise
    try:
        _start_reaper(sorted(_descendant_pids() - before))
        node_ip = ray.util.get_node_ip_address()
        gcs_host = ray.get_runtime_context().gcs_address.rpartition(":")[0]
        if not all(_is_loopback(host) for host in (node_ip, gcs_host)):
            raise RuntimeError(
                f"the local Ray instance bound to {gcs_host!r} instead of loopback; set "
                "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 before Ray is first imported"
            )
    except BaseException:
        ray.shutdown()
        _end_token_auth()
        raise


# -- Token authentication of local instances -------------------------------------------

_AUTH_VARS = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")

# The authentication variables this module put into os.environ, while they are still
# there unchanged: only those are replaced or removed again.
_own_auth: dict[str, str] = {}


def _owns_auth() -> bool:
    return bool(_own_auth) and all(os.environ.get(key) == value for key, value in _own_auth.items())


def _start_token_auth() -> bool:
    """Give the local instance about to start a fresh token, unless the user chose.

    Returns:
        Whether a token was set (False: a variable of ``_AUTH_VARS`` was set by someone
        else, or this Ray has no token authentication).
    """
    if not _owns_auth():
        _own_auth.clear()
        if any(key in os.environ for key in _AUTH_VARS) or not hasattr(ray._raylet, "AuthenticationTokenLoader"):
            return False
    _own_auth.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(32))
    os.environ.update(_own_auth)
    _reload_ray_auth()
    return True


def _end_token_auth() -> None:
    """Remove the token that :func:`_start_token_auth` set, if it is still in place."""
    if not _owns_auth():
        _own_auth.clear()
        return
    for key in _own_auth:
        del os.environ[key]
    _own_auth.clear()
    _reload_ray_auth()


def _reload_ray_auth() -> None:
    """Make Ray in this process read its authentication settings from the environment again.

    Ray caches the mode and the token on first use (its own switch to token mode for new
    local clusters reloads them the same way). The configuration goes first: a background
    thread of a previous session reloading the token must not find token mode without a
    token.
    """
    raylet: Any = ray._raylet
    raylet.Config.initialize("")
    raylet.AuthenticationTokenLoader.instance().reset_cache()


# -- Reaper ---------------------------------------------------------------------------

# Reapers started here, kept so that finished ones are collected (no zombies, no
# "still running" warnings when a Popen is dropped).
_reapers: list[subprocess.Popen[bytes]] = []


def _descendant_pids() -> set[int]:
    return {child.pid for child in psutil.Process().children(recursive=True)}


def _start_reaper(ray_pids: list[int]) -> None:
    """Start the process that stops ``ray_pids`` (and their descendants) once this one dies.

    The script runs by path so that it imports neither evonas nor Ray, in a session of its
    own so that a Ctrl-C or a hang-up meant for this process does not stop it, and without
    the authentication token, which it does not need.
    """
    _reapers[:] = [reaper for reaper in _reapers if reaper.poll() is None]
    if not ray_pids:
        return
    script = Path(__file__).with_name("_ray_reaper.py")
    env = {key: value for key, value in os.environ.items() if key != "RAY_AUTH_TOKEN"}
    _reapers.append(
        subprocess.Popen(
            [sys.executable, str(script), str(os.getpid()), *map(str, ray_pids)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
    )


def _plugin_env() -> dict[str, Any] | None:
    from evonas.plugins import ray_runtime_env

    return ray_runtime_env() or None


@contextlib.contextmanager
def _keep_loopback() -> Iterator[None]:
    """Stop Ray from replacing 127.0.0.1 by a routable address while a local node starts.

    The environment variable set at import covers the usual case; this covers Ray having
    been imported before evonas. It toggles the constant Ray consults for that decision,
    and does nothing if a future Ray no longer has it (the check after init still holds).
    """
    constants = getattr(getattr(ray, "_private", None), "ray_constants", None)
    if constants is None or not getattr(constants, "ENABLE_RAY_CLUSTER", False):
        yield
        return
    constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        constants.ENABLE_RAY_CLUSTER = True


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host == "localhost"


def _run_remote(
    worker: Worker, payload: Any, seed: int, catch_errors: bool, hide_gpus: bool
) -> tuple[Any, str | None, float]:
    """Body of every Ray task: ``worker`` arrives resolved from its object reference.

    Returns ``(value, error, seconds)``: what ``worker.run`` returned, or the one-line
    reason it raised (when ``catch_errors``). The plugins of the driver are imported first.

    For tasks with GPUs, Ray sets ``CUDA_VISIBLE_DEVICES`` to the assigned ones. Recent Ray
    leaves the variable alone for tasks without GPUs (ray-project/ray#54868), so a worker
    choosing its device itself would use GPUs it did not reserve; ``hide_gpus`` empties
    the variable for the task (effective unless CUDA was initialised earlier in this
    worker process).
    """
    from evonas.plugins import load_from_env

    saved = os.environ.get("CUDA_VISIBLE_DEVICES")
    if hide_gpus:
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    start = time.perf_counter()
    try:
        load_from_env()
        return worker.run(payload, seed), None, time.perf_counter() - start
    except Exception as exc:
        if not catch_errors:
            raise
        return None, _one_line(exc), time.perf_counter() - start
    finally:
        if hide_gpus:
            if saved is None:
                del os.environ["CUDA_VISIBLE_DEVICES"]
            else:
                os.environ["CUDA_VISIBLE_DEVICES"] = saved


def _one_line(exc: BaseException) -> str:
    """Why an evaluation failed, on one line.

    Evaluator exceptions get SerialExecutor's wording (type and message, whitespace runs
    collapsed); Ray's own exceptions only their class and first line, as their messages go
    on with tracebacks and log hints.
    """
    if isinstance(exc, rex.RayError):
        first = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
        return f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    return one_line_error(exc)


@dataclass
class _Job:
    """A task and its history: how often it was resubmitted and since when it runs.

    Every submission is one run (Ray does not retry on its own), so the runs so far are
    ``resubmits + 1``.
    """

    task: Task
    resubmits: int = 0
    first_dispatch: float | None = None
    dispatched_at: float = 0.0


class RayExecutor(Executor):
    """Run evaluations as Ray tasks on a local instance or an existing cluster.

    Ray is the execution engine throughout: tasks carry their resource needs
    (``num_cpus``/``num_gpus``) and time-outs cancel the task with
    ``ray.cancel(force=True)``. The executor adds what a search needs on top: a bound on
    evaluations in flight with a FIFO queue in front of it, per-evaluation time limits,
    re-runs of evaluations whose worker or node died, and failed
    :class:`~evonas.executors.Outcome` s instead of exceptions.

    Re-runs are the executor's alone: tasks go to Ray with ``max_retries=0``, and an
    evaluation that failed for a system reason (worker or node died, object lost, memory
    monitor) is submitted again, so it runs at most ``max_retries + 1`` times in all.
    Leaving retries to Ray instead would count them twice (Ray's and the resubmissions
    needed anyway when the worker object itself is lost), and Ray's default
    ``task_oom_retries`` would retry tasks killed by its memory monitor without limit.
    Worker exceptions are never retried: workers are deterministic.

    Only what the executor started is shut down on :meth:`close`: if Ray was already
    initialised, it is reused and left running.

    Args:
        address: See :class:`RayExecutorConfig` for this and the other arguments.
        num_cpus: Size of the local instance.
        cpus_per_eval: CPUs per evaluation.
        gpus_per_eval: GPUs per evaluation (fractions allowed).
        max_in_flight: Bound on evaluations handed to Ray at once.
        max_retries: Re-runs after worker or node deaths; at most ``max_retries + 1``
            runs per evaluation.
        timeout_s: Per-evaluation time limit in seconds, from dispatch.
        catch_errors: Evaluator exceptions become failed evaluations.

    Raises:
        ConfigError: An argument is invalid (the message quotes it).
    """

    def __init__(
        self,
        address: str | None = None,
        num_cpus: int | None = None,
        cpus_per_eval: float = 1.0,
        gpus_per_eval: float = 0.0,
        max_in_flight: int | None = None,
        max_retries: int = 3,
        timeout_s: float | None = None,
        catch_errors: bool = True,
    ) -> None:
        self.config = RayExecutorConfig(
            address=address,
            num_cpus=num_cpus,
            cpus_per_eval=cpus_per_eval,
            gpus_per_eval=gpus_per_eval,
            max_in_flight=max_in_flight,
            max_retries=max_retries,
            timeout_s=timeout_s,
            catch_errors=catch_errors,
        )
        self._started_ray = False
        self._worker: Worker | None = None
        self._worker_ref: ray.ObjectRef | None = None
        self._task: Any = None
        self._max_in_flight: int | None = None
        self._queue: collections.deque[_Job] = collections.deque()
        self._running: dict[ray.ObjectRef, _Job] = {}
        self._unreturned: list[Outcome] = []

    @classmethod
    def from_config(cls, config: RayExecutorConfig) -> RayExecutor:
        """Build an executor from a (YAML-loaded) :class:`RayExecutorConfig`."""
        return cls(**{name: getattr(config, name) for name in config.__dataclass_fields__})

    @property
    def capacity(self) -> int:
        if self._max_in_flight is not None:
            return self._max_in_flight
        if self.config.max_in_flight is not None:
            return self.config.max_in_flight
        raise RuntimeError("RayExecutor.capacity depends on the cluster's size; call start() first")

    @property
    def num_pending(self) -> int:
        return len(self._queue) + len(self._running) + len(self._unreturned)

    def start(self, worker: Worker) -> None:
        """Connect to (or start) Ray, check the cluster fits, and put ``worker`` once.

        Raises:
            ConfigError: The cluster cannot run one evaluation (e.g. ``gpus_per_eval > 0``
                on a cluster without GPUs), instead of tasks waiting forever.
            RuntimeError: Already started, or Ray is initialised for another cluster.
        """
        if self._worker is not None:
            raise RuntimeError("RayExecutor.start called twice; close() it first")
        self._connect()
        try:
            self._max_in_flight = self._slots()
            self._worker_ref = ray.put(worker)
        except BaseException:
            self._disconnect()
            raise
        self._worker = worker
        options: dict[str, Any] = dict(
            num_cpus=self.config.cpus_per_eval,
            num_gpus=self.config.gpus_per_eval,
            # Re-runs are counted by the executor alone (see the class docstring).
            max_retries=0,
            retry_exceptions=False,
        )
        plugins = _plugin_env()
        if plugins and not self._started_ray:
            # Ray was started elsewhere, without this process's plugins in its job runtime
            # environment: name them so workers import them (they must be importable there).
            options["runtime_env"] = {"env_vars": plugins["env_vars"]}
        self._task = ray.remote(_run_remote).options(**options)

    def submit(self, task: Task) -> None:
        if self._worker is None:
            raise RuntimeError("RayExecutor.submit called before start()")
        self._queue.append(_Job(task))
        self._dispatch()

    def wait(self) -> list[Outcome]:
        """Block until at least one task is done; return every one that is.

        Raises:
            Exception: The worker's exception, when ``catch_errors`` is False.
        """
        results, self._unreturned = self._unreturned, []
        self._dispatch()
        while not results and self._running:
            refs = list(self._running)
            ready, _ = ray.wait(refs, num_returns=1, timeout=self._poll_timeout())
            if ready:
                # Collect everything else that finished meanwhile without blocking.
                others = [r for r in refs if r != ready[0]]
                more, _ = ray.wait(others, num_returns=len(others), timeout=0) if others else ([], [])
                try:
                    for ref in ready + more:
                        job = self._running.pop(ref)
                        outcome = self._collect(ref, job)
                        if outcome is not None:
                            results.append(outcome)
                except BaseException:
                    # A worker exception propagates (catch_errors=False); what was
                    # already collected comes with the next wait().
                    self._unreturned = results
                    raise
            results.extend(self._expire())
            self._dispatch()
        return results

    def close(self) -> None:
        """Cancel evaluations in flight, drop queued ones, and shut Ray down if started here."""
        for ref in self._running:
            try:
                ray.cancel(ref, force=True)
            except Exception:  # noqa: BLE001 -- the task may be gone already; nothing to cancel
                continue
        self._running.clear()
        self._queue.clear()
        self._unreturned.clear()
        self._worker = None
        self._worker_ref = None
        self._task = None
        self._max_in_flight = None
        self._disconnect()

    # -- Ray session -------------------------------------------------------------------

    def _connect(self) -> None:
        address = self.config.address
        if ray.is_initialized():
            self._check_same_cluster(address)
            return
        if address is None:
            init_local_ray(self.config.num_cpus)
        else:
            # A token left by an earlier local instance of this process is not the user's
            # setting: the cluster is joined with the authentication settings as the user
            # made them.
            _end_token_auth()
            ray.init(address=address, runtime_env=_plugin_env())
        self._started_ray = True

    def _check_same_cluster(self, address: str | None) -> None:
        if address is None or address == "auto" or address.startswith("ray://"):
            return
        current = ray.get_runtime_context().gcs_address
        wanted = address.replace("localhost:", f"{_LOOPBACK_IP}:")
        if current and current.replace("localhost:", f"{_LOOPBACK_IP}:") != wanted:
            raise RuntimeError(
                f"Ray is already connected to {current!r}, not to address={address!r}; "
                "call ray.shutdown() first or drop the address"
            )

    def _disconnect(self) -> None:
        if self._started_ray:
            ray.shutdown()
            _end_token_auth()
            self._started_ray = False

    def _slots(self) -> int:
        """Evaluations the cluster can run at once; raises when it cannot run even one."""
        cpus, gpus = self.config.cpus_per_eval, self.config.gpus_per_eval
        nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
        total_gpus = sum(r.get("GPU", 0.0) for r in nodes)
        if gpus > 0 and total_gpus == 0:
            raise ConfigError(
                f"gpus_per_eval={gpus!r} but the Ray cluster has no GPUs; "
                "set gpus_per_eval to 0 or connect to a cluster with GPUs"
            )
        slots = 0
        for res in nodes:
            # The epsilon keeps e.g. 0.3 / 0.1 from flooring to 2.
            fit = math.floor(res.get("CPU", 0.0) / cpus + 1e-9)
            if gpus > 0:
                fit = min(fit, math.floor(res.get("GPU", 0.0) / gpus + 1e-9))
            slots += fit
        if slots == 0:
            largest: dict[str, float] = max(nodes, key=lambda r: r.get("CPU", 0.0), default={})
            raise ConfigError(
                f"no node of the Ray cluster can run an evaluation with cpus_per_eval={cpus!r} and "
                f"gpus_per_eval={gpus!r} (largest node: CPU={largest.get('CPU', 0.0)}, "
                f"GPU={largest.get('GPU', 0.0)}); lower them or add nodes"
            )
        return self.config.max_in_flight if self.config.max_in_flight is not None else slots

    # -- Scheduling ---------------------------------------------------------------------

    def _dispatch(self) -> None:
        if not self._queue:
            return
        assert self._max_in_flight is not None
        while self._queue and len(self._running) < self._max_in_flight:
            job = self._queue.popleft()
            now = time.monotonic()
            job.dispatched_at = now
            if job.first_dispatch is None:
                job.first_dispatch = now
            ref = self._task.remote(
                self._worker_ref,
                job.task.payload,
                job.task.seed,
                self.config.catch_errors,
                self.config.gpus_per_eval == 0,
            )
            self._running[ref] = job

    def _poll_timeout(self) -> float:
        if self.config.timeout_s is None:
            return _POLL_S
        first_deadline = min(job.dispatched_at for job in self._running.values()) + self.config.timeout_s
        return max(0.0, min(_POLL_S, first_deadline - time.monotonic()))

    def _collect(self, ref: ray.ObjectRef, job: _Job) -> Outcome | None:
        """The outcome of a finished task, or None when it was resubmitted."""
        try:
            value, error, _ = ray.get(ref)
            return Outcome(job.task, value=value, error=error, seconds=self._elapsed(job))
        except rex.RayTaskError as exc:
            cause = exc.cause
            if isinstance(cause, _SYSTEM_ERRORS):
                return self._retry(job, cause)
            if not self.config.catch_errors:
                raise
            # The worker's own exceptions are caught inside the task; what arrives here
            # escaped it (e.g. the worker could not be unpickled in the Ray process).
            reason = _one_line(cause if cause is not None else exc)
            return Outcome(job.task, error=reason, seconds=self._elapsed(job))
        except _SYSTEM_ERRORS as exc:
            return self._retry(job, exc)
        except rex.RayError as exc:
            # Not retriable: e.g. a runtime environment that cannot be set up.
            return Outcome(job.task, error=_one_line(exc), seconds=self._elapsed(job))

    def _retry(self, job: _Job, exc: BaseException) -> Outcome | None:
        if job.resubmits >= self.config.max_retries:
            return Outcome(
                job.task,
                error=f"worker lost after {job.resubmits + 1} run(s): {_one_line(exc)}",
                seconds=self._elapsed(job),
            )
        if isinstance(exc, rex.ObjectLostError):
            # The lost object may be the worker itself; a fresh copy makes a retry useful.
            self._worker_ref = ray.put(self._worker)
        job.resubmits += 1
        # Ahead of newer requests: it was submitted before them.
        self._queue.appendleft(job)
        return None

    def _expire(self) -> list[Outcome]:
        if self.config.timeout_s is None:
            return []
        now = time.monotonic()
        limit = self.config.timeout_s
        expired = [ref for ref, job in self._running.items() if now - job.dispatched_at >= limit]
        out = []
        for ref in expired:
            job = self._running.pop(ref)
            # force: a plain cancel only interrupts Python code, not e.g. a long torch op.
            ray.cancel(ref, force=True)
            out.append(Outcome(job.task, error=f"timed out after {limit} s", seconds=self._elapsed(job)))
        return out

    @staticmethod
    def _elapsed(job: _Job) -> float:
        assert job.first_dispatch is not None
        return time.monotonic() - job.first_dispatch
