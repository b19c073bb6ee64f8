"""The command line: bad inputs give one line naming the value, exit code 2, no damage."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from evonas.cli import main

ROOT = Path(__file__).resolve().parents[1]


def tree_digest(path: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(path.rglob("*")):
        if p.is_file() and p.name != ".lock":
            h.update(str(p.relative_to(path)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()


@pytest.fixture
def existing_run(tmp_path, nb201_env):
    cfg = tmp_path / "ok.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "evaluator": {"name": "tabular"},
                "fitness": {"objectives": [{"metric": "cifar10-valid_valid_acc_12ep"}]},
                "strategy": {"name": "random"},
                "budget": {"evaluations": 20},
                "progress": False,
            }
        )
    )
    assert main(["search", "--config", str(cfg), "--run-dir", str(tmp_path / "run")]) == 0
    return cfg, tmp_path / "run"


def one_line_error(capsys, argv):
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("evonas: error: ")
    return err


@pytest.mark.parametrize(
    "override, fragment",
    [
        ("strategy.params.popsize=3", "unknown key 'strategy.params.popsize'; 'strategy.params' takes no keys"),
        ("strategy.name=cmaes", "unknown strategy 'cmaes'; valid choices: bananas, npenas, nsga2, optuna_nsga2, optuna_tpe, random, rea"),
        ("budget.evaluations=-1", "invalid value -1 for 'budget.evaluations'; expected an integer in [1, 1000000000] or null"),
        ("evaluator.params.metric=acc", "unknown table metric 'acc'; valid choices: "),
        ("evaluator.name=surrogate", "unknown evaluator 'surrogate'; valid choices: proxy, supernet, tabular, training"),
        ("evaluator.params.tables.0.params.path=/nonexistent/nb201.csv.gz", "'/nonexistent/nb201.csv.gz' does not exist"),
        ("evaluator.params.tables=[{name: file, params: {path: nope.csv}}]", "nope.csv' does not exist"),
        ("space.name=darts", "unknown search space 'darts'; valid choices: chain, nb201"),
        ("strategy.params={population_size: 3}", "unknown key 'strategy.params.population_size'"),
        ("fitness.params.aggregate=avg", "unknown key 'fitness.params.aggregate'"),
        ("fitness.name=neighbourhood", "objective metric"),
        ("executor.name=dask", "unknown executor 'dask'; valid choices: ray, serial"),
        ("evaluator.params.dataset=digits", "unknown key 'evaluator.params.dataset'"),
        ("evaluator.params.dataset.name=imagenet", "unknown dataset 'imagenet'; valid choices: "),
    ],
)
def test_bad_config_values(capsys, existing_run, tmp_path, override, fragment):
    cfg, run = existing_run
    before = tree_digest(run)
    argv = ["search", "--config", str(cfg), "--run-dir", str(tmp_path / "new"), override]
    if override == "fitness.name=neighbourhood":
        argv += ["fitness.objectives=[{metric: nope}]"]
    if override.startswith("evaluator.params.dataset.name"):
        argv += ["evaluator.name=training"]
    if override.startswith("evaluator.params.tables.0"):
        argv += ["evaluator.params.tables=[{name: nb201}]"]
        argv.remove(override)
        argv.append(override)
    err = one_line_error(capsys, argv)
    assert fragment in err
    assert not (tmp_path / "new").exists()
    assert tree_digest(run) == before


def test_existing_run_directory_is_never_overwritten(capsys, existing_run):
    cfg, run = existing_run
    before = tree_digest(run)
    err = one_line_error(capsys, ["search", "--config", str(cfg), "--run-dir", str(run)])
    assert "already exists and is not empty" in err
    assert tree_digest(run) == before


def test_bad_files_and_dirs(capsys, existing_run, tmp_path):
    cfg, run = existing_run
    assert "config file" in one_line_error(capsys, ["search", "--config", str(tmp_path / "missing.yaml")])
    assert "does not exist" in one_line_error(capsys, ["search", "--resume", str(tmp_path / "nowhere")])
    assert "is not a run directory" in one_line_error(capsys, ["search", "--resume", str(tmp_path)])
    assert "--resume takes overrides of budget.* only" in one_line_error(capsys, ["search", "--resume", str(run), "seed=1"])
    assert "takes no --run-dir" in one_line_error(capsys, ["search", "--resume", str(run), "--run-dir", str(tmp_path / "x")])
    assert "is a directory" in one_line_error(capsys, ["search", "--config", str(tmp_path)])
    assert "does not exist" in one_line_error(capsys, ["report", str(tmp_path / "nowhere")])
    bad = tmp_path / "bad.yaml"
    bad.write_text("seed: [\n")
    assert "not valid YAML" in one_line_error(capsys, ["search", "--config", str(bad)])


def test_bad_flags_exit_2():
    proc = subprocess.run(
        [sys.executable, "-m", "evonas", "search", "--config", "x.yaml", "--bogus"], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert "unrecognized arguments: --bogus" in proc.stderr and proc.stderr.count("\n") == 1
    proc = subprocess.run([sys.executable, "-m", "evonas", "fly"], capture_output=True, text=True)
    assert proc.returncode == 2 and "invalid choice: 'fly'" in proc.stderr


def test_missing_table_names_the_env_var(capsys, tmp_path, monkeypatch):
    monkeypatch.delenv("EVONAS_NB201", raising=False)
    err = one_line_error(capsys, ["search", "--config", str(ROOT / "configs" / "nb201-rea.yaml"), "--run-dir", str(tmp_path / "x")])
    assert "EVONAS_NB201" in err
    assert not (tmp_path / "x").exists()


def test_malformed_arch_in_corrupt_table(capsys, tmp_path, nb201_path, monkeypatch):
    import gzip

    lines = gzip.open(nb201_path, "rt").read().splitlines()
    bad = tmp_path / "t.csv"
    bad.write_text("\n".join([lines[0], lines[1].replace("~0|+", "~1|+", 1), *lines[2:]]) + "\n")
    monkeypatch.setenv("EVONAS_NB201", str(bad))
    err = one_line_error(capsys, ["search", "--config", str(ROOT / "configs" / "nb201-rea.yaml"), "--run-dir", str(tmp_path / "x")])
    assert "line 2" in err and "must read from node 0" in err


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["predictors", "evaluate", "--config", str(ROOT / "configs" / "predictors-nb201.yaml"), "bogus=1"], "unknown key 'bogus'"),
        (["predictors", "evaluate", "--config", str(ROOT / "configs" / "predictors-nb201.yaml"), "predictors=[oracle]"], "oracle"),
        (["supernet", "train", "--config", str(ROOT / "configs" / "supernet-cifar10.yaml"), "bogus=1"], "unknown key 'bogus'"),
        (["supernet", "rank", "/nonexistent/run"], "run directory '/nonexistent/run' does not exist"),
        (["ensemble", "build", "--resume", "/nonexistent/run"], "'/nonexistent/run' does not exist"),
    ],
)
def test_sub_commands_report_bad_input_on_one_line(capsys, tmp_path, monkeypatch, argv, fragment):
    monkeypatch.chdir(tmp_path)
    err = one_line_error(capsys, argv)
    assert fragment in err
    assert not (tmp_path / "runs").exists()
