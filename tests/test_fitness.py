from __future__ import annotations

import numpy as np
import pytest

from evonas.errors import ConfigError
from evonas.executors import SerialExecutor
from evonas.fitness import NeighbourhoodAwareFitness, Objective, PlainFitness, aggregate, parse_aggregate
from evonas.search import Budget, Search
from evonas.spaces import get_space
from evonas.strategies import RandomSearch

from _toys import SumEvaluator

SPACE = get_space("nb201")


def evaluate_all(fitness, arch, evaluator=None):
    evaluator = evaluator or SumEvaluator()
    return fitness.combine(arch, {a: evaluator.evaluate(a, 0) for a in fitness.plan(arch)})


def test_neighbourhood_mean_is_exact():
    # score = sum of ops S; the 24 neighbours sum to 19 S + 60, so the mean over 25 is 0.8 S + 2.4
    na = NeighbourhoodAwareFitness(SPACE, (Objective("score"),))
    for arch in [(0,) * 6, (4,) * 6, (1, 2, 3, 4, 0, 1)]:
        s = sum(arch)
        assert evaluate_all(na, arch).values[0] == pytest.approx(0.8 * s + 2.4)
    assert len(na.plan((0,) * 6)) == 25


def test_neighbourhood_other_aggregates():
    arch = (0,) * 6  # self 0; neighbours have sums 1, 2, 3, 4 (six each)
    mins = NeighbourhoodAwareFitness(SPACE, (Objective("score"),), aggregate="min")
    assert evaluate_all(mins, arch).values == (0.0,)
    no_self = NeighbourhoodAwareFitness(SPACE, (Objective("score"),), aggregate="min", include_self=False)
    assert evaluate_all(no_self, arch).values == (1.0,)
    q = NeighbourhoodAwareFitness(SPACE, (Objective("score"),), aggregate="q0.5", include_self=False)
    assert evaluate_all(q, arch).values == (2.5,)
    # a minimised objective is aggregated pessimistically too: min of the negated values
    m = NeighbourhoodAwareFitness(SPACE, (Objective("score", "min"),), aggregate="min")
    score = evaluate_all(m, (4,) * 6)
    assert score.values == (-24.0,)
    assert score.metrics["fitness/score"] == 24.0


def test_failed_neighbours_are_left_out_and_failed_self_fails():
    arch = (0,) * 6
    na = NeighbourhoodAwareFitness(SPACE, (Objective("score"),))
    bad = SPACE.neighbors(arch)[0]
    from evonas.evaluation import Evaluation

    evals = {a: SumEvaluator().evaluate(a, 0) for a in na.plan(arch)}
    evals[bad] = Evaluation.failure("boom")
    score = na.combine(arch, evals)
    assert score.metrics["fitness/num_neighbours_used"] == 23
    assert score.values[0] == pytest.approx((sum(sum(a) for a in na.plan(arch)) - 1) / 24)
    evals[arch] = Evaluation.failure("boom")
    assert na.combine(arch, evals).failed


def test_aggregate_names():
    assert parse_aggregate("q0.25") == 0.25
    assert aggregate(np.array([1.0, 2.0, 3.0, 4.0]), 0.5) == 2.5
    for bad in ["avg", "q2", "q", "q-0.1"]:
        with pytest.raises(ConfigError, match=f"invalid fitness aggregate '{bad}'"):
            parse_aggregate(bad)


def test_plain_fitness_needs_known_metric():
    with pytest.raises(ConfigError, match="objective metric 'acc' is not reported"):
        evaluate_all(PlainFitness((Objective("acc"),)), (0,) * 6)


class CountingEvaluator(SumEvaluator):
    def __init__(self):
        super().__init__()
        self.calls = []

    def evaluate(self, arch, seed):
        self.calls.append(arch)
        return super().evaluate(arch, seed)


