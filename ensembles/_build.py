"""The ``ensemble`` run kind: train candidates in a run directory, prune, evaluate, report.

``evonas ensemble build --config CONFIG`` (or :func:`build_ensemble`) goes through the one
run lifecycle (:mod:`evonas.runs`). :meth:`EnsembleRun.prepare` builds the space, checks
the decoder against it, resolves the candidate architectures (a list, or the best of a
search run), loads the data and checks every pruner's parameters against the number of
candidates - all before the run directory exists, so bad input leaves nothing behind.
:meth:`EnsembleRun.execute` then trains the members as independent tasks on the
configured executor (serial in-process, or Ray tasks with CPUs or GPUs) and saves each
one as it arrives; the pool is pruned with every configured pruner on validation data
and evaluated on the held-out test split.

Run directory::

    RUN_DIR/
      config.yaml  meta.yaml  log.jsonl       resolved config, versions and seed, events
      plan.yaml                               candidates (name, arch, seed, source), data sizes
      pool/labels.npz                         validation and test labels
      pool/members/<name>/                    member.yaml, logits.npz, model.pt (state_dict)
      pool/pool.yaml                          member order of the trained members
      ensembles.csv members.csv curves.csv diversity.npz
      accuracy_vs_size.png diversity.png report.md
      result.json                             summary; "complete" when every member trained

A member directory appears by an atomic rename once its checkpoint and logits are fully
written, so after an interruption (Ctrl-C, ``kill -9``, a lost node) ``--resume RUN_DIR``
trains exactly the members that are missing, and a build in which members failed retries
them. A complete build is not re-run by a plain ``--resume``; overriding a key that does
not change the members - ``executor`` (e.g. to give members more memory or time),
``pruners``, ``diversity`` or ``ece_bins`` - continues it: the saved pool is pruned and
evaluated again. ``evonas report RUN_DIR`` regenerates the report, tables and
figures from the saved members.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from collections.abc import Sequence, Sized
from pathlib import Path
from typing import Any, cast

import numpy as np
import yaml

from ensembles._candidates import Candidate, resolve_candidates
from ensembles._config import EnsembleConfig, PrunerSpec
from ensembles._evaluate import EnsembleEvaluation, EnsembleRow, evaluate_pool
from ensembles._members import CandidatePool, Member
from ensembles._pruners import prune
from ensembles._report import format_rows, write_ensemble_report
from ensembles._training import CHECKPOINT_FILE, MemberFailure, MemberResult, MemberTrainer, member_from_result
from evonas._files import make_temp_dir, write_npz
from evonas.config import MAX_COUNT, MAX_SEED, ComponentConfig, check_int, from_dict
from evonas.data import DataSplits, ImageTensorDataset, cached_splits
from evonas.errors import ArchError, ConfigError, DataError, RunDirError
from evonas.executors import Executor, Outcome, Task
from evonas.models import check_decoder
from evonas.runs import (
    RESULT,
    RunDir,
    RunKind,
    RunResult,
    atomic_write_bytes,
    declare_records,
    resume_run,
    start_run,
)
from evonas.search import evaluation_seed
from evonas.spaces import Arch, SearchSpace

PLAN = "plan.yaml"
POOL_DIR = "pool"
LABELS_FILE = "labels.npz"
_PLAN_FORMAT = "evonas-ensemble-plan/2"


# ------------------------------------------------------------------------------ values
@dataclasses.dataclass(frozen=True)
class DataSizes:
    """What the build's data looks like (recorded in ``plan.yaml``)."""

    num_train: int
    num_val: int
    num_test: int
    num_classes: int
    in_channels: int

    @classmethod
    def from_dict(cls, data: Any, where: str) -> DataSizes:
        fields = [f.name for f in dataclasses.fields(cls)]
        lowest = {"num_train": 0, "num_val": 1, "num_test": 1, "num_classes": 1, "in_channels": 1}
        if not isinstance(data, dict) or any(k not in data for k in fields):
            raise RunDirError(f"{where} has a malformed 'data' entry: {data!r}; expected the keys {', '.join(fields)}")
        for k in fields:
            check_int(data[k], f"data.{k}", lowest[k], MAX_COUNT, owner=where, error=RunDirError)
        return cls(**{k: int(data[k]) for k in fields})


