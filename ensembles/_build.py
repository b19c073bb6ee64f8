"""Building an ensemble in a run directory: train candidates, prune, evaluate, report.

:func:`build_ensemble` validates the config, resolves the candidate architectures (a
list, or the best of a search run), checks the data and every pruner's parameters, and
only then creates the run directory. Members train as independent evaluator tasks on the
configured executor (serial in-process, or Ray tasks with CPUs or GPUs); the driver
saves each one as it arrives. The pool is then pruned with every configured pruner on
validation data and evaluated on the held-out test split.

Run directory::

    RUN_DIR/
      config.yaml  meta.yaml  log.jsonl       resolved config, versions and seed, events
      plan.yaml                               candidates (name, arch, seed, source), data sizes
      pool/labels.npz                         validation and test labels
      pool/members/<name>/                    member.yaml, logits.npz, model.pt (state_dict)
      pool/pool.yaml                          member order, once every member is trained
      ensembles.csv members.csv curves.csv diversity.npz
      accuracy_vs_size.png diversity.png report.md
      result.json                             summary; "complete" when every member trained

A member directory appears by an atomic rename once its checkpoint and logits are fully
written, so after an interruption (Ctrl-C, ``kill -9``, a lost node)
:func:`resume_ensemble` trains exactly the members that are missing.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import io
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ensembles._candidates import Candidate, resolve_candidates
from ensembles._config import EnsembleConfig, PrunerSpec, load_ensemble_config, resolve_ensemble_config
from ensembles._evaluate import EnsembleEvaluation, evaluate_pool
from ensembles._members import CandidatePool, Member
from ensembles._pruners import prune
from ensembles._report import format_table, write_ensemble_report
from ensembles._training import CHECKPOINT_FILE, MemberTrainer, member_from_evaluation
from evonas.config import from_dict, to_dict
from evonas.errors import ConfigError, DataError, RunDirError
from evonas.executors import EXECUTORS, Executor, Request
from evonas.runs import RESULT, RunDir, atomic_write_bytes
from evonas.search import evaluation_seed
from evonas.spaces import NB201Space

KIND = "ensemble"
PLAN = "plan.yaml"
POOL_DIR = "pool"
_PLAN_FORMAT = "evonas-ensemble-plan/1"
_SPACE = NB201Space()


@dataclasses.dataclass(frozen=True, eq=False)
class BuildResult:
    """What an ensemble build produced.

    Attributes:
        run_dir: The run directory.
        pool: The trained members with their labels (reloadable with
            ``CandidatePool.load(run_dir / "pool")``).
        evaluation: Pruned ensembles and baselines on the test split.
        trained: Members trained by this call.
        reused: Members loaded from the run directory instead of being trained.
        failed: Members whose training failed, with the reason.
    """

    run_dir: Path
    pool: CandidatePool
    evaluation: EnsembleEvaluation
    trained: tuple[str, ...] = ()
    reused: tuple[str, ...] = ()
    failed: dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def complete(self) -> bool:
        """Every candidate was trained."""
        return not self.failed


# ------------------------------------------------------------------------ validation
def check_pruners(pruners: Sequence[PrunerSpec], num_members: int) -> None:
    """Run every pruner once on dummy predictions of ``num_members`` members.

    This checks parameter values that depend on the number of candidates (``size``
    must not exceed it) before hours of training, with the pruners' own messages.

    Raises:
        ConfigError: A parameter value is invalid for this many candidates.
    """
    probs = np.full((num_members, 2, 2), 0.5)
    labels = np.array([0, 1])
    for spec in pruners:
        try:
            prune(spec.name, probs, labels, np.random.default_rng(0), **spec.params)
        except ConfigError as exc:
            raise ConfigError(f"pruner {spec.row!r} with {num_members} candidates: {exc}") from None


def _member_names(count: int) -> list[str]:
    width = max(2, len(str(count - 1)))
    return [f"m{i:0{width}d}" for i in range(count)]


def _default_run_dir(stem: str) -> Path:
    return Path("runs") / f"{stem}-{_dt.datetime.now().strftime('%Y%m%d-%H%M%S')}"


# ----------------------------------------------------------------------------- plan
def _write_plan(run: RunDir, candidates: list[Candidate], seed: int, data: dict[str, Any]) -> list[dict[str, Any]]:
    names = _member_names(len(candidates))
    entries = [
        {
            "name": name,
            "arch": c.arch_str,
            "seed": evaluation_seed(seed, i),
            **({"source": c.source} if c.source else {}),
        }
        for i, (name, c) in enumerate(zip(names, candidates))
    ]
    plan = {"format": _PLAN_FORMAT, "data": data, "candidates": entries}
    atomic_write_bytes(run.path / PLAN, yaml.safe_dump(plan, sort_keys=False).encode())
    return entries


def _read_plan(run: RunDir) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    path = run.path / PLAN
    try:
        plan = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        plan = None
    if not isinstance(plan, dict) or plan.get("format") != _PLAN_FORMAT or not plan.get("candidates"):
        raise RunDirError(f"{str(path)!r} is missing or malformed; the ensemble run cannot be resumed")
    for entry in plan["candidates"]:
        entry["arch_tuple"] = _SPACE.parse(entry["arch"])
    return plan["candidates"], plan.get("data", {})


# -------------------------------------------------------------------------- members
def _load_saved(directory: Path, entry: dict[str, Any]) -> Member | None:
    """The member saved in ``directory`` if it is complete and the one planned, else None."""
    if not directory.is_dir():
        return None
    try:
        member = Member.load(directory)
    except DataError:
        return None
    if member.arch != entry["arch_tuple"] or member.metadata.get("seed") != entry["seed"]:
        return None
    if not (directory / CHECKPOINT_FILE).is_file():
        return None
    return member


def _save_member(directory: Path, member: Member, state_dict: bytes) -> None:
    """Write a member's files into a fresh temporary directory, then rename it into place."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        atomic_write_bytes(tmp / CHECKPOINT_FILE, state_dict)
        member.save(tmp, overwrite=True)
        if directory.exists():
            # An incomplete or foreign leftover (complete ones were reused, not retrained).
            shutil.rmtree(directory)
        os.rename(tmp, directory)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _labels(run: RunDir) -> tuple[np.ndarray, np.ndarray]:
    path = run.path / POOL_DIR / "labels.npz"
    try:
        with np.load(path, allow_pickle=False) as data:
            return data["val"], data["test"]
    except (OSError, KeyError, ValueError) as exc:
        raise RunDirError(f"cannot read the labels {str(path)!r}: {exc}") from None