def test_na_random_search_counts_every_evaluation_and_caches():
    evaluator = CountingEvaluator()
    na = NeighbourhoodAwareFitness(SPACE, (Objective("score"),))
    search = Search(SPACE, RandomSearch(SPACE, 1, np.random.default_rng(0)), na, evaluator, SerialExecutor(),
                    Budget(evaluations=200), seed=0)
    history = search.run_search()
    assert len(evaluator.calls) == len(set(evaluator.calls))  # nothing evaluated twice
    assert search.state.used_evaluations == len(evaluator.calls)
    assert history[0].num_evaluations == 25 and history[0].used_evaluations == 25
    assert 200 <= search.state.used_evaluations < 225  # the last candidate may overshoot
    assert search.state.used_seconds == float(len(evaluator.calls))


# ---------------------------------------------------------------- neighbour_cost: free
def _expected_free_charges(space, archs):
    """What a serial search with free neighbours charges: recomputed from the candidates alone.

    Returns the evaluations run, the charged ones (one per candidate) and the uncharged
    neighbour evaluations: those run for a candidate's plan other than its own.
    """
    seen: set = set()
    run = uncharged = 0
    for arch in archs:
        new = [a for a in dict.fromkeys([arch, *space.neighbors(arch)]) if a not in seen]
        seen.update(new)
        run += len(new)
        uncharged += len(new) - (arch in new)
    return run, len(archs), uncharged


def _na_random(neighbour_cost, budget, evaluator):
    na = NeighbourhoodAwareFitness(SPACE, (Objective("score"),), neighbour_cost=neighbour_cost)
    return Search(SPACE, RandomSearch(SPACE, 1, np.random.default_rng(0)), na, evaluator, SerialExecutor(), budget, seed=0)


def test_free_neighbours_charge_one_evaluation_per_candidate():
    evaluator = CountingEvaluator()
    search = _na_random("free", Budget(evaluations=30), evaluator)
    history = search.run_search()
    assert len(history) == 30  # the budget counts candidates, so nothing overshoots
    assert [r.used_evaluations for r in history] == list(range(1, 31))
    assert [r.used_seconds for r in history] == [float(i) for i in range(1, 31)]  # cost 1 s each
    run, charged, uncharged = _expected_free_charges(SPACE, [r.arch for r in history])
    assert len(evaluator.calls) == run and search.state.used_evaluations == charged == 30
    assert search.state.uncharged_evaluations == history[-1].uncharged_evaluations == uncharged
    # the same candidates under counted accounting are charged every evaluation run
    counted = _na_random("counted", Budget(evaluations=run), CountingEvaluator())
    counted_history = counted.run_search()
    assert [r.arch for r in counted_history] == [r.arch for r in history]
    assert counted.state.used_evaluations == run and counted.state.uncharged_evaluations == 0


def test_free_neighbours_charge_a_repeated_candidate_again():
    """A candidate searched again is charged again (the NAS-Bench-201 protocol charges repeats),
    though its evaluation is cached and nothing new is run."""

    class Repeat(RandomSearch):
        def ask(self):
            return (1, 2, 3, 4, 0, 1)

    evaluator = CountingEvaluator()
    na = NeighbourhoodAwareFitness(SPACE, (Objective("score"),), neighbour_cost="free")
    search = Search(SPACE, Repeat(SPACE, 1, np.random.default_rng(0)), na, evaluator, SerialExecutor(),
                    Budget(seconds=4.0), seed=0)
    history = search.run_search()
    assert len(history) == 4 and len(evaluator.calls) == 25
    assert [(r.used_evaluations, r.used_seconds, r.uncharged_evaluations) for r in history] == [
        (1, 1.0, 24), (2, 2.0, 24), (3, 3.0, 24), (4, 4.0, 24)
    ]


def test_neighbour_cost_is_validated():
    with pytest.raises(ConfigError, match="invalid fitness neighbour_cost 'gratis'; valid: counted, free"):
        NeighbourhoodAwareFitness(SPACE, (Objective("score"),), neighbour_cost="gratis")
    assert PlainFitness((Objective("score"),)).neighbour_cost == "counted"


