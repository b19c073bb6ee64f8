"""Does the pipeline find good architectures? Its pick against every other picker, judged by the table.

Protocol (printed with the tables):

- Data: CIFAR-10, the real JPEGs in ``../shared/data/images/cifar10-jpg.tar.gz`` in
  NAS-Bench-201's ``cifar10-valid`` split (25k training / 25k validation images, the 10k
  test images). Ground truth: the NAS-Bench-201 table's 200-epoch ``cifar10_test_acc`` of
  the cell a method picks (never seen by any method).
- For each seed, ``configs/pipeline-cifar10.yaml`` runs end to end with ``evonas run``
  (single-path supernet C=8, one cell per stage, trained on novelty-sampled cells; proxy
  rounds and an ensemble of GAE proxy-validation-loss predictors; neighbourhood-aware REA
  on the predictor; the best distinct cells trained from scratch at reduced size; SAEP).
  Its pick is the search's best.
- On the **same supernet and predictor** of that seed: REA on the proxy without the
  neighbourhood (plain fitness; the same number of predictor queries: every neighbour
  query of NA-REA counts), REA on inherited weights (``val_loss`` after BN
  recalibration, ``--weights-evals`` evaluations), and the supernet's own top-1 among the
  cells it ranked (the lowest inherited-weight validation loss in the final proxy round).
- The novelty claim where it matters: the same pipeline with the uniform sampler instead
  (its own supernet, same seed and steps), through the search stage.
- Trivial pickers: the cell with the most parameters, the NASWOT-best (Mellor et al.,
  ICML 2021; evonas's zero-cost scorer, 64 real CIFAR-10 training images, the full-size
  NAS-Bench-201 network at initialisation) of ``--naswot-cells`` random cells, a random cell.
- What limits the pick: the proxy predictor scored on every cell of the space (Kendall
  tau against the table, the true accuracy of its optimum and of the neighbourhood-aware
  optimum: what a perfect search on the proxy would pick).
- The final SAEP ensemble's and its best single member's accuracy on the CIFAR-10 test
  images after the pipeline's final training (reduced size: C=8, one cell per stage, a
  few epochs; see the config).

Two worker processes (one torch thread each) run the seeds' jobs side by side. ``--quick``
is a smoke test (a few minutes: few steps, small budgets, a subset of the images). Run again
with the same ``--out``, it continues: finished runs are read, not repeated.

Usage: python benchmarks/pipeline_nb201.py [--seeds 2] [--steps 12000] [--quick] [--out DIR] [--limits-only]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("EVONAS_SHARED_DATA", ROOT.parent / "shared" / "data"))
DATA = SHARED / "images" / "cifar10-jpg.tar.gz"
TABLE = SHARED / "nb201" / "nb201.csv.gz"
CONFIG = ROOT / "configs" / "pipeline-cifar10.yaml"
TRUTH = "cifar10_test_acc"
PUBLISHED = (
    ("GDAS (weight sharing, NAS-Bench-201 paper)", "93.61 ± 0.09"),
    ("RSPS (NAS-Bench-201 paper)", "87.66"),
    ("DARTS (NAS-Bench-201 paper)", "54.30"),
    ("DARTS-PT (authors' rerun)", "about 88.2"),
    ("optimum of the table", "94.37"),
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", type=int, default=2, help="seeds 0..N-1 (default 2)")
    p.add_argument("--steps", type=int, default=None, help="supernet steps (default: the config's; quick 400)")
    p.add_argument("--weights-evals", type=int, default=None, help="REA on inherited weights: evaluations (default 300)")
    p.add_argument("--naswot-cells", type=int, default=None, help="random cells scored by NASWOT (default 1000)")
    p.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    p.add_argument("--quick", action="store_true", help="smoke test: few steps, small budgets, image subsets")
    p.add_argument("--out", type=Path, default=None, help="where the runs go (default benchmarks/_runs/pipeline-<time>)")
    p.add_argument("--json", type=Path, default=None, help="write every figure here too")
    p.add_argument("--limits-only", action="store_true",
                   help="only the 'what limits the pick' table, from the finished pipelines in --out")
    return p.parse_args(argv)


def _overrides(args: argparse.Namespace, seed: int) -> list[str]:
    out = [f"seed={seed}", "progress=false", "supernet.train.compute.num_threads=1", "train.compute.num_threads=1",
           f"tables.0.params.path={TABLE}", f"dataset.root={DATA}"]
    if args.steps is not None:
        out.append(f"supernet.train.steps={args.steps}")
    if args.quick:
        out += ["dataset.max_train=2000", "dataset.max_val=1000", "dataset.max_test=1000",
                "supernet.proxy.every=100", "supernet.proxy.start=200", "supernet.proxy.archs_per_round=20",
                "supernet.proxy.ensemble=1", "supernet.evaluation.val_images=500", "supernet.checkpoint_every=100",
                "supernet.sampler.params.warmup_steps=50", "supernet.train.warmup_steps=20",
                "search.budget.evaluations=600", "train.epochs=1", "train.val_every=1", "final.members=3"]
    return out


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)


# ----------------------------------------------------------------------------- jobs
def pipeline_job(args: argparse.Namespace, seed: int, out: Path) -> dict[str, Any]:
    """The whole pipeline (novelty sampler) for one seed."""
    from evonas.pipeline import resume_pipeline, run_pipeline

    t0 = time.perf_counter()
    run_dir = out / f"pipeline-s{seed}"
    if (run_dir / "meta.yaml").is_file():  # an interrupted benchmark continues where it stopped
        result = resume_pipeline(run_dir, progress=False)
    else:
        result = run_pipeline(CONFIG, _overrides(args, seed), run_dir=run_dir, progress=False)
    return {"seed": seed, "summary": result.summary, "seconds": time.perf_counter() - t0}


def uniform_job(args: argparse.Namespace, seed: int, out: Path) -> dict[str, Any]:
    """Supernet and search stages of the same pipeline with the uniform sampler."""
    from evonas.config import load_config
    from evonas.pipeline import PipelineConfig
    from evonas.pipeline._config import search_config, supernet_config
    from evonas.runs import run_stage

    t0 = time.perf_counter()
    config = load_config(PipelineConfig, CONFIG, [*_overrides(args, seed), "supernet.sampler={name: uniform}"])
    root = out / f"uniform-s{seed}"
    root.mkdir(parents=True, exist_ok=True)
    run_stage(root / "supernet", "supernet", supernet_config(config, str(TABLE)), False)
    search = run_stage(root / "search", "search", search_config(config, root / "supernet"), False)
    return {"seed": seed, "best": search.summary["best"], "seconds": time.perf_counter() - t0}


def _search_variant(config: Any, seed: int, out: Path, name: str, score: str, evaluations: int) -> dict[str, Any]:
    """A plain-fitness REA on this seed's supernet run, scored by ``score``."""
    from evonas.config import from_dict, to_dict
    from evonas.pipeline._config import evaluator_section
    from evonas.runs import run_stage
    from evonas.search._config import SearchConfig

    supernet = out / f"pipeline-s{seed}" / "supernet"
    metric = "proxy_val_loss" if score == "proxy" else "val_loss"
    data = {
        "evaluator": evaluator_section(config, supernet, score),
        "fitness": {"name": "plain", "objectives": [{"metric": metric, "direction": "min"}]},
        "strategy": to_dict(config.search.strategy),
        "budget": {"evaluations": evaluations},
        "seed": seed,
        "space": to_dict(config.space),
        "report": TRUTH,
        "progress": False,
    }
    t0 = time.perf_counter()
    search = run_stage(out / f"{name}-s{seed}", "search", from_dict(SearchConfig, data), False)
    return {"best": search.summary["best"], "seconds": time.perf_counter() - t0}