@dataclasses.dataclass(frozen=True)
class PlannedMember:
    """One candidate of the plan: its member name, architecture, training seed and origin."""

    name: str
    arch: Arch
    seed: int
    source: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True, eq=False)
class PreparedBuild:
    """Everything :meth:`EnsembleRun.prepare` checked and built.

    Attributes:
        space: The search space.
        candidates: The architectures to train, in member order.
        val_labels: Validation labels of the data. Shapes: ``(N_val,)``.
        test_labels: Test labels. Shapes: ``(N_test,)``.
        data: Sizes of the splits, classes and channels.
        trainer: The worker that trains one member.
        executor: Where the members train.
    """

    space: SearchSpace
    candidates: list[Candidate]
    val_labels: np.ndarray
    test_labels: np.ndarray
    data: DataSizes
    trainer: MemberTrainer
    executor: Executor


# -------------------------------------------------------------------------- validation
def check_pruners(pruners: Sequence[PrunerSpec], num_members: int) -> None:
    """Run every pruner once on dummy predictions of ``num_members`` members.

    This checks parameter values that depend on the number of candidates (``size``
    must not exceed it) before any member trains, with the pruners' own messages.

    Raises:
        ConfigError: A parameter value is invalid for this many candidates.
    """
    probs = np.full((num_members, 2, 2), 0.5)
    labels = np.array([0, 1])
    for spec in pruners:
        try:
            prune(spec.name, probs, labels, np.random.default_rng(0), **spec.params)
        except ConfigError as exc:
            raise ConfigError(f"pruners: row {spec.row!r} with {num_members} candidates: {exc}") from None


def _split_labels(splits: DataSplits, split: str) -> np.ndarray:
    dataset = splits.val if split == "val" else splits.test
    if isinstance(dataset, ImageTensorDataset):
        return dataset.labels.numpy().astype(np.int64)
    # Any other map-style dataset: its labels in loader order, as the trainer sees them.
    batches = [y.numpy() for _, y in splits.loader("val" if split == "val" else "test", 1024, shuffle=False)]
    return np.concatenate(batches).astype(np.int64) if batches else np.zeros(0, dtype=np.int64)


def prepare_build(config: EnsembleConfig) -> PreparedBuild:
    """Build and check everything an ensemble build needs (see :meth:`EnsembleRun.prepare`).

    Raises:
        ConfigError / CapabilityError / UnknownChoiceError / ArchError: A bad config value,
            a decoder of another space, or a malformed architecture string.
        RunDirError: The search run of the candidates is missing.
        DataError: The data cannot be loaded.
    """
    space: SearchSpace = config.space.build("space")
    check_decoder(config.network, space)
    candidates = resolve_candidates(config.candidates, space)
    check_pruners(config.pruners, len(candidates))
    splits = cached_splits(config.dataset)
    val_labels, test_labels = _split_labels(splits, "val"), _split_labels(splits, "test")
    if val_labels.size == 0 or test_labels.size == 0:
        raise ConfigError(
            f"dataset {config.dataset.name!r} gives {val_labels.size} validation and {test_labels.size} test "
            "images; both splits must be non-empty"
        )
    data = DataSizes(
        num_train=len(cast(Sized, splits.train)),  # torch's Dataset declares no __len__; the splits' have one
        num_val=int(val_labels.size),
        num_test=int(test_labels.size),
        num_classes=int(splits.num_classes),
        in_channels=int(splits.in_channels),
    )
    trainer = MemberTrainer(space, config.dataset, config.train, config.network)
    executor: Executor = config.executor.build("executor")
    return PreparedBuild(space, candidates, val_labels, test_labels, data, trainer, executor)


# -------------------------------------------------------------------------------- plan
def _member_names(count: int) -> list[str]:
    width = max(2, len(str(count - 1)))
    return [f"m{i:0{width}d}" for i in range(count)]