def _train_members(
    run: RunDir,
    config: EnsembleConfig,
    entries: list[dict[str, Any]],
    executor: Executor,
    data: dict[str, Any],
    progress: bool,
) -> tuple[dict[int, Member], list[str], list[str], dict[str, str]]:
    val_labels, test_labels = _labels(run)
    members_dir = run.path / POOL_DIR / "members"
    done: dict[int, Member] = {}
    todo: list[int] = []
    for i, entry in enumerate(entries):
        saved = _load_saved(members_dir / entry["name"], entry)
        if saved is None:
            todo.append(i)
        else:
            done[i] = saved
    reused = [entries[i]["name"] for i in sorted(done)]
    trained: list[str] = []
    failed: dict[str, str] = {}
    if not todo:
        return done, trained, reused, failed
    network = {
        "channels": config.channels,
        "cells_per_stage": config.cells_per_stage,
        "num_classes": int(data["num_classes"]),
        "in_channels": int(data["in_channels"]),
    }
    run.append({"type": "train", "members": [entries[i]["name"] for i in todo], "reused": reused})
    trainer = MemberTrainer(config.dataset, config.train, config.channels, config.cells_per_stage)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(entries), initial=len(done), desc="train members", unit="member")
    executor.start(trainer)
    try:
        for i in todo:
            executor.submit(Request(eval_id=i, arch=entries[i]["arch_tuple"], seed=entries[i]["seed"]))
        while executor.num_pending:
            for request, evaluation in executor.wait():
                i = request.eval_id
                entry = entries[i]
                try:
                    member = member_from_evaluation(
                        entry["name"], entry["arch_tuple"], entry["seed"], evaluation, val_labels, test_labels, network
                    )
                except DataError as exc:
                    failed[entry["name"]] = str(exc)
                    run.append({"type": "member_failed", "name": entry["name"], "arch": entry["arch"],
                                "error": str(exc), "cost": float(evaluation.cost)})
                    continue
                _save_member(members_dir / entry["name"], member, evaluation.info["state_dict"])
                run.append({"type": "member", "name": entry["name"], "arch": entry["arch"], "seed": entry["seed"],
                            "metrics": member.metadata["metrics"], "cost": float(evaluation.cost)})
                done[i] = member
                trained.append(entry["name"])
                if bar is not None:
                    bar.set_postfix(last=f"{entry['name']} val {evaluation.metrics['val_acc']:.1f}%", refresh=False)
                    bar.update(1)
    finally:
        executor.close()
        if bar is not None:
            bar.close()
    return done, trained, reused, failed


