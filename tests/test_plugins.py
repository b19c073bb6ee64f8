"""Plugins: loading (--plugin, entry points), recording in run directories, reaching Ray
workers, and one-line errors for plugins and tables that are broken."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from evonas.cli import main
from evonas.errors import PluginError
from evonas.plugins import load_plugin

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = ROOT / "tests" / "plugins" / "chain_nas"
REA = PLUGIN / "chain-rea.yaml"
NSGA2 = PLUGIN / "chain-nsga2-latency.yaml"


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(extra)
    return env


def evonas_cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``python -m evonas ...`` in a fresh interpreter (the plugin is on no path there)."""
    return subprocess.run([sys.executable, "-m", "evonas", *args], cwd=cwd, capture_output=True, text=True,
                          env=env or _env(), timeout=600)


def one_line_error(capsys, argv) -> str:
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("evonas: error: ")
    return err


def digest(path: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(path.rglob("*")):
        if p.is_file() and p.name != ".lock":
            h.update(str(p.relative_to(path)).encode() + p.read_bytes())
    return h.hexdigest()


def test_plugin_is_recorded_and_reloaded_by_resume_and_report(tmp_path):
    run = tmp_path / "run"
    first = evonas_cli("search", "--plugin", str(PLUGIN), "--config", str(REA), "--run-dir", str(run),
                       "budget.evaluations=20", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    meta = yaml.safe_load((run / "meta.yaml").read_text())
    assert meta["plugins"] == [str(PLUGIN)]
    # A fresh process knows nothing of the plugin: --resume and report load it from meta.yaml.
    more = evonas_cli("search", "--resume", str(run), "budget.evaluations=40", cwd=tmp_path)
    assert more.returncode == 0, more.stderr
    assert "candidates: 40" in more.stdout
    report = evonas_cli("report", str(run), cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    assert "- space: `chain` {'length': 4}" in report.stdout and (run / "best_so_far.png").exists()


def test_entry_point_plugins_load_without_a_flag(tmp_path):
    site = tmp_path / "site"
    dist = site / "chain_nas_plugin-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: chain-nas-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[evonas.plugins]\nchain = chain_nas\n")
    env = _env(PYTHONPATH=os.pathsep.join([str(site), str(PLUGIN.parent), os.environ.get("PYTHONPATH", "")]))
    done = evonas_cli("search", "--config", str(REA), "--run-dir", str(tmp_path / "run"), "budget.evaluations=10",
                      cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert "best architecture: " in done.stdout
    # without the entry point the space is unknown
    bare = evonas_cli("search", "--config", str(REA), "--run-dir", str(tmp_path / "run2"), cwd=tmp_path)
    assert bare.returncode == 2 and "unknown search space 'chain'; valid choices: nb201" in bare.stderr
    assert not (tmp_path / "run2").exists()


@pytest.mark.ray
def test_a_plugin_reaches_ray_workers(tmp_path):
    """NSGA-II on the plugin's space: the Ray run equals the serial run, evaluation for evaluation."""
    serial, parallel = tmp_path / "serial", tmp_path / "ray"
    for run, extra in ((serial, []), (parallel, ["executor={name: ray, params: {num_cpus: 2, max_in_flight: 2}}"])):
        done = evonas_cli("search", "--plugin", str(PLUGIN), "--config", str(NSGA2), "--run-dir", str(run),
                          "budget.evaluations=48", *extra, cwd=tmp_path)
        assert done.returncode == 0, done.stderr

    def candidates(run: Path) -> list[dict]:
        records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
        return [r for r in records if r["type"] == "candidate"]

    ray_cands, serial_cands = candidates(parallel), candidates(serial)
    assert len(serial_cands) == 48
    # Identical candidates and scores; the cost sums only in the order evaluations finished
    # (and the log checksums cover the evaluations' wall-clock times).
    for a, b in zip(ray_cands, serial_cands):
        assert a["used_seconds"] == pytest.approx(b["used_seconds"], rel=1e-12)
        assert {**a, "used_seconds": 0, "chk": ""} == {**b, "used_seconds": 0, "chk": ""}


@pytest.mark.ray
def test_without_the_runtime_env_every_ray_evaluation_fails_and_the_search_exits_1(tmp_path):
    """The negative control of the test above: the plugin only on the driver's path is not enough."""
    script = (
        "import sys, evonas.plugins as p\n"
        "p.ray_runtime_env = lambda: {}\n"
        "from evonas.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, "search", "--plugin", str(PLUGIN), "--config", str(NSGA2), "--run-dir",
         str(tmp_path / "run"), "budget.evaluations=12", "executor={name: ray, params: {num_cpus: 2, max_in_flight: 2}}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("evonas: error: every one of the 12 candidates failed")
    assert "No module named 'chain_nas'" in last


# ----------------------------------------------------------------------- bad plugins
def test_a_plugin_that_fails_to_import(capsys, tmp_path):
    broken = tmp_path / "broken_plugin.py"
    broken.write_text("import evonas\nraise ImportError('needs the lab cluster')\n")
    err = one_line_error(capsys, ["search", "--plugin", str(broken), "--config", str(REA), "--run-dir", str(tmp_path / "r")])
    assert "plugin" in err and "cannot be imported: ImportError: needs the lab cluster" in err
    assert "does not exist" in one_line_error(capsys, ["search", "--plugin", str(tmp_path / "nope.py"), "--config", str(REA)])
    assert "cannot be imported: ModuleNotFoundError" in one_line_error(
        capsys, ["search", "--plugin", "no_such_plugin_module", "--config", str(REA)])
    assert not (tmp_path / "r").exists()


def test_a_plugin_that_registers_a_clashing_name(capsys, tmp_path):
    clash = tmp_path / "clash_plugin.py"
    clash.write_text(
        "import evonas\n"
        "from evonas.strategies import STRATEGIES\n"
        "evonas.register('strategy', 'rea', STRATEGIES.get('random'))\n"
    )
    err = one_line_error(capsys, ["search", "--plugin", str(clash), "--config", str(REA), "--run-dir", str(tmp_path / "r")])
    assert "strategy 'rea' is already registered by 'evonas.strategies'; 'clash_plugin' must choose another name" in err
    assert not (tmp_path / "r").exists()
    with pytest.raises(PluginError, match="already registered"):
        load_plugin(str(clash))


def test_a_plugin_space_lacking_a_capability_the_config_needs(capsys, tmp_path):
    plugin = tmp_path / "linear_space.py"
    plugin.write_text(
        "import evonas\n"
        "from chain_nas import ChainSpace\n"
        "class LinearSpace(ChainSpace):\n"
        "    '''The chain space without crossover.'''\n"
        "    name = 'linear_test'\n"
        "    capabilities = frozenset({'enumerable', 'fixed_length'})\n"
        "evonas.register('space', 'linear_test', LinearSpace)\n"
    )
    existing = tmp_path / "existing"
    assert main(["search", "--plugin", str(plugin), "--config", str(REA), "--run-dir", str(existing),
                 "space.name=linear_test", "budget.evaluations=10"]) == 0
    before = digest(existing)
    err = one_line_error(capsys, ["search", "--plugin", str(plugin), "--config", str(NSGA2), "--run-dir",
                                  str(tmp_path / "r"), "space.name=linear_test"])
    assert "strategy NSGA2 needs a search space with crossover; space 'linear_test' does not declare it" in err
    assert "(its capabilities: enumerable, fixed_length)" in err
    err = one_line_error(capsys, ["search", "--plugin", str(plugin), "--config", str(REA), "--run-dir", str(existing),
                                  "space.name=linear_test"])
    assert "already exists and is not empty" in err
    assert not (tmp_path / "r").exists() and digest(existing) == before
    from evonas.spaces import SPACES

    SPACES.unregister("linear_test")


# ------------------------------------------------------------------------ bad tables
@pytest.mark.parametrize(
    "content, fragment",
    [
        ("cell,val_acc\nconv3-conv3-conv3-conv3,90\n", "has no key column 'arch'; its columns: cell, val_acc"),
        ("arch,val_acc\nconv3-conv3-conv3-conv3,90\nskip-pool-skip-conv5,80\nconv3-conv3-conv3-conv3,91\n",
         "line 4 repeats architecture 'conv3-conv3-conv3-conv3' (first at line 2)"),
        ("arch,val_acc\nconv3-conv3-conv3-conv3,ninety\n", "line 2: column 'val_acc' has a non-numeric value 'ninety'"),
        ("arch,val_acc\nconv3-conv7-conv3-conv3,90\n", "line 2: malformed chain architecture 'conv3-conv7-conv3-conv3'"),
    ],
)
def test_bad_tables_are_one_line_errors_and_write_nothing(capsys, tmp_path, content, fragment):
    table = tmp_path / "table.csv"
    table.write_text(content)
    err = one_line_error(capsys, ["search", "--plugin", str(PLUGIN), "--config", str(REA), "--run-dir",
                                  str(tmp_path / "r"), f"evaluator.params.tables=[{{name: file, params: {{path: {table}}}}}]",
                                  "evaluator.params.report=[]"])
    assert fragment in err
    assert not (tmp_path / "r").exists()