def _search_config(nb201_path, neighbour_cost="free", evaluator="tabular", **extra):
    params = {"tables": [{"name": "nb201", "params": {"path": str(nb201_path)}}], "report": ["cifar10_test_acc"]}
    raw = {
        "seed": 2,
        "evaluator": {"name": evaluator, "params": params if evaluator == "tabular" else {}},
        "fitness": {"name": "neighbourhood", "objectives": [{"metric": "cifar10-valid_valid_acc_12ep"}],
                    "params": {"neighbour_cost": neighbour_cost}},
        "strategy": {"name": "rea", "params": {"population_size": 10, "tournament_size": 3}},
        "budget": {"seconds": 3000},
        "checkpoint_every": 4,
        "progress": False,
    }
    raw.update(extra)
    return raw


def test_bad_neighbour_cost_in_a_config_is_one_config_error(nb201_path):
    from evonas.config import from_dict
    from evonas.search import SearchConfig

    with pytest.raises(ConfigError, match=r"invalid value 'gratis' for 'fitness.params.neighbour_cost'; "
                                          r"valid values: 'counted', 'free'"):
        from_dict(SearchConfig, _search_config(nb201_path, "gratis"))
    with pytest.raises(ConfigError, match=r"neighbour_cost 'free' needs evaluator 'tabular' .*evaluator 'training'"
                                          r".*valid values with it: 'counted'$"):
        from_dict(SearchConfig, _search_config(nb201_path, "free", evaluator="training"))
    from_dict(SearchConfig, _search_config(nb201_path, "counted", evaluator="training"))  # counted: any evaluator
    with pytest.raises(ConfigError, match="neighbour_cost"):  # a plain fitness has no neighbours
        from_dict(SearchConfig, {**_search_config(nb201_path), "fitness": {
            "objectives": [{"metric": "cifar10-valid_valid_acc_12ep"}], "params": {"neighbour_cost": "free"}}})


