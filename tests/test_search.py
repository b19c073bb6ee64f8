from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from evonas.search import resume_search, start_search

ROOT = Path(__file__).resolve().parents[1]


def strip(records):
    """Log records without wall-clock fields (and the checksums that cover them), for comparing runs."""
    out = []
    for r in records:
        r = dict(r)
        r.pop("time", None)
        r.pop("chk", None)
        out.append(r)
    return out


def read_log(run_dir):
    return [json.loads(line) for line in (Path(run_dir) / "log.jsonl").read_text().splitlines()]


def write_config(tmp_path, name="cfg.yaml", **extra):
    cfg = {
        "seed": 3,
        "evaluator": {"name": "tabular", "params": {"metric": "cifar10-valid_valid_acc", "noisy": True}},
        "fitness": {"name": "neighbourhood", "objectives": [{"metric": "cifar10-valid_valid_acc"}]},
        "strategy": {"name": "rea", "params": {"population_size": 5, "tournament_size": 2}},
        "budget": {"evaluations": 400},
        "checkpoint_every": 3,
        "progress": False,
    }
    cfg.update(extra)
    p = tmp_path / name
    p.write_text(yaml.safe_dump(cfg))
    return p


def test_run_directory_contents(tmp_path, nb201_env):
    cfg = write_config(tmp_path)
    result = start_search(cfg, run_dir=tmp_path / "run")
    run = tmp_path / "run"
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["strategy"]["params"] == {"population_size": 5, "tournament_size": 2}
    assert config["fitness"]["params"] == {"aggregate": "mean", "include_self": True, "neighbour_cost": "counted"}
    meta = yaml.safe_load((run / "meta.yaml").read_text())
    assert meta["seed"] == 3 and meta["versions"]["numpy"] != "absent" and meta["kind"] == "search"
    records = read_log(run)
    evals = [r for r in records if r["type"] == "eval"]
    cands = [r for r in records if r["type"] == "candidate"]
    assert [r["eval_id"] for r in evals] == list(range(len(evals)))
    assert len(cands) == result.summary["candidates"] and cands[-1]["used_evaluations"] == len(evals)
    assert (run / "checkpoint.pkl").exists() and (run / "result.json").exists()
    assert result.summary["best"]["arch"].startswith("|")


def test_same_config_and_seed_same_run(tmp_path, nb201_env):
    cfg = write_config(tmp_path)
    start_search(cfg, run_dir=tmp_path / "a")
    start_search(cfg, run_dir=tmp_path / "b")
    assert strip(read_log(tmp_path / "a")) == strip(read_log(tmp_path / "b"))
    start_search(cfg, ["seed=4"], run_dir=tmp_path / "c")
    assert strip(read_log(tmp_path / "a")) != strip(read_log(tmp_path / "c"))


