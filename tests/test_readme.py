"""The README's plugin example is complete: copied out of the README, it runs a search."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _plugin_example() -> str:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Extending evonas"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_readme_plugin_example_runs_searches_from_the_command_line(tmp_path):
    (tmp_path / "my_space.py").write_text(_plugin_example())
    table = ROOT / "tests" / "plugins" / "chain_nas" / "chain-digits.csv"
    configs = {
        "chain-search.yaml": {
            "space": {"name": "chain"},
            "evaluator": {"name": "tabular", "params": {"tables": [{"name": "file", "params": {"path": str(table)}}],
                                                        "metric": "val_acc", "report": ["test_acc"]}},
            "fitness": {"objectives": [{"metric": "val_acc"}]},
            "strategy": {"name": "nsga2", "params": {"population_size": 6}},
            "budget": {"evaluations": 24},
        },
        "chain-train.yaml": {
            "space": {"name": "chain", "params": {"length": 3}},
            "evaluator": {"name": "training", "params": {
                "dataset": {"name": "digits", "max_train": 200, "max_val": 50, "max_test": 50},
                "train": {"epochs": 1, "batch_size": 50}, "network": {"name": "chain", "params": {"width": 4}}}},
            "fitness": {"objectives": [{"metric": "val_acc"}]},
            "strategy": {"name": "rea", "params": {"population_size": 2}},
            "budget": {"evaluations": 3},
        },
    }
    for name, config in configs.items():
        (tmp_path / name).write_text(yaml.safe_dump(config))
        done = subprocess.run(
            [sys.executable, "-m", "evonas", "search", "--plugin", "my_space.py", "--config", name, "--no-progress",
             "--run-dir", f"runs/{name}"],
            cwd=tmp_path, capture_output=True, text=True, timeout=600,
        )
        assert done.returncode == 0, done.stderr
        assert "best architecture: " in done.stdout and "(0 failed)" in done.stdout