# ------------------------------------------------------------------------ pipeline
def _details(config: EnsembleConfig, data: dict[str, Any], entries: list[dict[str, Any]]) -> list[str]:
    ds = config.dataset
    source = (
        f"the top {len(entries)} distinct architectures of search run `{config.candidates.search_run}`"
        if config.candidates.search_run is not None
        else f"{len(entries)} listed architectures"
    )
    return [
        f"candidates: {source}",
        f"data: `{ds.name}`, {data.get('num_train')} train / {data.get('num_val')} validation / "
        f"{data.get('num_test')} test images, {data.get('num_classes')} classes (split seed {ds.seed})",
        f"network: NAS-Bench-201, C={config.channels}, N={config.cells_per_stage}; training: "
        f"{config.train.epochs} epochs, batch {config.train.batch_size}, lr {config.train.lr}",
        f"executor: `{config.executor.name}` {config.executor.params or ''}; seed {config.seed}",
        "pruners: " + ", ".join(f"`{p.row}` {p.params or ''}" for p in config.pruners),
    ]


def _clamped(pruners: Sequence[PrunerSpec], num_members: int) -> tuple[list[PrunerSpec], list[str]]:
    """Pruners whose ``size`` exceeds the members actually trained, clamped (with notes)."""
    out, notes = [], []
    for p in pruners:
        size = p.params.get("size")
        if isinstance(size, int) and size > num_members:
            notes.append(f"pruner {p.row!r}: size {size} clamped to the {num_members} members trained")
            p = dataclasses.replace(p, params={**p.params, "size": num_members})
        out.append(p)
    return out, notes


def _execute(
    run: RunDir,
    config: EnsembleConfig,
    entries: list[dict[str, Any]],
    data: dict[str, Any],
    executor: Executor,
    progress: bool,
) -> BuildResult:
    done, trained, reused, failed = _train_members(run, config, entries, executor, data, progress)
    if not done:
        first = next(iter(failed.items()))
        raise DataError(f"no member could be trained ({len(failed)} failed); first: {first[0]}: {first[1]}")
    val_labels, test_labels = _labels(run)
    pool = CandidatePool(tuple(done[i] for i in sorted(done)), val_labels, test_labels)
    pool.save(run.path / POOL_DIR, overwrite=True, save_members=False)
    pruners, notes = _clamped(config.pruners, len(pool))
    evaluation = evaluate_pool(pool, pruners, seed=config.seed, diversity=config.diversity, ece_bins=config.ece_bins)
    notes += [f"member {name!r} failed to train: {reason}" for name, reason in failed.items()]
    if failed:
        notes.append("the build is incomplete: resume it to retry the failed members")
    evaluation = dataclasses.replace(evaluation, notes=evaluation.notes + tuple(notes))
    write_ensemble_report(run.path, evaluation, title=f"Ensemble build: {run.path.name}", details=_details(config, data, entries))
    run.write_json(
        RESULT,
        {
            "complete": not failed,
            "members": list(pool.names),
            "failed": failed,
            "rows": [r.to_dict() for r in evaluation.rows],
            "saep_target": evaluation.saep_target(),
        },
    )
    run.append({"type": "evaluated", "complete": not failed, "members": len(pool)})
    return BuildResult(run.path, pool, evaluation, tuple(trained), tuple(reused), failed)