def test_bad_neighbour_cost_on_the_command_line_exits_2(tmp_path, nb201_path, capsys):
    import yaml

    from evonas.cli import main

    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(_search_config(nb201_path, "counted", evaluator="training")))
    code = main(["search", "--config", str(cfg), "--run-dir", str(tmp_path / "run"), "fitness.params.neighbour_cost=free"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "neighbour_cost 'free' needs evaluator 'tabular'" in err
    assert not (tmp_path / "run").exists()


class _MeanOverNeighbourhood:
    """The accounting of Wang et al. written as an evaluator: the metric is the mean over the
    architecture and its neighbours, the cost the architecture's own."""

    def __init__(self, inner, space, metric):
        self.inner, self.space, self.metric = inner, space, metric
        self.metric_names = inner.metric_names

    def evaluate(self, arch, seed):
        from evonas.evaluation import Evaluation

        own = self.inner.evaluate(arch, seed)
        values = [own.metrics[self.metric]] + [self.inner.evaluate(n, seed).metrics[self.metric]
                                               for n in self.space.neighbors(arch)]
        return Evaluation(metrics={**own.metrics, self.metric: float(np.mean(values))}, cost=own.cost)


def test_free_neighbours_on_the_table_are_the_papers_accounting(nb201_path, nb201_table):
    """NA-REA with free neighbours is, candidate for candidate, a plain REA whose every query
    returns the neighbourhood mean at the architecture's own cost; counted, the same search
    is charged every table query and affords far fewer candidates."""
    from evonas.config import from_dict
    from evonas.search import SearchConfig, build_parts

    def run(raw, wrap=False):
        config = from_dict(SearchConfig, raw)
        parts = build_parts(config)
        evaluator = _MeanOverNeighbourhood(parts.evaluator, parts.space, "cifar10-valid_valid_acc_12ep") if wrap else parts.evaluator
        search = Search(parts.space, parts.strategy, parts.fitness, evaluator, parts.executor, config.budget, config.seed)
        return search, search.run_search()

    free, free_history = run(_search_config(nb201_path, "free"))
    plain_raw = _search_config(nb201_path)
    plain_raw["fitness"] = {"objectives": [{"metric": "cifar10-valid_valid_acc_12ep"}]}
    _, paper_history = run(plain_raw, wrap=True)
    assert [(r.arch, r.values, r.used_evaluations, r.used_seconds) for r in free_history] == [
        (r.arch, r.values, r.used_evaluations, r.used_seconds) for r in paper_history
    ]
    archs = [r.arch for r in free_history]
    own_costs = [nb201_table.cost(a) for a in archs]
    assert free.state.used_seconds == pytest.approx(sum(own_costs), rel=1e-12)
    assert sum(own_costs[:-1]) < 3000 <= sum(own_costs)  # stopped by the budget, at the first candidate over it
    run_count, charged, uncharged = _expected_free_charges(free.space, archs)
    assert (free.state.used_evaluations, free.state.uncharged_evaluations, free.state.log_position) == (
        charged, uncharged, run_count)

    counted, counted_history = run(_search_config(nb201_path, "counted"))
    evaluated = list(dict.fromkeys(a for r in counted_history for a in [r.arch, *counted.space.neighbors(r.arch)]))
    assert counted.state.used_evaluations == counted.state.log_position == len(evaluated)
    assert counted.state.used_seconds == pytest.approx(sum(nb201_table.cost(a) for a in evaluated), rel=1e-12)
    assert counted.state.uncharged_evaluations == 0
    assert len(counted_history) < 10 < len(free_history)  # counted: the first random cell's 25 queries outspend it


def test_the_summary_and_report_state_the_accounting(tmp_path, nb201_path):
    import yaml

    from evonas.runs import report_run
    from evonas.search import start_search

    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(_search_config(nb201_path, "free")))
    free = start_search(cfg, run_dir=tmp_path / "free")
    uncharged = free.summary["accounting"]["uncharged_evaluations"]
    assert free.summary["accounting"] == {"neighbour_cost": "free", "uncharged_evaluations": uncharged}
    assert uncharged > 0 and free.summary["used_evaluations"] == free.summary["candidates"]
    line = (f"- budget accounting: neighbours free (neighbour_cost: free): each candidate is charged its own "
            f"evaluation only; {uncharged} neighbour evaluations were run and not charged")
    assert line in report_run(tmp_path / "free").splitlines()
    assert f"{uncharged} neighbour evaluations were run and not charged" in free.text

    counted = start_search(cfg, ["fitness.params.neighbour_cost=counted"], run_dir=tmp_path / "counted")
    assert counted.summary["accounting"] == {"neighbour_cost": "counted", "uncharged_evaluations": 0}
    report = report_run(tmp_path / "counted")
    assert "- budget accounting: every evaluation run is charged (neighbour_cost: counted)" in report.splitlines()


@pytest.mark.parametrize("cut, keep_checkpoint", [(40, False), (300, False), (300, True)])
def test_resume_with_free_neighbours_gives_the_uninterrupted_run(tmp_path, nb201_path, cut, keep_checkpoint):
    """The charges are rebuilt from the checkpoint and the replayed log, never re-charged."""
    import json

    import yaml

    from evonas.search import resume_search, start_search

    def log(run):
        return [{k: v for k, v in json.loads(line).items() if k not in ("time", "chk")}
                for line in (run / "log.jsonl").read_text().splitlines()]

    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(_search_config(nb201_path, "free")))
    full = start_search(cfg, run_dir=tmp_path / "full")
    start_search(cfg, run_dir=tmp_path / "cut")
    run = tmp_path / "cut"
    lines = (run / "log.jsonl").read_text().splitlines(keepends=True)
    assert cut < len(lines)
    (run / "log.jsonl").write_text("".join(lines[:cut]) + lines[cut][: len(lines[cut]) // 2])  # torn last line
    (run / "result.json").unlink()
    if keep_checkpoint:  # a checkpoint older than the log's end, from the same run stopped early
        start_search(cfg, ["budget.seconds=1000"], run_dir=tmp_path / "early")
        (run / "checkpoint.pkl").write_bytes((tmp_path / "early" / "checkpoint.pkl").read_bytes())
    else:
        (run / "checkpoint.pkl").unlink()
    resumed = resume_search(run)
    assert log(run) == log(tmp_path / "full")
    assert resumed.summary == full.summary
    assert resumed.summary["accounting"]["uncharged_evaluations"] > 0
