"""Shared fixtures: where the real data is, and the NAS-Bench-201 table loaded once.

Tests that need ``../shared/data`` skip with a reason when it is absent, and fail instead
when ``EVONAS_REQUIRE_DATA=1`` (CI sets it).
"""

from __future__ import annotations

import os
from pathlib import Path

# Before anything imports Ray: keep every Ray instance of the tests on loopback, without
# usage reports or token auth (Ray reads the first variable once, at import).
for _key, _value in {
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_AUTH_MODE": "disabled",
}.items():
    os.environ.setdefault(_key, _value)

import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("EVONAS_SHARED_DATA", ROOT.parent / "shared" / "data"))
PLUGIN = ROOT / "tests" / "plugins" / "chain_nas"

# The test plugin (a second search space with its decoder and tables, written through the
# public API only) is loaded for the whole session, so the registry-driven contract tests
# enrol it next to NAS-Bench-201.
from evonas.plugins import load_plugin  # noqa: E402

load_plugin(str(PLUGIN))


@pytest.fixture(scope="session", autouse=True)
def _run_key(tmp_path_factory: pytest.TempPathFactory):
    """Sign run-directory files with a key of the test session (never the user's own in
    ``~/.config``); subprocesses that tests start inherit it."""
    previous = os.environ.get("EVONAS_KEY_FILE")
    os.environ["EVONAS_KEY_FILE"] = str(tmp_path_factory.mktemp("evonas-key") / "run-key")
    yield
    if previous is None:
        os.environ.pop("EVONAS_KEY_FILE", None)
    else:
        os.environ["EVONAS_KEY_FILE"] = previous


def _require(path: Path, what: str) -> Path:
    if path.exists():
        return path
    message = f"{what} not found at {path} (set EVONAS_SHARED_DATA or place ../shared/data beside the repo)"
    if os.environ.get("EVONAS_REQUIRE_DATA") == "1":
        pytest.fail(message + "; EVONAS_REQUIRE_DATA=1 makes this a failure")
    pytest.skip(message)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared data directory (``../shared/data``)."""
    return _require(SHARED_DATA, "shared data directory")


@pytest.fixture(scope="session")
def nb201_path(shared_data: Path) -> Path:
    return _require(shared_data / "nb201" / "nb201.csv.gz", "NAS-Bench-201 table")


@pytest.fixture(scope="session")
def nb201_table(nb201_path: Path):
    from evonas.tabular import NB201Table

    return NB201Table.load(nb201_path)


@pytest.fixture
def nb201_env(nb201_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point ``$EVONAS_NB201`` at the shared table."""
    monkeypatch.setenv("EVONAS_NB201", str(nb201_path))
    return nb201_path


@pytest.fixture(scope="session")
def chain_plugin() -> Path:
    """The test plugin's package folder (``--plugin`` argument; holds its tables)."""
    return PLUGIN


_EXIT_STATUS: list[int] = []


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _EXIT_STATUS.append(int(exitstatus))


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """End the process with pytest's own exit status once everything is reported.

    The suite starts and shuts down many Ray sessions in this process; Ray's core worker
    can leave threads that crash while the interpreter tears down after its last session
    (ray-project/ray#31145), turning a passing run into a segmentation fault. Nothing is
    left to do at that point, so the teardown is skipped; the status is pytest's, so no
    failure is hidden.
    """
    import sys

    if "ray" in sys.modules and _EXIT_STATUS:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_EXIT_STATUS[-1])