def variants_job(args: argparse.Namespace, seed: int, out: Path) -> dict[str, Any]:
    """REA on the proxy (plain), REA on inherited weights and the supernet's own top-1,
    all on the supernet of this seed's pipeline."""
    from evonas.config import load_config
    from evonas.pipeline import PipelineConfig
    from evonas.runs import RunDir
    from evonas.supernet._run import read_records

    config = load_config(PipelineConfig, CONFIG, _overrides(args, seed))
    budget = config.search.budget.evaluations or 3000
    weights_evals = args.weights_evals or (40 if args.quick else 300)
    out_ = {
        "rea_proxy": _search_variant(config, seed, out, "rea-proxy", "proxy", budget),
        "rea_weights": _search_variant(config, seed, out, "rea-weights", "supernet", weights_evals),
    }
    run = RunDir.open(out / f"pipeline-s{seed}" / "supernet", kind="supernet")
    rounds = [r for r in read_records(run) if r.get("type") == "proxy"]
    last = rounds[-1]
    losses = [float(v) if v is not None else math.inf for v in last["val_loss"]]
    best = int(np.argmin(losses))
    out_["supernet_top1"] = {"arch": last["archs"][best], "val_loss": losses[best], "round_step": last["step"],
                             "ranked": len(losses)}
    return out_