def _write_plan(run: RunDir, prepared: PreparedBuild, seed: int) -> list[PlannedMember]:
    names = _member_names(len(prepared.candidates))
    plan = [
        PlannedMember(name, c.arch, evaluation_seed(seed, i), dict(c.source))
        for i, (name, c) in enumerate(zip(names, prepared.candidates))
    ]
    entries = [
        {"name": p.name, "arch": prepared.space.format(p.arch), "seed": p.seed, **({"source": p.source} if p.source else {})}
        for p in plan
    ]
    record = {"format": _PLAN_FORMAT, "data": dataclasses.asdict(prepared.data), "candidates": entries}
    atomic_write_bytes(run.path / PLAN, yaml.safe_dump(record, sort_keys=False).encode())
    return plan


def _read_plan(run: RunDir, space: SearchSpace) -> tuple[list[PlannedMember], DataSizes]:
    """The plan :func:`_write_plan` wrote, every entry checked (names are the member
    folders: only the names the build gives are accepted)."""
    path = run.path / PLAN
    where = repr(str(path))
    record = run.read_yaml(PLAN)
    candidates = record.get("candidates")
    if record.get("format") != _PLAN_FORMAT or not isinstance(candidates, list) or not candidates:
        raise RunDirError(
            f"{where} is not an {_PLAN_FORMAT!r} file with a list of candidates; the ensemble run cannot be "
            "resumed or reported"
        )
    plan = []
    for i, (entry, name) in enumerate(zip(candidates, _member_names(len(candidates)))):
        if not isinstance(entry, dict) or entry.get("name") != name:
            got = entry.get("name") if isinstance(entry, dict) else entry
            raise RunDirError(f"{where}: candidate {i} must be a mapping named {name!r}; got {got!r:.80}")
        source = entry.get("source") or {}
        if not isinstance(source, dict):
            raise RunDirError(f"{where}: candidate {i} has source {source!r:.80}; expected a mapping")
        text = entry.get("arch")
        try:
            if not isinstance(text, str):
                raise ArchError(f"expected an architecture string; got {text!r:.80}")
            arch = space.parse(text)
        except ArchError as exc:
            raise RunDirError(f"{where}: candidate {i} has a malformed architecture ({exc})") from None
        seed = check_int(entry.get("seed"), f"candidates[{i}].seed", 0, MAX_SEED, owner=where, error=RunDirError)
        plan.append(PlannedMember(name, arch, int(cast(int, seed)), dict(source)))
    return plan, DataSizes.from_dict(record.get("data"), where)


def _write_labels(run: RunDir, val: np.ndarray, test: np.ndarray) -> None:
    write_npz(run.subdir(POOL_DIR) / LABELS_FILE, {"val": val, "test": test})


def _read_labels(run: RunDir) -> tuple[np.ndarray, np.ndarray]:
    path = run.path / POOL_DIR / LABELS_FILE
    try:
        with np.load(path, allow_pickle=False) as data:
            return np.asarray(data["val"]), np.asarray(data["test"])
    except (OSError, KeyError, ValueError) as exc:
        raise RunDirError(f"cannot read the labels {str(path)!r}: {exc}") from None


# ----------------------------------------------------------------------------- members
def _load_saved(directory: Path, planned: PlannedMember) -> Member | None:
    """The member saved in ``directory`` if it is complete and the one planned, else None."""
    if not directory.is_dir() or not (directory / CHECKPOINT_FILE).is_file():
        return None
    try:
        member = Member.load(directory)
    except (DataError, ConfigError):
        return None
    if member.arch != planned.arch or member.metadata.get("seed") != planned.seed:
        return None
    return member


def _saved_members(run: RunDir, plan: list[PlannedMember]) -> dict[int, Member]:
    members_dir = run.path / POOL_DIR / "members"
    saved = {}
    for i, planned in enumerate(plan):
        member = _load_saved(members_dir / planned.name, planned)
        if member is not None:
            saved[i] = member
    return saved