def _truncate_to(run_dir: Path, n_records: int, torn: bool) -> None:
    """Simulate a crash: keep the first n records (and maybe half of the next line)."""
    lines = (run_dir / "log.jsonl").read_text().splitlines(keepends=True)
    text = "".join(lines[:n_records])
    if torn:
        text += lines[n_records][: len(lines[n_records]) // 2]
    (run_dir / "log.jsonl").write_text(text)
    (run_dir / "result.json").unlink()


@pytest.mark.parametrize("cut, torn, keep_checkpoint", [(37, True, False), (120, False, False), (200, True, True)])
def test_resume_from_a_truncated_log_gives_the_uninterrupted_history(tmp_path, nb201_env, cut, torn, keep_checkpoint):
    cfg = write_config(tmp_path)
    start_search(cfg, run_dir=tmp_path / "full")
    full = strip(read_log(tmp_path / "full"))
    start_search(cfg, run_dir=tmp_path / "cut")
    run = tmp_path / "cut"
    _truncate_to(run, cut, torn)
    if not keep_checkpoint:
        (run / "checkpoint.pkl").unlink()
    else:
        # an older checkpoint than the log's end: take one from a run stopped early
        start_search(cfg, ["budget.evaluations=150"], run_dir=tmp_path / "early")
        (run / "checkpoint.pkl").write_bytes((tmp_path / "early" / "checkpoint.pkl").read_bytes())
    resume_search(run)
    assert strip(read_log(run)) == full


def test_kill_9_and_resume_via_cli(tmp_path, nb201_env):
    """A real crash: SIGKILL the process mid-run, then `evonas search --resume`."""
    cfg = write_config(tmp_path)
    start_search(cfg, run_dir=tmp_path / "full")
    full = strip(read_log(tmp_path / "full"))
    run = tmp_path / "killed"
    # Slow every evaluation down (without changing results) so that the kill lands mid-run.
    slow = (
        "import time, sys\n"
        "from evonas.evaluation import _tabular\n"
        "orig = _tabular.TabularEvaluator.evaluate\n"
        "def slow(self, arch, seed):\n"
        "    time.sleep(0.004)\n"
        "    return orig(self, arch, seed)\n"
        "_tabular.TabularEvaluator.evaluate = slow\n"
        "from evonas.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    for round_ in range(2):
        args = ["search", "--config", str(cfg), "--run-dir", str(run)] if round_ == 0 else ["search", "--resume", str(run)]
        proc = subprocess.Popen([sys.executable, "-c", slow, *args], cwd=tmp_path)
        deadline = time.time() + 60
        log = run / "log.jsonl"
        target = 120 * (round_ + 1)
        while time.time() < deadline:
            if log.exists() and log.read_text().count("\n") >= target:
                break
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert not (run / "result.json").exists(), "the run finished before it could be killed"
    done = subprocess.run(
        [sys.executable, "-m", "evonas", "search", "--resume", str(run)], cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "best architecture: |" in done.stdout
    assert strip(read_log(run)) == full


def test_resuming_a_finished_run_changes_nothing(tmp_path, nb201_env):
    cfg = write_config(tmp_path)
    start_search(cfg, run_dir=tmp_path / "r")
    before = (tmp_path / "r" / "log.jsonl").read_bytes()
    result = resume_search(tmp_path / "r")
    assert (tmp_path / "r" / "log.jsonl").read_bytes() == before
    assert result.summary == json.loads((tmp_path / "r" / "result.json").read_text())


def test_resume_extends_the_budget_of_a_finished_run(tmp_path, nb201_env):
    cfg = write_config(tmp_path)
    start_search(cfg, ["budget.evaluations=600"], run_dir=tmp_path / "long")
    start_search(cfg, run_dir=tmp_path / "short")
    result = resume_search(tmp_path / "short", ["budget.evaluations=600"])
    extended = [r for r in strip(read_log(tmp_path / "short")) if r["type"] != "extend"]
    assert extended == strip(read_log(tmp_path / "long"))
    assert result.summary == json.loads((tmp_path / "long" / "result.json").read_text())
    assert yaml.safe_load((tmp_path / "short" / "config.yaml").read_text())["budget"]["evaluations"] == 600
    from evonas.errors import ConfigError

    with pytest.raises(ConfigError, match="--resume takes overrides of budget.\\* only"):
        resume_search(tmp_path / "short", ["seed=9"])


def test_a_search_whose_evaluations_all_fail_exits_non_zero(tmp_path, capsys, nb201_env):
    from evonas.cli import main

    broken = tmp_path / "broken.py"
    broken.write_text(
        "import evonas\n"
        "from dataclasses import dataclass\n"
        "@dataclass(frozen=True)\n"
        "class C:\n"
        "    pass\n"
        "class Broken:\n"
        "    metric_names = ('acc',)\n"
        "    def __init__(self, config, *, space):\n"
        "        pass\n"
        "    def evaluate(self, arch, seed):\n"
        "        raise RuntimeError('the GPU is on fire')\n"
        "Broken.Config = C\n"
        "evonas.register('evaluator', 'broken_for_test', Broken)\n"
    )
    try:
        code = main(["search", "--plugin", str(broken), "--config", str(write_config(tmp_path)), "--run-dir",
                     str(tmp_path / "run"), "evaluator={name: broken_for_test}", "fitness.objectives=[{metric: acc}]",
                     "budget.evaluations=6", "fitness.name=plain", "fitness.params={}"])
    finally:
        from evonas.evaluation import EVALUATORS

        EVALUATORS.unregister("broken_for_test")
    err = capsys.readouterr().err
    assert code == 1
    assert err.count("\n") == 1 and "every one of the 6 candidates failed" in err
    assert "RuntimeError: the GPU is on fire" in err
    assert (tmp_path / "run" / "log.jsonl").exists()


def test_report(tmp_path, nb201_env):
    from evonas.runs import report_run as write_report

    cfg = write_config(
        tmp_path,
        strategy={"name": "nsga2", "params": {"population_size": 10}},
        fitness={"objectives": [{"metric": "cifar10-valid_valid_acc"}, {"metric": "params_M", "direction": "min"}]},
        evaluator={"name": "tabular", "params": {"metric": "cifar10-valid_valid_acc"}},
        budget={"evaluations": 60},
    )
    start_search(cfg, run_dir=tmp_path / "mo")
    text = write_report(tmp_path / "mo")
    assert "## Pareto front" in text
    assert (tmp_path / "mo" / "pareto_front.png").stat().st_size > 1000
    assert (tmp_path / "mo" / "best_so_far.png").stat().st_size > 1000
    assert (tmp_path / "mo" / "report.md").read_text() == text


def _na_search(space, evaluator, executor, seed=1, n=300, run=None):
    import numpy as np

    from evonas.fitness import NeighbourhoodAwareFitness, Objective
    from evonas.search import Budget, Search
    from evonas.strategies import RegularizedEvolution

    return Search(space, RegularizedEvolution(space, 1, np.random.default_rng(seed)),
                  NeighbourhoodAwareFitness(space, (Objective("score"),)), evaluator, executor, Budget(evaluations=n),
                  seed=seed, run=run)


def test_a_batch_evaluator_scores_a_whole_fitness_plan_in_one_task():
    """Batching changes how evaluations travel, never what they are."""
    from _toys import BatchSumEvaluator, SumEvaluator

    from evonas.executors import SerialExecutor
    from evonas.spaces import get_space

    space = get_space("nb201")
    plain = _na_search(space, SumEvaluator(noise=0.5), SerialExecutor())
    batched_evaluator = BatchSumEvaluator(noise=0.5)
    batched = _na_search(space, batched_evaluator, SerialExecutor())
    assert not plain.batch and batched.batch
    a, b = plain.run_search(), batched.run_search()
    assert [(r.arch, r.values, r.used_evaluations) for r in a] == [(r.arch, r.values, r.used_evaluations) for r in b]
    # at most one call per candidate, never one per neighbour: a first candidate's 25 at once
    calls = batched_evaluator.calls
    assert calls[0] == 25 and min(calls) >= 2 and len(calls) <= len(b)
    assert sum(calls) <= batched.state.used_evaluations < sum(calls) + len(b)


def test_resume_mid_batch_gives_the_uninterrupted_history(tmp_path):
    """A crash after part of a batch was logged: the rest is evaluated, the history unchanged."""
    from _toys import BatchSumEvaluator

    from evonas.executors import SerialExecutor
    from evonas.runs import RunDir
    from evonas.spaces import get_space

    space = get_space("nb201")
    full_run = RunDir.create(tmp_path / "full", {}, 1, "search")
    _na_search(space, BatchSumEvaluator(noise=0.5), SerialExecutor(), run=full_run).run_search()
    full_run.close()
    cut_run = RunDir.create(tmp_path / "cut", {}, 1, "search")
    _na_search(space, BatchSumEvaluator(noise=0.5), SerialExecutor(), run=cut_run).run_search()
    cut_run.close()
    lines = (tmp_path / "cut" / "log.jsonl").read_text().splitlines(keepends=True)
    evals = [i for i, line in enumerate(lines) if '"type":"eval"' in line]
    keep = evals[30]  # inside the second candidate's batch of 25 evaluations
    (tmp_path / "cut" / "log.jsonl").write_text("".join(lines[:keep]))
    (tmp_path / "cut" / "checkpoint.pkl").unlink()
    resumed = RunDir.open(tmp_path / "cut")
    resumed.lock()
    _na_search(space, BatchSumEvaluator(noise=0.5), SerialExecutor(), run=resumed).run_search(resume=True)
    resumed.close()
    assert strip(read_log(tmp_path / "cut")) == strip(read_log(tmp_path / "full"))


@pytest.mark.parametrize("executor", ["serial", "ray"])
def test_non_finite_objective_values_are_failures_not_winners(tmp_path, capsys, nb201_env, executor):
    """An evaluator that returns +inf for every odd seed and NaN for some: those evaluations
    count as failed (never the best); when every evaluation is non-finite the search exits 1."""
    from evonas.cli import main
    from evonas.evaluation import EVALUATORS

    plugin = tmp_path / f"odd_{executor}.py"  # a fresh module: the plugin registers on import
    plugin.write_text(
        "import math\n"
        "import evonas\n"
        "from dataclasses import dataclass\n"
        "from evonas.evaluation import Evaluation\n"
        "@dataclass(frozen=True)\n"
        "class C:\n"
        "    always: bool = False\n"
        "class Odd:\n"
        "    metric_names = ('acc',)\n"
        "    def __init__(self, config, *, space):\n"
        "        self.always = config.always\n"
        "    def evaluate(self, arch, seed):\n"
        "        if self.always or seed % 2:\n"
        "            return Evaluation({'acc': math.inf if seed % 3 else math.nan})\n"
        "        return Evaluation({'acc': float(sum(arch))})\n"
        "Odd.Config = C\n"
        f"evonas.register('evaluator', 'odd_{executor}_for_test', Odd)\n"
    )
    def argv(run: str, evaluator: str) -> list[str]:
        return ["search", "--plugin", str(plugin), "--config", str(write_config(tmp_path)), "--no-progress",
                "--run-dir", str(tmp_path / run), "fitness.objectives=[{metric: acc}]", "budget.evaluations=12",
                "fitness.name=plain", "fitness.params={}", f"executor={{name: {executor}}}", f"evaluator={evaluator}"]

    try:
        assert main(argv("some", f"{{name: odd_{executor}_for_test}}")) == 0
        summary = json.loads((tmp_path / "some" / "result.json").read_text())
        evals = [r for r in read_log(tmp_path / "some") if r["type"] == "eval"]
        bad = [r for r in evals if r["seed"] % 2]
        assert bad and all(r["evaluation"]["failed"] and "objective 'acc' is" in r["evaluation"]["error"] for r in bad)
        assert summary["failed"] == len(bad)
        assert math.isfinite(summary["best"]["metrics"]["acc"])
        capsys.readouterr()
        code = main(argv("all", f"{{name: odd_{executor}_for_test, params: {{always: true}}}}"))
    finally:
        # a distinct name per module: Ray workers import every plugin this process loaded
        EVALUATORS.unregister(f"odd_{executor}_for_test")
    last = capsys.readouterr().err.strip().splitlines()[-1]  # Ray may log lines of its own before it
    assert code == 1 and last.startswith("evonas: error:") and "objective 'acc' is" in last


class _Killed(Exception):
    """Raised from a candidate callback: the process dies there, before its next checkpoint."""


def _rea_run(run, evaluations, fitness="plain", kill_at=None, told=None):
    """REA (population 20) on nb201 with a noisy toy evaluator, logging to ``run``.

    Args:
        run: The run directory.
        evaluations: The budget.
        fitness: ``"plain"`` or ``"neighbourhood"`` (which caches every evaluation).
        kill_at: Raise :class:`_Killed` once the candidate of this id has been told and logged.
        told: A list that receives the id of every candidate told to the strategy.
    """
    import numpy as np
    from _toys import SumEvaluator

    from evonas.executors import SerialExecutor
    from evonas.fitness import NeighbourhoodAwareFitness, Objective, PlainFitness
    from evonas.search import Budget, Search
    from evonas.spaces import get_space
    from evonas.strategies import REAConfig, RegularizedEvolution

    space = get_space("nb201")
    objectives = (Objective("score"),)
    scorer = PlainFitness(objectives) if fitness == "plain" else NeighbourhoodAwareFitness(space, objectives)

    def on_candidate(record):
        if told is not None:
            told.append(record.cand_id)
        if record.cand_id == kill_at:
            raise _Killed

    strategy = RegularizedEvolution(space, 1, np.random.default_rng(5), REAConfig(population_size=20, tournament_size=5))
    return Search(space, strategy, scorer, SumEvaluator(noise=0.5), SerialExecutor(), Budget(evaluations=evaluations),
                  seed=5, run=run, on_candidate=on_candidate)


def _killed_and_full(tmp_path, evaluations, fitness, kill_at):
    """An uninterrupted run (its history) and a run killed after candidate ``kill_at`` (its path)."""
    from evonas.runs import RunDir

    with RunDir.create(tmp_path / "full", {}, 5, "search") as run:
        full = _rea_run(run, evaluations, fitness).run_search()
    with RunDir.create(tmp_path / "cut", {}, 5, "search") as run, pytest.raises(_Killed):
        _rea_run(run, evaluations, fitness, kill_at=kill_at).run_search()
    return full, tmp_path / "cut"


@pytest.mark.parametrize("fitness, short, long", [("plain", 200, 2000), ("neighbourhood", 1000, 5000)])
def test_the_checkpoint_does_not_grow_with_the_history(tmp_path, fitness, short, long):
    """The checkpoint holds the strategy's bounded state, not the history nor the evaluation cache."""
    from evonas.runs import RunDir

    sizes = {}
    for n in (short, long):
        with RunDir.create(tmp_path / str(n), {}, 5, "search") as run:
            history = _rea_run(run, n, fitness).run_search()
        assert len(history) > 20  # the population is full in both runs
        sizes[n] = (tmp_path / str(n) / "checkpoint.pkl").stat().st_size
    assert abs(sizes[long] - sizes[short]) < 0.1 * sizes[short], sizes


@pytest.mark.parametrize("fitness, evaluations, kill_at", [("plain", 2000, 1234), ("neighbourhood", 2000, 53)])
def test_resume_from_a_checkpoint_rebuilds_the_history_from_the_log(tmp_path, fitness, evaluations, kill_at):
    """Killed between checkpoints: the candidates before the checkpoint come back from the log
    (never told again), the ones after it are replayed, and the run ends as if never stopped."""
    from evonas.runs import RunDir

    full, cut = _killed_and_full(tmp_path, evaluations, fitness, kill_at)
    told_again: list[int] = []
    with RunDir.open(cut) as run:
        run.lock()
        checkpoint = run.load_checkpoint()
        assert 0 < checkpoint.told <= kill_at < len(full)
        history = _rea_run(run, evaluations, fitness, told=told_again).run_search(resume=True)
    assert history == full
    assert told_again == [r.cand_id for r in full[checkpoint.told :]]
    assert strip(read_log(cut)) == strip(read_log(tmp_path / "full"))


def test_a_checkpoint_of_another_loop_version_is_ignored_and_the_log_replayed(tmp_path):
    """A checkpoint whose state has other fields (e.g. one that still pickled the history) is
    not used: the whole log is replayed, which gives the same run."""
    from evonas.runs import RunDir

    full, cut = _killed_and_full(tmp_path, 600, "plain", kill_at=333)
    with RunDir.open(cut) as run:
        run.lock()
        state = run.load_checkpoint()
        del state.told
        state.history = []
        run.save_checkpoint(state)
        told_again: list[int] = []
        history = _rea_run(run, 600, told=told_again).run_search(resume=True)
    assert history == full and told_again == [r.cand_id for r in full]
    ignored = [r for r in read_log(cut) if r["type"] == "checkpoint_ignored"]
    assert len(ignored) == 1 and "another version of the search loop" in ignored[0]["reason"]
    assert [r for r in strip(read_log(cut)) if r["type"] != "checkpoint_ignored"] == strip(read_log(tmp_path / "full"))