def naswot_job(args: argparse.Namespace, seed: int, out: Path) -> dict[str, Any]:
    """The NASWOT-best of N random cells, and one random cell."""
    from predictors._zc_scorer import ZeroCostScorer
    from evonas.spaces import build_space

    space = build_space("nb201")
    rng = np.random.default_rng([seed, 201])
    n = args.naswot_cells or (40 if args.quick else 1000)
    archs = [space.sample(rng) for _ in range(n)]
    t0 = time.perf_counter()
    scorer = ZeroCostScorer(data_root=str(DATA), batch_size=64, data_seed=seed, init_seed=seed, space=space,
                            cache_dir=str(out / "naswot-cache"))
    scores = scorer.scores(archs, ["naswot"])[:, 0]
    seconds = time.perf_counter() - t0
    best = int(np.nanargmax(scores))
    return {"naswot": space.format(archs[best]), "naswot_score": float(scores[best]), "naswot_cells": n,
            "naswot_seconds": seconds, "random": space.format(space.sample(rng))}


def limits_job(seed: int, out: Path) -> dict[str, Any]:
    """What limits the pick: the proxy predictor scored on all 15,625 cells of the space.

    Kendall tau of the (negated) predictions against the table; the true accuracy of the
    predictor's own optimum and of the neighbourhood-aware optimum over the whole space
    (what a perfect search on this proxy would pick); and where the pipeline's pick ranks.
    """
    from scipy.stats import kendalltau

    from evonas.config import ComponentConfig
    from evonas.spaces import build_space
    from evonas.supernet._run import load_predictor
    from evonas.tabular import build_tables

    space = build_space("nb201")
    table = build_tables((ComponentConfig("nb201", {"path": str(TABLE)}),), space).tables[0]
    truth = table.column(TRUTH)  # in all_archs() order
    predictor = load_predictor(out / f"pipeline-s{seed}" / "supernet", space=space)
    if predictor is None:
        raise RuntimeError("the supernet stage fitted no predictor")
    archs = space.all_archs()
    pred = np.array([e.metrics["proxy_val_loss"] for e in predictor.evaluate_many(archs)])
    na = np.array([np.mean([pred[space.ordinal(n)] for n in space.neighbors(a)] + [pred[i]])
                   for i, a in enumerate(archs)])
    top = np.argsort(pred)[:10]
    return {
        "tau_all": float(kendalltau(-pred, truth).statistic),
        "tau_top": float(kendalltau(-pred[np.argsort(truth)[-500:]], np.sort(truth)[-500:]).statistic),
        "proxy_optimum": float(truth[int(np.argmin(pred))]),
        "na_optimum": float(truth[int(np.argmin(na))]),
        "proxy_top10_mean": float(truth[top].mean()),
    }


