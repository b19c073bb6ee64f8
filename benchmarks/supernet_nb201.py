"""Single-path supernet on CIFAR-10: uniform vs novelty sampling, ranked against NAS-Bench-201.

The comparison is replicated: ``--repeats`` pairs of runs (default 2), pair ``r`` with seed
``--seed + r``. Within a pair both samplers share the seed (initial weights, batches in the
same order, proxy cells) and the number of steps; the runs are Ray tasks of one CPU, two
at a time. Each run trains a supernet on the 25k training half of CIFAR-10 (the
NAS-Bench-201 ``cifar10-valid`` split, real 32x32 images from
``../shared/data/images/cifar10-jpg.tar.gz``), runs the proxy-validation loop (50 random
cells evaluated with inherited weights every tenth of training from 40 % on and after the
last step; an ensemble of 5 GAE predictors fitted on their per-round standardised losses
at the end), then reports:

- Kendall tau between the supernet's validation accuracy (inherited weights, BatchNorm
  re-estimated per architecture) and the table's 200-epoch ``cifar10-valid_valid_acc``,
  over ``--archs`` random architectures, the same for every run, held out of every
  proxy loop;
- Kendall tau of the proxy predictor on the same (unseen) architectures;
- the trivial baselines on the same architectures: parameter count, number of 3x3 convs;
- 95 % bootstrap intervals of the taus and of the paired novelty - uniform difference per
  seed (resampling the ranked cells: they do not cover the run-to-run spread of training);
- over the seeds: each sampler's mean tau, the mean novelty - uniform gap, and the
  run-to-run spread of one run's tau, which is what the gap must be judged against;
- distinct architectures trained, training throughput (path-images per second) against
  training one fixed network of the same size (mean over random cells), and the share of
  the training time spent sampling.

Budget: the whole script is meant to finish within ``--budget-minutes`` (90) on 2 CPU
cores when the machine is otherwise idle. Unless ``--steps`` is given, it measures the
step time first and chooses the number of steps that fits the budget (printed). On a busy
machine the same budget buys fewer steps. ``--quick`` is a reduced version (about 15
minutes, one seed, fewer steps and architectures) for smoke tests; with small ``--steps``,
``--archs`` and ``--rank-images`` it checks the whole pipeline in a few minutes. Training and
evaluation use channels-last tensors where torch's CPU kernels prefer them (oneDNN).

With ``--json`` the file also holds, per run, the ranked architectures with every score
and the proxy loop's (architecture, validation loss) memory, so predictors can be refitted
on the supernet's losses without training again; the trained supernets' weights are saved
next to it (``<json stem>.<sampler>.seed<seed>.pt``).

Usage: python benchmarks/supernet_nb201.py [--quick] [--budget-minutes 90] [--steps N]
       [--repeats 2] [--archs 200] [--channels 8] [--cells 1] [--fair] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from evonas.spaces import SearchSpace
from evonas.supernet import Sampler
from evonas.supernet._samplers import UniformConfig

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("EVONAS_SHARED_DATA", ROOT.parent / "shared" / "data"))
DATA = SHARED / "images" / "cifar10-jpg.tar.gz"
TABLE = SHARED / "nb201" / "nb201.csv.gz"
SAMPLERS = ("uniform", "novelty")
GAE_FIT_RESERVE_S = 180.0  # fitting the GAE predictor once per run (pre-training included)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="reduced run (~15 min): fewer steps and architectures")
    p.add_argument("--budget-minutes", type=float, default=None, help="whole-script budget (default 90, quick 15)")
    p.add_argument("--steps", type=int, default=None, help="training steps per sampler (default: fit the budget)")
    p.add_argument("--archs", type=int, default=None, help="architectures ranked (default 200, quick 60)")
    p.add_argument("--rank-images", type=int, default=None,
                   help="validation images per ranked architecture (default 5000, quick 1000; the proxy rounds use 1000)")
    p.add_argument("--channels", type=int, default=8, help="supernet C (default 8)")
    p.add_argument("--cells", type=int, default=1, help="supernet N, cells per stage (default 1)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--fair", action="store_true", help="wrap both samplers in the fair sampler (FairNAS)")
    p.add_argument("--bn-recalibration", action=argparse.BooleanOptionalAction, default=True,
                   help="re-estimate BatchNorm statistics per architecture for the headline figure "
                        "(default on; the other mode is reported too)")
    p.add_argument("--seed", type=int, default=0, help="seed of the first pair; pair r uses seed + r")
    p.add_argument("--repeats", type=int, default=None,
                   help="pairs of runs (uniform, novelty), each pair with its own seed (default 2, quick 1)")
    p.add_argument("--jobs", type=int, default=2, help="samplers trained at once (Ray tasks of one CPU)")
    p.add_argument("--data", default=str(DATA), help="CIFAR-10 ImageFolder tar.gz")
    p.add_argument("--table", default=str(TABLE), help="NAS-Bench-201 table (nb201.csv.gz)")
    p.add_argument("--json", default=None, help="also write the results as JSON here")
    args = p.parse_args(argv)
    args.budget_minutes = args.budget_minutes or (15.0 if args.quick else 90.0)
    args.archs = args.archs or (60 if args.quick else 200)
    args.rank_images = args.rank_images or (1000 if args.quick else 5000)
    args.repeats = args.repeats if args.repeats is not None else (1 if args.quick else 2)
    if args.rank_images < 1 or args.archs < 2:
        p.error(f"--archs must be >= 2 and --rank-images >= 1; got {args.archs} and {args.rank_images}")
    if args.repeats < 1:
        p.error(f"--repeats must be >= 1; got {args.repeats}")
    return args


def run_config(args: argparse.Namespace, sampler: str, steps: int, seed: int | None = None) -> dict[str, Any]:
    """The raw config of one run (validated by SupernetRunConfig); ``seed`` defaults to
    ``--seed``."""
    base = {"name": sampler, "params": {"warmup_steps": max(50, steps // 20)} if sampler == "novelty" else {}}
    sampler_cfg = {"name": "fair", "params": {"base": base}} if args.fair else base
    return {
        "seed": args.seed if seed is None else seed,
        "dataset": {"name": "imagefolder", "root": args.data, "val_fraction": 0.5},
        "space": {"name": "nb201"},
        "supernet": {"name": "nb201", "params": {"channels": args.channels, "cells_per_stage": args.cells}},
        "sampler": sampler_cfg,
        "train": {
            "steps": steps, "batch_size": args.batch_size, "warmup_steps": min(200, steps // 10),
            "optim": {"lr": args.lr, "grad_clip": 5.0}, "compute": {"device": "cpu", "num_threads": 1},
        },
        "evaluation": {
            "bn_recalibration": args.bn_recalibration, "bn_batches": 2 if args.quick else 4,
            "val_images": 1000, "batch_size": 250,
        },
        "proxy": proxy_config(args, steps),
        "checkpoint_every": 10 ** 9,
        "progress": False,
    }


def proxy_config(args: argparse.Namespace, steps: int) -> dict[str, Any]:
    """The proxy loop of the benchmark: rounds every tenth of training from 40 % on (the
    supernet's early losses rank poorly), 50 cells each, plus a final round; the GAE
    predictor is an ensemble of 5 seeds. ``--quick``: 4 rounds of 25 cells from the start."""
    if args.quick:
        return {"every": max(1, steps // 4), "archs_per_round": 25, "final_round": True, "predictor": "gae", "ensemble": 5}
    return {
        "every": max(1, steps // 10), "start": max(1, (2 * steps) // 5), "archs_per_round": 50,
        "final_round": True, "predictor": "gae", "ensemble": 5,
    }


def proxy_evaluations(proxy: dict[str, Any], steps: int) -> int:
    """Architectures the proxy loop of ``proxy`` evaluates in a run of ``steps`` steps."""
    from evonas.config import from_dict
    from evonas.supernet import ProxyConfig

    pc = from_dict(ProxyConfig, proxy, "proxy")
    return (len(pc.round_steps(steps)) + int(pc.final_round)) * pc.archs_per_round


class _Cycle(Sampler):
    """A sampler proposing the given architectures in turn (paired timing)."""

    name = "cycle"
    Config = UniformConfig

    def __init__(self, space: SearchSpace, archs: list[tuple[int, ...]]) -> None:
        super().__init__(space, UniformConfig())
        self.archs, self.i = archs, 0

    def propose(self, rng: np.random.Generator) -> list[tuple[int, ...]]:
        arch = self.archs[self.i % len(self.archs)]
        self.i += 1
        return [arch]


def calibrate(args: argparse.Namespace, splits: Any) -> dict[str, float]:
    """Seconds per supernet step and per architecture evaluation, and the paired throughput
    of the supernet against training one fixed network of the same size.

    The comparison is paired: for each of 8 random cells, a few supernet steps on that cell
    and a few steps of its standalone network, on the same batches, interleaved so that
    both see the same machine load.
    """
    import torch
    from torch import nn

    from evonas.config import ComponentConfig, from_dict
    from evonas.models import build_network
    from evonas.supernet import SupernetRunConfig, SupernetTrainer

    torch.set_num_threads(1)
    config = from_dict(SupernetRunConfig, {**run_config(args, "uniform", 60), "proxy": {"every": 0}})
    trainer = SupernetTrainer(config, splits=splits)
    state = trainer.initial_state()
    for _ in range(10):  # warm-up: first passes allocate
        trainer._step(state)
    t0, s0 = state.train_seconds, state.step
    for _ in range(30):
        trainer._step(state)
    step_s = (state.train_seconds - t0) / (state.step - s0)
    evaluator = trainer.evaluator()
    space = trainer.space
    network = ComponentConfig("nb201", {"channels": args.channels, "cells_per_stage": args.cells})
    rng = np.random.default_rng(1)
    t = time.perf_counter()
    for _ in range(4):
        evaluator.evaluate(space.sample(rng))
    eval_s = (time.perf_counter() - t) / 4

    super_s, fixed_s, images = 0.0, 0.0, 0
    for _ in range(8):
        arch = space.sample(rng)
        state.sampler = _Cycle(space, [arch])
        net = build_network(network, space, arch, num_classes=10, in_channels=3)
        if trainer.channels_last:  # the same memory format as the supernet's
            net.to(memory_format=torch.channels_last)
        opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)
        for i in range(6):
            before = state.train_seconds
            trainer._step(state)
            x, y = splits.train.batch(rng.choice(len(splits.train), args.batch_size, replace=False))
            if trainer.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            start = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            nn.functional.cross_entropy(net(x), y).backward()
            nn.utils.clip_grad_norm_(net.parameters(), 5.0)
            opt.step()
            if i >= 2:  # the first steps of a new network allocate
                fixed_s += time.perf_counter() - start
                super_s += state.train_seconds - before
                images += args.batch_size
    paths = 5 if args.fair else 1
    return {
        "step_s": step_s * paths, "eval_s": eval_s,
        "fixed_img_s": images / fixed_s, "paired_super_img_s": images / super_s, "paired_ratio": fixed_s / super_s,
    }


def train_and_rank(
    raw: dict[str, Any], archs: list[tuple[int, ...]], table_path: str, rank_images: int = 5000,
    save: str | None = None,
) -> dict[str, Any]:
    """One run: train, then rank ``archs``, which the proxy loop is kept from evaluating
    (every run of the benchmark is ranked on the same cells).

    The ranking evaluates every architecture on ``rank_images`` validation images; the
    proxy rounds (and the other-BatchNorm-mode column) use the run's 1000.

    With ``save``, the trained supernet's ``state_dict`` is written there (torch.save), so
    other evaluation settings can be studied without training again.
    """
    import dataclasses

    import torch

    from evonas.config import from_dict
    from evonas.supernet import (
        PredictorEvaluator,
        SupernetRunConfig,
        SupernetTrainer,
        rank_architectures,
    )
    from evonas.supernet._rank import tau
    from evonas.tabular import NB201Table

    torch.set_num_threads(1)
    start = time.perf_counter()
    config = from_dict(SupernetRunConfig, raw)
    trainer = SupernetTrainer(config, holdout=archs)
    result = trainer.train()
    trained_s = time.perf_counter() - start
    if save:
        torch.save({k: v.detach().cpu() for k, v in trainer.model.state_dict().items()}, save)

    ranker = trainer.evaluator(dataclasses.replace(config.evaluation, val_images=rank_images))
    evals = [ranker.evaluate(a) for a in archs]
    acc = [e.metrics["val_acc"] for e in evals]
    # the other BatchNorm mode, to show what re-estimation does
    other = trainer.evaluator(dataclasses.replace(config.evaluation, bn_recalibration=not config.evaluation.bn_recalibration))
    other_acc = [other.evaluate(a).metrics["val_acc"] for a in archs]
    proxy = None
    if result.state.predictor is not None:
        predictor = PredictorEvaluator(result.state.predictor, trainer.space)
        proxy = [e.metrics["proxy_val_loss"] for e in predictor.evaluate_many(archs)]
    loss = [e.metrics["val_loss"] for e in evals]
    ranked = rank_architectures(archs, NB201Table.load(table_path), acc, proxy, supernet_loss=loss)
    ranked.taus["supernet_other_bn"] = tau(other_acc, ranked.truth)
    # Everything needed to study the ranking or refit the proxy predictor without retraining.
    ranked.scores["supernet_other_bn"] = list(other_acc)
    return {
        "sampler": raw["sampler"],
        "seed": config.seed,
        "summary": result.summary,
        "taus": ranked.taus,
        "ranked": {"archs": [list(a) for a in archs], "truth": ranked.truth, "scores": ranked.scores},
        "proxy_memory": [[list(a), float(v)] for a, v in result.state.memory.pairs()],
        "num_archs": len(archs),
        "mean_val_acc": float(np.mean(acc)),
        "train_minutes": trained_s / 60,
        "total_minutes": (time.perf_counter() - start) / 60,
    }


SCORES = (("supernet", "supernet"), ("supernet_loss", "-loss"), ("proxy", "proxy"))


def print_intervals(first: dict[str, Any], second: dict[str, Any], title: str, resamples: int = 2000) -> None:
    """Bootstrap intervals of every tau of two runs and of their paired difference.

    Both runs are ranked on the same cells, so the difference is resampled in pairs; the
    interval covers the choice of cells, not the run-to-run spread of training.
    """
    from evonas.supernet._rank import tau_ci

    truth = first["ranked"]["truth"]
    print(f"\n{title}: 95% bootstrap intervals over the {len(truth)} cells ({resamples} paired resamples)")
    names = [f"{r['sampler']['name']} seed {r['seed']}" for r in (first, second)]
    header = f"{'score':<9} {names[0]:>22} {names[1]:>22} {'difference':>24}"
    print(header)
    print("-" * len(header))
    for key, label in SCORES:
        if key not in first["ranked"]["scores"] or key not in second["ranked"]["scores"]:
            continue
        a, b = first["ranked"]["scores"][key], second["ranked"]["scores"][key]
        ta, tb = first["taus"][key], second["taus"][key]
        cells = []
        for score, t in ((a, ta), (b, tb)):
            low, high = tau_ci(truth, score, resamples=resamples)
            cells.append(f"{t:+.3f} [{low:+.2f}, {high:+.2f}]")
        low, high = tau_ci(truth, b, a, resamples=resamples)
        cells.append(f"{tb - ta:+.3f} [{low:+.2f}, {high:+.2f}]")
        print(f"{label:<9} {cells[0]:>22} {cells[1]:>22} {cells[2]:>24}")


def replicate_summary(results: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Mean taus over the seeds and the novelty - uniform gap against the run-to-run spread.

    For each score: the mean tau of each sampler over its seeds; the per-seed paired gaps
    (novelty - uniform, same seed) and their mean; the run-to-run standard deviation of one
    run's tau, pooled over both samplers' seeds (``sd``, needs two seeds or more); and the
    standard error of the mean gap, ``sd * sqrt(2 / seeds)``. That error treats the two
    runs of a pair as independent: runs sharing a seed are if anything positively
    correlated, so it is conservative. Novelty counts as worse only if the mean gap is
    below ``-2 * se``.
    """
    by = {name: {r["seed"]: r for r in results if r["sampler"]["name"] == name} for name in SAMPLERS}
    seeds = sorted(set(by[SAMPLERS[0]]) & set(by[SAMPLERS[1]]))
    out: dict[str, dict[str, float]] = {}
    for key, _ in SCORES:
        if not all(key in by[n][s]["taus"] for n in SAMPLERS for s in seeds):
            continue
        taus = {n: np.array([by[n][s]["taus"][key] for s in seeds]) for n in SAMPLERS}
        gaps = taus[SAMPLERS[1]] - taus[SAMPLERS[0]]
        row = {f"mean_{n}": float(taus[n].mean()) for n in SAMPLERS}
        row["mean_gap"] = float(gaps.mean())
        row.update({f"gap_seed{s}": float(g) for s, g in zip(seeds, gaps)})
        if len(seeds) >= 2:
            sd = float(np.sqrt(np.mean([taus[n].var(ddof=1) for n in SAMPLERS])))
            row["sd"], row["se_gap"] = sd, sd * math.sqrt(2.0 / len(seeds))
            row["novelty_worse"] = float(row["mean_gap"] < -2.0 * row["se_gap"])
        out[key] = row
    return out


def print_replicates(results: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Print :func:`replicate_summary` and, for each sampler, the seed-to-seed
    difference of its first two seeds with its cell-bootstrap interval (what the training
    run alone changes); returns the summary."""
    summary = replicate_summary(results)
    seeds = sorted({r["seed"] for r in results})
    print(f"\nover {len(seeds)} seeds ({', '.join(map(str, seeds))}): mean tau per sampler, novelty - uniform gap "
          "per seed and on average, run-to-run sd of one run's tau (pooled over both samplers), standard error "
          "of the mean gap")
    header = (f"{'score':<9} {'uniform':>8} {'novelty':>8} "
              + " ".join(f"{'gap s' + str(s):>8}" for s in seeds)
              + f" {'mean gap':>9} {'sd':>6} {'se':>6}  novelty worse (gap < -2 se)?")
    print(header)
    print("-" * len(header))
    for key, label in SCORES:
        row = summary.get(key)
        if row is None:
            continue
        gaps = " ".join(f"{row[f'gap_seed{s}']:>+8.3f}" for s in seeds)
        verdict = ("yes" if row["novelty_worse"] else "no") if "sd" in row else "(one seed: no spread)"
        spread = f"{row['sd']:>6.3f} {row['se_gap']:>6.3f}" if "sd" in row else f"{'-':>6} {'-':>6}"
        print(f"{label:<9} {row['mean_uniform']:>+8.3f} {row['mean_novelty']:>+8.3f} {gaps} "
              f"{row['mean_gap']:>+9.3f} {spread}  {verdict}")
    if len(seeds) >= 2:
        for name in SAMPLERS:
            runs = {r["seed"]: r for r in results if r["sampler"]["name"] == name}
            print_intervals(runs[seeds[0]], runs[seeds[1]], f"{name} against itself, seed {seeds[1]} - seed {seeds[0]}")
    return summary


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    script_start = time.perf_counter()
    for path in (args.data, args.table):
        if not Path(path).exists():
            print(f"missing {path}; see ../shared/data/README.md", file=sys.stderr)
            return 2
    from evonas.data import DatasetConfig
    from evonas.executors._ray import init_local_ray, ray

    dataset = DatasetConfig(name="imagefolder", root=args.data, val_fraction=0.5)
    splits = dataset.load()  # decodes the JPEGs into the cache on the first run
    print(f"CIFAR-10: {len(splits.train)} training / {len(splits.val)} validation images (32x32)", flush=True)
    cal = calibrate(args, splits)
    elapsed = time.perf_counter() - script_start
    nominal = 30000  # the number of proxy evaluations hardly depends on the number of steps
    # an evaluation is a BatchNorm pass over bn_batches x 250 images and a pass over the
    # validation images: calibrated with 1000 of each, so a ranked one costs about
    # (1000 + rank_images) / 2000 as much again
    rank_cost = (1000 + args.rank_images) / 2000
    per_run_eval_s = cal["eval_s"] * (
        args.archs * (1 + rank_cost) + proxy_evaluations(proxy_config(args, nominal), nominal)
    )
    per_run_eval_s += GAE_FIT_RESERVE_S
    runs = [(args.seed + r, name) for r in range(args.repeats) for name in SAMPLERS]
    parallel = max(1, min(args.jobs, len(runs)))
    waves = math.ceil(len(runs) / parallel)
    budget_s = args.budget_minutes * 60 - elapsed - 60  # a minute for Ray start-up and the report
    steps = args.steps or max(100, int(0.85 * (budget_s / waves - per_run_eval_s) / cal["step_s"]))
    print(
        f"calibration: {cal['step_s']:.3f} s/step, {cal['eval_s']:.2f} s/architecture evaluation; "
        f"paired on the same cells and batches: supernet {cal['paired_super_img_s']:.0f} img/s, fixed network "
        f"{cal['fixed_img_s']:.0f} img/s ({cal['paired_ratio']:.2f}x) -> {len(runs)} runs ({args.repeats} seeds x "
        f"{len(SAMPLERS)} samplers, {parallel} at a time) of {steps} steps "
        f"({steps * args.batch_size / len(splits.train):.1f} epochs), budget {args.budget_minutes:.0f} min",
        flush=True,
    )
    # every run is ranked on the same cells, which its proxy loop is kept from evaluating
    from evonas.spaces import get_space
    from evonas.supernet._rank import unseen_architectures

    cells = unseen_architectures(get_space("nb201"), set(), args.seed, args.archs)

    init_local_ray(num_cpus=max(1, args.jobs))
    try:
        task = ray.remote(train_and_rank).options(num_cpus=1, max_retries=0)
        refs = []
        for seed, name in runs:  # submitted pair by pair: the first pair runs first
            save = str(Path(args.json).with_suffix(f".{name}.seed{seed}.pt")) if args.json else None
            refs.append(task.remote(run_config(args, name, steps, seed), cells, args.table, args.rank_images, save))
        results = ray.get(refs)
    finally:
        ray.shutdown()

    print()
    print(f"Single-path supernet C={args.channels}, N={args.cells}, {steps} steps of {args.batch_size} "
          f"({'fair, ' if args.fair else ''}seeds {', '.join(str(args.seed + r) for r in range(args.repeats))}; "
          "uniform and novelty share each seed: initial weights, batches and proxy cells); Kendall tau vs "
          f"NAS-Bench-201 cifar10-valid_valid_acc (200 epochs) over the same {len(cells)} random architectures "
          "for every run, which no proxy loop evaluated")
    other = "BN re-est." if not args.bn_recalibration else "no re-est."
    print(f"columns: supernet = val_acc on {args.rank_images} validation images with inherited weights "
          f"({'with' if args.bn_recalibration else 'without'} BatchNorm re-estimation); -loss = the same by "
          f"validation loss; {other} = val_acc in the other BatchNorm mode (1000 images); proxy = GAE predictor "
          "ensemble trained on the proxy loop's losses")
    header = (f"{'sampler':<9} {'seed':>4} {'supernet':>8} {'-loss':>7} {other:>10} {'proxy':>7} {'params':>7} "
              f"{'#3x3':>7} {'distinct':>9} {'img/s':>7} {'sampling':>9} {'minutes':>8}")
    print(header)
    print("-" * len(header))
    for (seed, name), r in sorted(zip(runs, results), key=lambda item: (SAMPLERS.index(item[0][1]), item[0][0])):
        s, t = r["summary"], r["taus"]
        print(
            f"{name:<9} {seed:>4d} {t['supernet']:>+8.3f} {t['supernet_loss']:>+7.3f} {t['supernet_other_bn']:>+10.3f} "
            f"{t.get('proxy', float('nan')):>+7.3f} {t['params']:>+7.3f} "
            f"{t['conv3x3']:>+7.3f} {s['distinct_archs']:>9d} {s['throughput_img_s']:>7.0f} "
            f"{100 * s['sampling_overhead']:>8.2f}% "
            f"{r['total_minutes']:>8.1f}"
        )
    for i in range(0, len(results), len(SAMPLERS)):
        print_intervals(results[i], results[i + 1], f"novelty - uniform, seed {runs[i][0]}")
    summary = print_replicates(results)
    total = (time.perf_counter() - script_start) / 60
    print(f"\nthroughput against one fixed network of the same size (paired: same cells, same batches, "
          f"interleaved): supernet {cal['paired_super_img_s']:.0f} img/s vs fixed {cal['fixed_img_s']:.0f} img/s "
          f"= {cal['paired_ratio']:.2f}x; img/s above = path-images per second during the runs (two runs "
          f"in parallel); whole script {total:.1f} min")
    print("targets: supernet tau >= 0.40; proxy above the params baseline; novelty not worse than uniform; "
          "sampling overhead <= 10%")
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"args": vars(args), "steps": steps, "calibration": cal, "results": results, "replicates": summary,
             "minutes": total},
            indent=2, default=float,
        ))
    return 0


if __name__ == "__main__":
    sys.exit(main())