def _save_member(directory: Path, member: Member, state_dict: bytes) -> None:
    """Write a member's files into a fresh temporary directory, then rename it into place."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = make_temp_dir(directory.parent, prefix=f".{directory.name}.")
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


@dataclasses.dataclass
class _Training:
    """The members of a build after a training pass."""

    done: dict[int, Member]
    trained: list[str]
    reused: list[str]
    failed: dict[str, str]


def _train_members(
    run: RunDir,
    config: EnsembleConfig,
    prepared: PreparedBuild,
    plan: list[PlannedMember],
    labels: tuple[np.ndarray, np.ndarray],
    progress: bool,
) -> _Training:
    done = _saved_members(run, plan)
    state = _Training(done, [], [plan[i].name for i in sorted(done)], {})
    todo = [i for i in range(len(plan)) if i not in done]
    if not todo:
        return state
    run.append({"type": "train", "members": [plan[i].name for i in todo], "reused": state.reused})
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(plan), initial=len(done), desc="train members", unit="member")

    def fail(planned: PlannedMember, reason: str, seconds: float) -> None:
        state.failed[planned.name] = reason
        run.append({"type": "member_failed", "name": planned.name, "arch": prepared.space.format(planned.arch),
                    "error": reason, "seconds": seconds})

    def on_done(outcomes: list[Outcome]) -> None:
        for outcome in outcomes:
            i = outcome.task.task_id
            planned = plan[i]
            result = outcome.value
            if outcome.failed or not isinstance(result, MemberResult):
                fail(planned, outcome.error or f"the task returned {type(result).__name__}", outcome.seconds)
                continue
            try:
                member = member_from_result(
                    planned.name, planned.arch, planned.seed, result, labels[0], labels[1],
                    config.space, config.network, prepared.data.in_channels,
                )
            except (MemberFailure, DataError) as exc:
                fail(planned, str(exc), outcome.seconds)
                continue
            _save_member(run.subdir(f"{POOL_DIR}/members") / planned.name, member, result.state_dict)
            run.append({"type": "member", "name": planned.name, "arch": prepared.space.format(planned.arch),
                        "seed": planned.seed, "metrics": member.metadata["metrics"], "seconds": result.seconds})
            done[i] = member
            state.trained.append(planned.name)
            if bar is not None:
                bar.set_postfix(last=f"{planned.name} val {result.metrics['val_acc']:.1f}%", refresh=False)
                bar.update(1)

    tasks = [Task(task_id=i, payload=plan[i].arch, seed=plan[i].seed) for i in todo]
    try:
        prepared.executor.run_all(prepared.trainer, tasks, progress=on_done)
    finally:
        if bar is not None:
            bar.close()
    return state


# -------------------------------------------------------------------------- evaluation
def _component(section: ComponentConfig) -> str:
    return f"`{section.name}`" + (f" {section.params}" if section.params else "")


def _details(config: EnsembleConfig, data: DataSizes, num_candidates: int) -> list[str]:
    ds, train = config.dataset, config.train
    source = (
        f"the top {num_candidates} distinct architectures of search run `{config.candidates.search_run}`"
        if config.candidates.search_run is not None
        else f"{num_candidates} listed architectures"
    )
    return [
        f"candidates: {source}, space {_component(config.space)}",
        (f"data: `{ds.name}`, {data.num_train} train / {data.num_val} validation / {data.num_test} test images, "
        f"{data.num_classes} classes (split seed {ds.seed})"),
        (f"network: decoder {_component(config.network)}; training: {train.epochs} epochs, "
        f"batch {train.batch_size}, lr {train.optim.lr}"),
        f"executor: {_component(config.executor)}; seed {config.seed}",
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


def _evaluate(
    run: RunDir,
    config: EnsembleConfig,
    plan: list[PlannedMember],
    data: DataSizes,
    pool: CandidatePool,
    failed: dict[str, str],
) -> tuple[EnsembleEvaluation, str]:
    """Prune and evaluate ``pool``; write the report, tables and figures. Returns the
    evaluation and the Markdown of the report."""
    pruners, notes = _clamped(config.pruners, len(pool))
    evaluation = evaluate_pool(pool, pruners, seed=config.seed, diversity=config.diversity, ece_bins=config.ece_bins)
    notes += [f"member {name!r} failed to train: {reason}" for name, reason in failed.items()]
    if len(pool) < len(plan):
        notes.append(
            f"the build is incomplete ({len(pool)} of {len(plan)} members): resume it to train the missing members"
        )
    evaluation = dataclasses.replace(evaluation, notes=evaluation.notes + tuple(notes))
    text = write_ensemble_report(
        run.path, evaluation, title=f"Ensemble build: {run.path.name}", details=_details(config, data, len(plan))
    )
    return evaluation, text


def _pool(done: dict[int, Member], labels: tuple[np.ndarray, np.ndarray]) -> CandidatePool:
    return CandidatePool(tuple(done[i] for i in sorted(done)), labels[0], labels[1])


declare_records("ensemble", member_failed={"name": str, "error": Any})


def _failures(run: RunDir, plan: list[PlannedMember], done: dict[int, Member]) -> dict[str, str]:
    """Why each planned member without a saved one is missing (its last logged failure)."""
    reasons = {r["name"]: str(r["error"]) for r in run.read_log() if r.get("type") == "member_failed"}
    return {p.name: reasons.get(p.name, "not trained yet") for i, p in enumerate(plan) if i not in done}


# ---------------------------------------------------------------------------- run kind
class EnsembleRun(RunKind):
    """``evonas ensemble build``: train candidates, prune them and evaluate the ensembles.

    ``--resume`` may override ``executor``, ``pruners``, ``diversity`` and ``ece_bins``
    (none changes a member; see the module docstring).
    """

    name = "ensemble"
    Config = EnsembleConfig
    extendable = ("executor", "pruners", "diversity", "ece_bins")

    def prepare(self, config: EnsembleConfig) -> PreparedBuild:
        """Check and build everything before the run directory exists (:func:`prepare_build`)."""
        return prepare_build(config)

    def execute(
        self, run: RunDir, config: EnsembleConfig, prepared: PreparedBuild, resume: bool, progress: bool
    ) -> dict[str, Any]:
        if resume and (run.path / PLAN).is_file():
            plan, data = _read_plan(run, prepared.space)
            labels = _read_labels(run)
            if not all(np.array_equal(a, b) for a, b in zip(labels, (prepared.val_labels, prepared.test_labels))):
                raise RunDirError(
                    f"the data of {str(run.path)!r} changed: its validation or test labels differ from those the "
                    "build started with; restore the data or start a new build"
                )
            run.append({"type": "resume"})
        else:
            labels = (prepared.val_labels, prepared.test_labels)
            _write_labels(run, *labels)
            plan, data = _write_plan(run, prepared, config.seed), prepared.data
        training = _train_members(run, config, prepared, plan, labels, progress)
        summary: dict[str, Any] = {
            "complete": len(training.done) == len(plan),
            "candidates": len(plan),
            "members": [],
            "trained": training.trained,
            "reused": training.reused,
            "failed": training.failed,
            "rows": [],
            "saep_target": {},
        }
        if training.done:
            pool = _pool(training.done, labels)
            pool.save(run.subdir(POOL_DIR), overwrite=True, save_members=False)
            evaluation, _ = _evaluate(run, config, plan, data, pool, training.failed)
            summary["members"] = pool.names
            summary["rows"] = [r.to_dict() for r in evaluation.rows]
            summary["saep_target"] = evaluation.saep_target()
        run.append({"type": "evaluated", "complete": summary["complete"], "members": len(training.done)})
        return summary

    def finished(self, run: RunDir) -> bool:
        """A build is finished when every member trained; otherwise ``--resume`` retries the failed ones."""
        if not (run.path / RESULT).exists():
            return False
        summary = run.read_json(RESULT)
        return bool(isinstance(summary, dict) and summary.get("complete"))

    def failure(self, summary: dict[str, Any]) -> str | None:
        if not summary.get("members"):
            failed = summary.get("failed") or {}
            first = next(iter(failed.items()), ("-", "no member was trained"))
            return f"no member of the ensemble build trained ({len(failed)} failed); first: {first[0]}: {first[1]}"
        return None

    def format_summary(self, summary: dict[str, Any], run_dir: Path) -> str:
        return format_summary(summary, run_dir)

    def report(self, run: RunDir) -> str:
        return write_report(run)


ENSEMBLE = EnsembleRun()


# --------------------------------------------------------------------------- functions
def write_report(run: RunDir) -> str:
    """Regenerate ``report.md``, the CSV tables and the figures of an ensemble run from its
    saved members (also of an interrupted build: from the members saved so far).

    Raises:
        RunDirError: The run has no plan or no trained member yet.
    """
    config = from_dict(EnsembleConfig, run.config)
    space: SearchSpace = config.space.build("space")
    plan, data = _read_plan(run, space)
    labels = _read_labels(run)
    done = _saved_members(run, plan)
    if not done:
        raise RunDirError(f"ensemble run {str(run.path)!r} has no trained member yet")
    _, text = _evaluate(run, config, plan, data, _pool(done, labels), _failures(run, plan, done))
    return text


def format_summary(summary: dict[str, Any], run_dir: Path | None = None) -> str:
    """A few lines for the terminal: the run directory, the table and the SAEP target."""
    lines = [] if run_dir is None else [f"run directory: {run_dir}"]
    failed = summary.get("failed") or {}
    lines.append(
        f"members: {len(summary.get('members', []))} ({len(summary.get('trained', []))} trained, "
        f"{len(summary.get('reused', []))} reused" + (f", {len(failed)} failed" if failed else "") + ")"
    )
    rows = [EnsembleRow.from_dict(r) for r in summary.get("rows", [])]
    if rows:
        lines.append(format_rows(rows, len(summary["members"])))
    for label, checks in (summary.get("saep_target") or {}).items():
        lines.append(
            f"SAEP target {label}: {'met' if checks['met'] else 'missed'} "
            f"(<= half: {checks['half']}, within 0.2: {checks['near_full']}, beats single: {checks['beats_single']})"
        )
    if not summary.get("complete", True):
        lines.append("the build is incomplete: resume it with an executor override to retry the missing members")
    return "\n".join(lines)


def build_ensemble(
    config_path: str | os.PathLike[str] | None,
    overrides: Sequence[str] = (),
    run_dir: str | os.PathLike[str] | None = None,
    progress: bool | None = None,
) -> RunResult:
    """Start an ensemble build (:func:`evonas.runs.start_run` of the ``ensemble`` kind).

    Args:
        config_path: The YAML config (None: defaults and overrides only).
        overrides: ``key.sub=value`` overrides.
        run_dir: Where to create the run directory (default: the config's ``run_dir``,
            else ``runs/<config name>-<time>``).
        progress: Show a progress bar over the members (None: the config's ``progress``).

    Raises:
        EvonasError: Bad input; nothing was written.
        RunFailedError: No member could be trained.
    """
    return start_run(ENSEMBLE.name, config_path, list(overrides), run_dir, progress)


def resume_ensemble(
    run_dir: str | os.PathLike[str], overrides: Sequence[str] = (), progress: bool | None = None
) -> RunResult:
    """Continue the ensemble build in ``run_dir`` (:func:`evonas.runs.resume_run`).

    Members already saved are kept; a finished build is only continued when ``overrides``
    change one of :attr:`EnsembleRun.extendable`.
    """
    return resume_run(run_dir, list(overrides), progress, kind=ENSEMBLE.name)


__all__ = [
    "ENSEMBLE",
    "DataSizes",
    "EnsembleRun",
    "PlannedMember",
    "PreparedBuild",
    "build_ensemble",
    "check_pruners",
    "format_summary",
    "prepare_build",
    "resume_ensemble",
    "write_report",
]
