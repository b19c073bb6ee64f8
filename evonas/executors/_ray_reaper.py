"""Stop the processes of a local Ray instance once the process that started it is gone.

:func:`evonas.executors._ray.init_local_ray` starts this file as a script in a session of
its own, right after ``ray.init``, and passes the id of the driver (its own process) and
the ids of the processes that ``ray.init`` started::

    python _ray_reaper.py DRIVER_PID RAY_PID [RAY_PID ...]

Ray ties the processes the driver started itself (GCS server, raylet, monitors) to the
driver's life, but not the agents the raylet starts (dashboard agent, runtime-env agent):
after a ``kill -9`` of the driver they are re-parented and can go on running. The reaper
polls; while the driver lives it keeps a list of the Ray processes and all their
descendants, so that it still knows the agents after their raylet died. When the driver is
gone it sends SIGTERM to every process on the list, then SIGKILL to those still alive
after a grace period, and exits. When the Ray processes are all gone while the driver
lives (``ray.shutdown()``), the reaper has nothing left to guard and exits too.

Processes are followed as :class:`psutil.Process` objects, which notice a process id that
was reused; a process that had not started before the reaper did is not taken from the
command line. The script is run by path so that it imports neither evonas nor Ray.
"""

from __future__ import annotations

import sys
import time

import psutil

POLL_S = 1.0
"""Seconds between two looks at the driver and the Ray processes."""

GRACE_S = 3.0
"""Seconds the Ray processes get to exit on SIGTERM before they are killed."""


def _alive(process: psutil.Process) -> bool:
    # A zombie has exited; it only waits for its parent (or init) to collect it.
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _started_before(pid: int, moment: float) -> psutil.Process | None:
    """``pid`` as a process, if it exists and started no later than ``moment``."""
    try:
        process = psutil.Process(pid)
        return process if process.create_time() <= moment else None
    except psutil.Error:
        return None


def _descendants(roots: list[psutil.Process]) -> list[psutil.Process]:
    """The living descendants of the living ``roots``, from one pass over the process table."""
    children: dict[int, list[psutil.Process]] = {}
    for process in psutil.process_iter(["ppid"]):
        children.setdefault(process.info["ppid"], []).append(process)
    found: list[psutil.Process] = []
    stack = [root.pid for root in roots if _alive(root)]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child.pid)
    return found


def reap(processes: list[psutil.Process], grace_s: float = GRACE_S) -> None:
    """Terminate ``processes``, then kill those still alive after ``grace_s`` seconds.

    Args:
        processes: The processes to stop; ones already gone are skipped.
        grace_s: Seconds to wait after SIGTERM before SIGKILL.
    """
    living = [p for p in processes if _alive(p)]
    for process in living:
        try:
            process.terminate()
        except psutil.Error:
            continue
    _, remaining = psutil.wait_procs(living, timeout=grace_s)
    for process in remaining:
        try:
            process.kill()
        except psutil.Error:
            continue


def watch(driver_pid: int, ray_pids: list[int], poll_s: float = POLL_S) -> bool:
    """Follow the driver and its Ray processes; stop the latter when the former is gone.

    Args:
        driver_pid: The process that started the Ray instance.
        ray_pids: The processes ``ray.init`` started (their descendants are followed too).
        poll_s: Seconds between two looks.

    Returns:
        True when the driver died and the Ray processes were stopped, False when they had
        all exited while the driver lived.
    """
    started = psutil.Process().create_time()
    driver = _started_before(driver_pid, started)
    roots = [p for p in (_started_before(pid, started) for pid in ray_pids) if p is not None]
    known = {p.pid: p for p in roots}
    while True:
        if driver is None or not _alive(driver):
            # One more look: the raylet may still be alive, with agents started since.
            for process in _descendants(roots):
                known.setdefault(process.pid, process)
            reap(list(known.values()))
            return True
        for process in _descendants(roots):
            known.setdefault(process.pid, process)
        known = {pid: p for pid, p in known.items() if _alive(p)}
        if not known:
            return False
        time.sleep(poll_s)


def main(argv: list[str]) -> int:
    """Command-line entry: ``DRIVER_PID RAY_PID [RAY_PID ...]``; returns the exit code."""
    if len(argv) < 2 or not all(arg.isdigit() for arg in argv):
        print("usage: _ray_reaper.py DRIVER_PID RAY_PID [RAY_PID ...]", file=sys.stderr)
        return 2
    watch(int(argv[0]), [int(arg) for arg in argv[1:]])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