def build_ensemble(
    config: EnsembleConfig | str | os.PathLike[str],
    run_dir: str | os.PathLike[str] | None = None,
    *,
    overrides: Sequence[str] = (),
    progress: bool = True,
) -> BuildResult:
    """Train the candidates of ``config`` from scratch, prune them and evaluate the ensembles.

    Everything is validated before the run directory is created - config keys and values,
    architecture strings, the search run, the data, every pruner's parameters against the
    number of candidates - so bad input leaves nothing behind. An existing non-empty run
    directory is never touched (resume it with :func:`resume_ensemble`).

    Args:
        config: An :class:`EnsembleConfig`, or the path of its YAML file.
        run_dir: Where to create the run directory (default: the config's ``run_dir``,
            else ``runs/<config name>-<time>``).
        overrides: ``key.sub=value`` overrides (only with a path).
        progress: Show a progress bar over the members.

    Returns:
        The trained pool and its evaluation; the run directory holds the report.

    Raises:
        ConfigError / UnknownChoiceError / ArchError: A bad config value or arch string.
        RunDirError: The run directory exists and is not empty, or the search run is missing.
        DataError: The data cannot be loaded, or no member could be trained.
    """
    if isinstance(config, EnsembleConfig):
        if overrides:
            raise ConfigError("overrides apply to a config file; pass a path, or change the EnsembleConfig itself")
        stem = "ensemble"
    else:
        stem = Path(config).stem
        config = load_ensemble_config(config, overrides)
    resolved, typed_executor = resolve_ensemble_config(config)
    candidates = resolve_candidates(resolved.candidates)
    check_pruners(resolved.pruners, len(candidates))
    executor = EXECUTORS.get(resolved.executor.name).build(typed_executor)
    splits = resolved.dataset.load()
    val_labels = splits.val.labels.numpy().astype(np.int64)  # type: ignore[attr-defined]
    test_labels = splits.test.labels.numpy().astype(np.int64)  # type: ignore[attr-defined]
    if val_labels.size == 0 or test_labels.size == 0:
        raise ConfigError(
            f"dataset {resolved.dataset.name!r} gives {val_labels.size} validation and {test_labels.size} test "
            "images; both splits must be non-empty"
        )
    data = {
        "num_train": len(splits.train),
        "num_val": int(val_labels.size),
        "num_test": int(test_labels.size),
        "num_classes": int(splits.num_classes),
        "in_channels": int(splits.in_channels),
    }
    if run_dir is not None:
        path = Path(run_dir)
    elif resolved.run_dir is not None:
        path = Path(resolved.run_dir)
    else:
        path = _default_run_dir(stem)
    run = RunDir.create(path, to_dict(resolved), resolved.seed, KIND)
    try:
        entries = _write_plan(run, candidates, resolved.seed, data)
        for entry in entries:
            entry["arch_tuple"] = _SPACE.parse(entry["arch"])
        (run.path / POOL_DIR).mkdir()
        buffer = io.BytesIO()
        np.savez(buffer, val=val_labels, test=test_labels)
        atomic_write_bytes(run.path / POOL_DIR / "labels.npz", buffer.getvalue())
        return _execute(run, resolved, entries, data, executor, progress)
    finally:
        run.close()


def resume_ensemble(run_dir: str | os.PathLike[str], *, progress: bool = True) -> BuildResult:
    """Continue an interrupted ensemble build: train only the members not saved yet.

    A complete build is not re-run: its saved pool is loaded and evaluated again in
    memory, without retraining and without rewriting any file.

    Args:
        run_dir: A run directory written by :func:`build_ensemble`.
        progress: Show a progress bar over the members.

    Raises:
        RunDirError: ``run_dir`` is missing, not an ensemble run, in use, or damaged.
    """
    run = RunDir.open(run_dir, kind=KIND)
    run.lock()
    try:
        config = from_dict(EnsembleConfig, run.config)
        resolved, typed_executor = resolve_ensemble_config(config)
        entries, data = _read_plan(run)
        result = _read_result(run)
        if result is not None and result.get("complete"):
            pool = CandidatePool.load(run.path / POOL_DIR)
            evaluation = evaluate_pool(
                pool, resolved.pruners, seed=resolved.seed, diversity=resolved.diversity, ece_bins=resolved.ece_bins
            )
            return BuildResult(run.path, pool, evaluation, (), tuple(pool.names), {})
        run.append({"type": "resume"})
        executor = EXECUTORS.get(resolved.executor.name).build(typed_executor)
        return _execute(run, resolved, entries, data, executor, progress)
    finally:
        run.close()


def _read_result(run: RunDir) -> dict[str, Any] | None:
    path = run.path / RESULT
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def format_build_summary(result: BuildResult) -> str:
    """A few lines for the terminal: the run directory, the table and the SAEP target."""
    lines = [f"run directory: {result.run_dir}"]
    lines.append(
        f"members: {len(result.pool)} ({len(result.trained)} trained now, {len(result.reused)} reused"
        + (f", {len(result.failed)} failed" if result.failed else "")
        + ")"
    )
    lines.append(format_table(result.evaluation))
    for label, checks in result.evaluation.saep_target().items():
        lines.append(
            f"SAEP target {label}: {'met' if checks['met'] else 'missed'} "
            f"(<= half: {checks['half']}, within 0.2: {checks['near_full']}, beats single: {checks['beats_single']})"
        )
    return "\n".join(lines)