# ----------------------------------------------------------------------------- report
def _truth(table: Any, space: Any, arch: Any) -> float:
    genotype = space.parse(arch) if isinstance(arch, str) else space.validate(arch)
    return float(table.query(genotype, TRUTH))


def _ms(values: list[float]) -> str:
    v = np.asarray(values, dtype=float)
    if len(v) == 0:
        return "-"
    std = float(v.std(ddof=1)) if len(v) > 1 else 0.0
    return f"{v.mean():.2f} ± {std:.2f}"


def limits_table(lim_res: dict[int, dict[str, Any]], seeds: list[int]) -> str:
    """What limits the pick, per seed (see :func:`limits_job`)."""
    lines = ["\n## What limits the pick: the proxy predictor over all 15,625 cells\n",
             "| seed | Kendall tau, all cells | tau among the table's top 500 | true acc. of the proxy's optimum "
             "| of its 10 best (mean) | of the neighbourhood-aware optimum |",
             "| --- | --- | --- | --- | --- | --- |"]
    for s in seeds:
        r = lim_res[s]
        lines.append(f"| {s} | {r['tau_all']:.3f} | {r['tau_top']:.3f} | {r['proxy_optimum']:.2f} | "
                     f"{r['proxy_top10_mean']:.2f} | {r['na_optimum']:.2f} |")
    lines.append("\nA perfect search on the proxy would pick the optimum columns: when they are below the "
                 "trivial pickers, the proxy (supernet and predictor), not the search, is what limits the pick.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for path in (DATA, TABLE, CONFIG):
        if not path.exists():
            sys.stderr.write(f"pipeline_nb201: {path} does not exist\n")
            return 2
    if args.limits_only:
        if args.out is None:
            sys.stderr.write("pipeline_nb201: --limits-only needs --out (the folder of a finished benchmark)\n")
            return 2
        print(limits_table({s: limits_job(s, args.out) for s in range(args.seeds)}, list(range(args.seeds))))
        return 0
    out = args.out or ROOT / "benchmarks" / "_runs" / f"pipeline-{time.strftime('%Y%m%d-%H%M%S')}"
    out.mkdir(parents=True, exist_ok=True)
    seeds = list(range(args.seeds))
    t0 = time.perf_counter()
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    with ProcessPoolExecutor(max_workers=args.workers, mp_context=ctx, initializer=_init_worker) as pool:
        pipes = {s: pool.submit(pipeline_job, args, s, out) for s in seeds}
        unis = {s: pool.submit(uniform_job, args, s, out) for s in seeds}
        nas = {s: pool.submit(naswot_job, args, s, out) for s in seeds}
        pipe_res = {s: f.result() for s, f in pipes.items()}
        var = {s: pool.submit(variants_job, args, s, out) for s in seeds}
        lim = {s: pool.submit(limits_job, s, out) for s in seeds}
        uni_res = {s: f.result() for s, f in unis.items()}
        nas_res = {s: f.result() for s, f in nas.items()}
        var_res = {s: f.result() for s, f in var.items()}
        lim_res = {s: f.result() for s, f in lim.items()}
    wall = time.perf_counter() - t0

    from evonas.config import ComponentConfig
    from evonas.spaces import build_space
    from evonas.tabular import build_tables

    space = build_space("nb201")
    table = build_tables((ComponentConfig("nb201", {"path": str(TABLE)}),), space)
    # the largest cell: the most parameters in the table (ties: the first in the table's order)
    nb201 = table.tables[0]
    largest = space.from_ordinal(int(np.argmax(nb201.column("params_M"))))  # column order: all_archs()

    rows: dict[str, list[float]] = {}
    picks: dict[str, list[str]] = {}

    def add(name: str, arch: Any) -> None:
        rows.setdefault(name, []).append(_truth(table, space, arch))
        picks.setdefault(name, []).append(arch if isinstance(arch, str) else space.format(space.validate(arch)))

    ens_rows: dict[str, list[float]] = {}
    exported: list[str] = []
    for s in seeds:
        summary = pipe_res[s]["summary"]
        add("pipeline: NA-REA on the GAE proxy (novelty supernet)", summary["pick"]["arch"])
        add("REA on the proxy (no neighbourhood)", var_res[s]["rea_proxy"]["best"]["arch"])
        add("REA on inherited weights", var_res[s]["rea_weights"]["best"]["arch"])
        add("supernet top-1 among the cells it ranked", var_res[s]["supernet_top1"]["arch"])
        add("pipeline with the uniform sampler (NA-REA on its proxy)", uni_res[s]["best"]["arch"])
        add("largest cell (most parameters)", largest)
        add(f"NASWOT-best of {nas_res[s]['naswot_cells']} random cells", nas_res[s]["naswot"])
        add("a random cell", nas_res[s]["random"])
        res = summary["result"]
        ens_rows.setdefault("the exported SAEP sub-ensemble", []).append(float(res["test_acc"]))
        exported.append(f"seed {s}: {res['label']}, {res['num_members']} of {res['pool_size']} members")
        ens_rows.setdefault("best single member (by validation)", []).append(float(res["best_single_test_acc"]))
        ens_rows.setdefault("full pool", []).append(float(res["full_pool_test_acc"]))

    print("## Protocol\n")
    print((__doc__ or "").split("Protocol (printed with the tables):")[1].split("Usage:")[0].strip())
    print(f"\nSeeds: {seeds}; supernet steps: {args.steps or 'config (12000)'}; quick: {args.quick}; "
          f"wall time {wall / 60:.1f} min on {os.cpu_count()} cores; runs in {out}\n")
    print(f"## The pick's 200-epoch CIFAR-10 test accuracy (NAS-Bench-201 table), mean ± std over {len(seeds)} seeds\n")
    print("| method | mean ± std | per seed |")
    print("| --- | --- | --- |")
    for name, values in rows.items():
        print(f"| {name} | {_ms(values)} | {', '.join(f'{v:.2f}' for v in values)} |")
    gap = np.array(rows["pipeline: NA-REA on the GAE proxy (novelty supernet)"]) - np.array(
        rows["REA on the proxy (no neighbourhood)"])
    print(f"\nNA-REA - plain REA on the same proxy, paired by seed: {_ms(list(gap))} "
          f"(per seed: {', '.join(f'{g:+.2f}' for g in gap)})")
    nov = np.array(rows["pipeline: NA-REA on the GAE proxy (novelty supernet)"]) - np.array(
        rows["pipeline with the uniform sampler (NA-REA on its proxy)"])
    print(f"novelty - uniform sampler, paired by seed: {_ms(list(nov))}")
    print(limits_table(lim_res, seeds))
    print("\nPublished (weight sharing on NAS-Bench-201 CIFAR-10, GPU, full size):")
    for name, value in PUBLISHED:
        print(f"- {name}: {value}")
    print("\n## Final training (CIFAR-10 test images, reduced-size networks; see configs/pipeline-cifar10.yaml)\n")
    print("| model | test accuracy % (mean ± std) | per seed |")
    print("| --- | --- | --- |")
    for name, values in ens_rows.items():
        print(f"| {name} | {_ms(values)} | {', '.join(f'{v:.2f}' for v in values)} |")
    print(f"\nExported sub-ensembles: {'; '.join(exported)}")
    print("\n## Picks\n")
    for name, archs in picks.items():
        print(f"- {name}: " + "; ".join(archs))
    print("\n## Time\n")
    for s in seeds:
        print(f"- seed {s}: pipeline {pipe_res[s]['seconds'] / 60:.1f} min, uniform supernet+search "
              f"{uni_res[s]['seconds'] / 60:.1f} min, NASWOT {nas_res[s]['naswot_seconds'] / 60:.1f} min, "
              f"REA proxy {var_res[s]['rea_proxy']['seconds']:.0f} s, REA weights "
              f"{var_res[s]['rea_weights']['seconds']:.0f} s")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "picks": picks, "ensemble": ens_rows, "seeds": seeds,
                                         "wall_seconds": wall}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
