"""The search loop: ask a strategy, run the evaluations a fitness needs, tell the strategy.

The loop is the only place that knows about budgets, caching, the run log and
checkpoints. Strategies see fitness values; executors see evaluation requests.

Reproducibility: every evaluation gets a seed derived from the run seed and its number;
the strategy draws from its own generator. With the serial executor a run is therefore
a pure function of its config and seed. Asynchronous strategies tell results in the
order evaluations finish, which the log records; synchronous (generational) strategies
are told a generation's results in the order they were asked, so their runs give the same
results on any executor.

Resume: the state is checkpointed every few candidates; on resume the loop restores the
latest checkpoint and replays the log records written after it, in their order, instead
of running those evaluations again. A checkpoint that is missing, not signed by this user
(:meth:`evonas.runs.RunDir.load_checkpoint`) or written by another version of the loop is
never used: the whole log is replayed instead, and a ``checkpoint_ignored`` record says
why. The strategy therefore sees exactly the sequence of results it saw before the
interruption, and with the serial executor a resumed run ends with exactly the history of
an uninterrupted one.

A checkpoint holds only what the log does not (:class:`SearchState`: the strategy, the
counters, the work in flight), so writing one costs the same however long the run is. What
grows with the run (the history of candidates, the evaluation cache of a caching fitness)
is rebuilt from the log on resume, which is read anyway: the first ``told`` candidate
records and the first ``log_position`` evaluation records are exactly what the run had
when the checkpoint was written.
"""

from __future__ import annotations

import collections
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from typing import Annotated, Any

import numpy as np

from evonas._json import JsonFloat, json_float
from evonas.config import MAX_COUNT, Checked, Range
from evonas.errors import ConfigError, RunDirError, UntrustedFileError
from evonas.evaluation import BatchEvaluator, EvalBatch, Evaluation, EvaluationWorker, Evaluator
from evonas.executors import Executor, Outcome, Task, Worker
from evonas.fitness import Fitness, Objective, Score
from evonas.runs import CHECKPOINT, RunDir, declare_records
from evonas.spaces import Arch, SearchSpace
from evonas.strategies import Strategy


def evaluation_seed(run_seed: int, eval_id: int) -> int:
    """The seed of evaluation ``eval_id`` of a run (independent of scheduling)."""
    return int(np.random.SeedSequence([run_seed, eval_id]).generate_state(1, dtype=np.uint32)[0])


@dataclass(frozen=True)
class Budget(Checked):
    """When a search stops asking for new candidates.

    Attributes:
        evaluations: Evaluations (table queries or trainings) allowed, counting every
            evaluation a fitness triggers (e.g. neighbours) unless the fitness leaves its
            neighbours free (then one per candidate); ``None`` for no limit.
        seconds: Summed evaluation cost allowed (simulated seconds for tables, wall
            seconds for training), charged as ``evaluations`` are; ``None`` for no limit.

    The budget is checked before each new candidate, so the last candidate may overshoot
    it (as in NAS-Bench-201's reference implementation, which keeps the last query).
    """

    evaluations: Annotated[int | None, Range(1, MAX_COUNT)] = None
    seconds: Annotated[float | None, Range(0, low_open=True)] = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.evaluations is None and self.seconds is None:
            raise ConfigError("budget needs 'evaluations' or 'seconds' (or both); got neither")


@dataclass
class CandidateRecord:
    """A scored candidate, in the order the strategy was told.

    ``used_evaluations`` and ``used_seconds`` are what the budget had been charged when it
    was told; ``uncharged_evaluations`` the evaluations run by then that were not charged
    (neighbours of a fitness whose ``neighbour_cost`` is ``"free"``).
    """

    cand_id: int
    arch: Arch
    values: tuple[float, ...] | None
    metrics: dict[str, float]
    failed: bool
    num_evaluations: int
    used_evaluations: int
    used_seconds: float
    uncharged_evaluations: int = 0


@dataclass
class _Pending:
    arch: Arch
    plan: list[Arch]
    results: dict[Arch, Evaluation] = field(default_factory=dict)
    new_evaluations: int = 0
    runs_own: bool = False  # its own evaluation was submitted for it (not cached, not another's)


@dataclass
class SearchState:
    """What a search needs to continue beyond what its log holds (pickled into checkpoints).

    Its size is that of the strategy's own state and of the work in flight, never that of
    the history: :class:`Search` keeps the candidates told and the evaluation cache beside
    it and rebuilds them from the log on resume (the first ``told`` candidate records and
    the first ``log_position`` evaluation records).
    """

    strategy: Strategy
    next_eval_id: int = 0
    next_cand_id: int = 0
    submitted: int = 0
    used_evaluations: int = 0  # charged to the budget
    used_seconds: float = 0.0  # charged to the budget
    uncharged_evaluations: int = 0  # run but not charged (free neighbours)
    log_position: int = 0  # evaluation records consumed, in log order
    told: int = 0  # candidates told, in log order
    pending: dict[int, _Pending] = field(default_factory=dict)
    subscribers: dict[int, list[int]] = field(default_factory=dict)  # eval_id -> cand_ids
    inflight_by_arch: dict[Arch, int] = field(default_factory=dict)  # cached fitness only
    outstanding: dict[int, Task] = field(default_factory=dict)  # task_id -> task (a batch or one evaluation)
    open_evals: dict[int, int] = field(default_factory=dict)  # eval_id -> task_id, not yet returned
    ready: list[int] = field(default_factory=list)
    held: list[int] = field(default_factory=list)  # synchronous strategies: done, not yet told
    scores: dict[int, tuple[Arch, Score]] = field(default_factory=dict)
    idle_candidates: int = 0
    stop_reason: str | None = None
    failed_evaluations: int = 0
    first_error: str | None = None


_STATE_FIELDS = frozenset(f.name for f in fields(SearchState))


class _ReplayExecutor(Executor):
    """Serves logged evaluation results in log order, forwards everything else."""

    def __init__(self, inner: Executor, records: list[dict[str, Any]]) -> None:
        self.inner = inner
        self._queue = collections.deque(records)
        self._logged = {r["eval_id"]: r for r in records}
        self._held: dict[int, Task] = {}

    @property
    def capacity(self) -> int:
        return self.inner.capacity

    def start(self, worker: Worker) -> None:
        self.inner.start(worker)

    def submit(self, task: Task) -> None:
        fresh = []
        for single in split_tasks(task):
            rec = self._logged.pop(single.task_id, None)
            if rec is None:
                fresh.append(single)
                continue
            if tuple(rec["arch"]) != single.payload or rec["seed"] != single.seed:
                raise RunDirError(
                    f"the run log does not match this run: evaluation {single.task_id} was of {tuple(rec['arch'])}, "
                    f"the resumed run asks for {single.payload}; was the config or the code changed?"
                )
            self._held[single.task_id] = single
        if fresh:
            self.inner.submit(join_tasks(fresh, batch=isinstance(task.payload, EvalBatch)))

    @property
    def num_pending(self) -> int:
        return len(self._held) + self.inner.num_pending

    def wait(self) -> list[Outcome]:
        if self._queue:
            rec = self._queue[0]
            task = self._held.pop(rec["eval_id"], None)
            if task is None:
                raise RunDirError(
                    f"the run log does not match this run: evaluation {rec['eval_id']} is logged but the resumed "
                    "run never asked for it; was the config or the code changed?"
                )
            self._queue.popleft()
            return [Outcome(task, value=Evaluation.from_json(rec["evaluation"]))]
        return self.inner.wait()

    def close(self) -> None:
        self.inner.close()


def split_tasks(task: Task) -> list[Task]:
    """The single-evaluation tasks of ``task`` (itself unless it is a batch)."""
    if isinstance(task.payload, EvalBatch):
        return [Task(e, a, s) for e, a, s in task.payload.items]
    return [task]


def join_tasks(tasks: list[Task], batch: bool) -> Task:
    """One task for single-evaluation ``tasks``: a batch when ``batch`` and there are several."""
    if len(tasks) == 1 or not batch:
        if len(tasks) != 1:
            raise ValueError(f"cannot join {len(tasks)} tasks without batching them")
        return tasks[0]
    return Task(tasks[0].task_id, EvalBatch(tuple((t.task_id, t.payload, t.seed) for t in tasks)), tasks[0].seed)


def outcome_evaluations(outcome: Outcome) -> list[tuple[Task, Evaluation]]:
    """The single evaluations an executor's outcome stands for, with their tasks.

    A failed batch fails each of its evaluations with the batch's error, its wall time
    shared among them.
    """
    singles = split_tasks(outcome.task)
    if not isinstance(outcome.task.payload, EvalBatch):
        return [(singles[0], as_evaluation(outcome))]
    if outcome.failed:
        share = outcome.seconds / len(singles)
        return [(t, Evaluation.failure(str(outcome.error), cost=share)) for t in singles]
    return list(zip(singles, outcome.value))


def judged(evaluation: Evaluation, objectives: Sequence[Objective]) -> Evaluation:
    """``evaluation``, or a failure when an objective metric is missing, NaN or infinite
    (a diverged or broken evaluation is never a success, and never a winner)."""
    if evaluation.failed:
        return evaluation
    for objective in objectives:
        value = evaluation.metrics.get(objective.metric)
        if value is None or not math.isfinite(float(value)):
            what = "is missing" if value is None else f"is {float(value)!r}"
            return Evaluation(metrics=evaluation.metrics, cost=evaluation.cost, failed=True,
                              error=f"objective {objective.metric!r} {what}", info=evaluation.info)
    return evaluation


def as_evaluation(outcome: Outcome) -> Evaluation:
    """The evaluation an executor's outcome stands for (a failure when the task failed)."""
    if outcome.failed:
        return Evaluation.failure(str(outcome.error), cost=outcome.seconds)
    value: Evaluation = outcome.value
    return value


class Search:
    """One search run.

    Args:
        space: The search space.
        strategy: A fresh strategy (ignored when resuming from a checkpoint).
        fitness: Turns evaluations into scores.
        evaluator: Evaluates architectures (run by ``executor``).
        executor: Runs evaluations.
        budget: When to stop asking.
        seed: The run seed (evaluation seeds derive from it).
        run: Run directory for the log and checkpoints (``None``: in memory only).
        checkpoint_every: Candidates between checkpoints.
        progress: Show a tqdm progress bar.
        stall_limit: Stop after this many consecutive candidates that needed no new
            evaluation (everything they needed was cached), which happens only when a
            strategy keeps revisiting the same region of a small space.
        on_candidate: Called with every new :class:`CandidateRecord`.
        initial: Architectures that take the place of the strategy's first proposals
            (the strategy is still asked, so its random draws and bookkeeping are those
            of a run without them, and it is told their results as its own).
    """

    def __init__(
        self,
        space: SearchSpace,
        strategy: Strategy,
        fitness: Fitness,
        evaluator: Evaluator,
        executor: Executor,
        budget: Budget,
        seed: int,
        run: RunDir | None = None,
        checkpoint_every: int = 20,
        progress: bool = False,
        stall_limit: int = 10_000,
        on_candidate: Callable[[CandidateRecord], None] | None = None,
        initial: Sequence[Arch] = (),
    ) -> None:
        self.space = space
        self.initial = tuple(space.validate(a) for a in initial)
        self.fitness = fitness
        self.evaluator = evaluator
        self.executor: Executor = executor
        self.budget = budget
        self.seed = seed
        self.run = run
        self.checkpoint_every = max(1, checkpoint_every)
        self.progress = progress
        self.stall_limit = stall_limit
        self.on_candidate = on_candidate
        self.state = SearchState(strategy=strategy)
        # What grows with the run lives beside the state, not in it: the log holds it.
        self.history: list[CandidateRecord] = []
        self.cache: dict[Arch, Evaluation] = {}  # successful evaluations, when the fitness caches
        self._best: CandidateRecord | None = None
        self._best_value = 0.0
        # A candidate's whole fitness plan is one executor task when the evaluator scores batches.
        self.batch = isinstance(evaluator, BatchEvaluator)
        self._logged_evals: set[int] = set()
        self._logged_cands: set[int] = set()
        self._since_checkpoint = 0
        self._bar: Any = None
        self.stop_reason: str | None = None

    # ----------------------------------------------------------------------------- resume
    def _prepare_resume(self) -> None:
        assert self.run is not None
        records = self.run.read_log(repair=True)
        evals = [r for r in records if r.get("type") == "eval"]
        cands = [r for r in records if r.get("type") == "candidate"]
        self._logged_evals = {r["eval_id"] for r in evals}
        self._logged_cands = {r["cand_id"] for r in cands}
        checkpoint = self._load_checkpoint()
        if checkpoint is not None:
            if checkpoint.log_position > len(evals) or checkpoint.told > len(cands):
                raise RunDirError(f"checkpoint in {str(self.run.path)!r} does not match its log; delete it to resume from the log")
            self.state = checkpoint
        st = self.state
        for rec in evals[: st.log_position]:
            self._remember(tuple(rec["arch"]), Evaluation.from_json(rec["evaluation"]))
        for rec in cands[: st.told]:
            self._record(candidate_from_json(rec))
        to_replay = evals[st.log_position :]
        if to_replay:
            self.executor = _ReplayExecutor(self.executor, to_replay)

    def _load_checkpoint(self) -> SearchState | None:
        """The run's checkpoint, or None when there is none or it cannot be used (the log
        is the source of truth: all of it is then replayed, and a record says why)."""
        assert self.run is not None
        try:
            checkpoint = self.run.load_checkpoint(remedy="the search is rebuilt from its log instead")
        except UntrustedFileError as exc:
            self.run.append({"type": "checkpoint_ignored", "reason": str(exc)})
            return None
        if checkpoint is None:
            return None
        if not isinstance(checkpoint, SearchState):
            raise RunDirError(f"checkpoint in {str(self.run.path)!r} does not match its log; delete it to resume from the log")
        if set(vars(checkpoint)) != _STATE_FIELDS:
            self.run.append({
                "type": "checkpoint_ignored",
                "reason": f"checkpoint {str(self.run.path / CHECKPOINT)!r} was written by another version of the search "
                          "loop; the search is rebuilt from its log instead",
            })
            return None
        return checkpoint

    # ------------------------------------------------------------------------------- run
    def run_search(self, resume: bool = False) -> list[CandidateRecord]:
        """Run (or continue) the search until the budget is spent; return the history."""
        if resume:
            if self.run is None:
                raise RunDirError("cannot resume a search without a run directory")
            self._prepare_resume()
        st = self.state
        self._open_bar()
        self.executor.start(EvaluationWorker(self.evaluator))
        try:
            for task_id in sorted(st.outstanding):
                # only the evaluations of a task that were not returned before the checkpoint
                still_open = [t for t in split_tasks(st.outstanding[task_id]) if t.task_id in st.open_evals]
                self.executor.submit(join_tasks(still_open, self.batch))
            self._fill()
            while st.pending or st.held:
                if not st.pending:  # synchronous: generation complete
                    self._tell_held()
                    self._fill()
                    continue
                done = self.executor.wait()
                if not done:
                    raise RuntimeError("executor returned nothing while evaluations were pending")
                for outcome in done:
                    for task, evaluation in outcome_evaluations(outcome):
                        self._on_evaluation(task, evaluation)
                self._process_ready()
                self._maybe_checkpoint()
                self._fill()
            # "budget" is not stored in the state: a resumed run may be given a larger one.
            self.stop_reason = st.stop_reason or "budget"
            self._checkpoint()
        finally:
            self.executor.close()
            if self._bar is not None:
                self._bar.close()
        return self.history

    # --------------------------------------------------------------------------- asking
    @property
    def _neighbours_free(self) -> bool:
        return self.fitness.neighbour_cost == "free"

    def _budget_left(self) -> bool:
        st, b = self.state, self.budget
        # evaluations are charged as they are asked for; with free neighbours, one per candidate
        asked = st.next_cand_id if self._neighbours_free else st.submitted
        if b.evaluations is not None and asked >= b.evaluations:
            return False
        if b.seconds is not None and st.used_seconds >= b.seconds:
            return False
        return True

    def _fill(self) -> None:
        st = self.state
        strategy = st.strategy
        while st.stop_reason is None:
            if not self._budget_left():
                break
            if not strategy.synchronous and len(st.pending) >= self.executor.capacity:
                break
            arch = strategy.ask()
            st.used_seconds += float(strategy.take_cost())
            if arch is None:
                if not st.pending and not st.held and not st.ready:
                    st.stop_reason = "strategy has nothing to propose"
                break
            if st.next_cand_id < len(self.initial):
                arch = self.initial[st.next_cand_id]
            arch = self.space.validate(arch)
            cand_id = st.next_cand_id
            st.next_cand_id += 1
            pend = _Pending(arch=arch, plan=self.fitness.plan(arch))
            st.pending[cand_id] = pend
            new: list[Arch] = []
            for a in dict.fromkeys(pend.plan):  # a plan may name an arch twice
                if self.fitness.cache and a in self.cache:
                    pend.results[a] = self.cache[a]
                elif self.fitness.cache and a in st.inflight_by_arch:
                    st.subscribers[st.inflight_by_arch[a]].append(cand_id)
                else:
                    new.append(a)
            if new:
                self._submit(new, cand_id)
                pend.new_evaluations = len(new)
                pend.runs_own = arch in new
            if len(pend.results) == len(set(pend.plan)):
                st.ready.append(cand_id)
            if pend.new_evaluations == 0:
                st.idle_candidates += 1
                if st.idle_candidates >= self.stall_limit:
                    st.stop_reason = f"stalled: {self.stall_limit} candidates in a row needed no new evaluation"
            else:
                st.idle_candidates = 0
            if st.ready:
                self._process_ready()

    def _submit(self, archs: list[Arch], cand_id: int) -> None:
        """Submit the new evaluations of a candidate: one task each, or one batch."""
        st = self.state
        singles = []
        for arch in archs:
            eval_id = st.next_eval_id
            st.next_eval_id += 1
            st.submitted += 1
            singles.append(Task(task_id=eval_id, payload=arch, seed=evaluation_seed(self.seed, eval_id)))
            st.subscribers[eval_id] = [cand_id]
            if self.fitness.cache:
                st.inflight_by_arch[arch] = eval_id
        tasks = [join_tasks(singles, batch=True)] if self.batch and len(singles) > 1 else singles
        for task in tasks:
            st.outstanding[task.task_id] = task
            for single in split_tasks(task):
                st.open_evals[single.task_id] = task.task_id
            self.executor.submit(task)

    # ------------------------------------------------------------------------- results
    def _on_evaluation(self, task: Task, evaluation: Evaluation) -> None:
        st = self.state
        eval_id, arch = task.task_id, task.payload
        evaluation = judged(evaluation, self.fitness.objectives)
        owner = st.open_evals.pop(eval_id, None)
        if owner is None:
            raise RuntimeError(f"executor returned evaluation {eval_id}, which is not outstanding")
        if owner not in st.open_evals.values():
            del st.outstanding[owner]
        st.log_position += 1
        if not self._neighbours_free:
            st.used_evaluations += 1
            st.used_seconds += float(evaluation.cost)
        if evaluation.failed:
            st.failed_evaluations += 1
            if st.first_error is None:
                st.first_error = f"evaluation {eval_id} of {self.space.format(arch)!r}: {evaluation.error}"
        if self.run is not None and eval_id not in self._logged_evals:
            self.run.append(
                {
                    "type": "eval",
                    "eval_id": eval_id,
                    "arch": list(arch),
                    "arch_str": self.space.format(arch),
                    "seed": task.seed,
                    "evaluation": evaluation.to_json(),
                    "time": time.time(),
                }
            )
            self._logged_evals.add(eval_id)
        if self.fitness.cache:
            st.inflight_by_arch.pop(arch, None)
        self._remember(arch, evaluation)
        for cand_id in st.subscribers.pop(eval_id):
            pend = st.pending[cand_id]
            pend.results[arch] = evaluation
            if len(pend.results) == len(set(pend.plan)):
                st.ready.append(cand_id)
        self._update_bar()

    def _process_ready(self) -> None:
        st = self.state
        for cand_id in sorted(st.ready):
            pend = st.pending.pop(cand_id)
            if self._neighbours_free:
                # the paper's accounting: the searched architecture is paid for, each time
                # it is searched; the rest of its plan is read for nothing
                st.used_evaluations += 1
                st.used_seconds += float(pend.results[pend.arch].cost)
                st.uncharged_evaluations += pend.new_evaluations - int(pend.runs_own)
            score = self.fitness.combine(pend.arch, pend.results)
            if st.strategy.synchronous:
                st.scores[cand_id] = (pend.arch, score)
                st.held.append(cand_id)
            else:
                self._tell(cand_id, pend.arch, score)
        st.ready.clear()

    def _tell_held(self) -> None:
        st = self.state
        for cand_id in sorted(st.held):
            arch, score = st.scores.pop(cand_id)
            self._tell(cand_id, arch, score)
        st.held.clear()

    def _tell(self, cand_id: int, arch: Arch, score: Score) -> None:
        st = self.state
        st.strategy.tell(arch, None if score.failed else score.values)
        record = CandidateRecord(
            cand_id=cand_id,
            arch=arch,
            values=score.values,
            metrics=dict(score.metrics),
            failed=score.failed,
            num_evaluations=score.num_evaluations,
            used_evaluations=st.used_evaluations,
            used_seconds=st.used_seconds,
            uncharged_evaluations=st.uncharged_evaluations,
        )
        st.told += 1
        self._record(record)
        self._since_checkpoint += 1
        if self.run is not None and cand_id not in self._logged_cands:
            self.run.append(candidate_to_json(record, self.space))
            self._logged_cands.add(cand_id)
        if self.on_candidate is not None:
            self.on_candidate(record)
        self._update_bar()

    def _remember(self, arch: Arch, evaluation: Evaluation) -> None:
        """Cache a successful evaluation when the fitness reuses them."""
        if self.fitness.cache and not evaluation.failed:
            self.cache[arch] = evaluation

    def _record(self, record: CandidateRecord) -> None:
        """Add a told candidate to the history (and to the best so far, as :func:`best_candidate` picks it)."""
        self.history.append(record)
        if record.values is not None and (self._best is None or record.values[0] > self._best_value):
            self._best, self._best_value = record, record.values[0]

    # ------------------------------------------------------------------------ checkpoints
    def _maybe_checkpoint(self) -> None:
        if self._since_checkpoint >= self.checkpoint_every:
            self._checkpoint()

    def _checkpoint(self) -> None:
        self._since_checkpoint = 0
        if self.run is None:
            return
        self.run.save_checkpoint(self.state)

    # ---------------------------------------------------------------------------- progress
    def _open_bar(self) -> None:
        if not self.progress:
            return
        from tqdm.auto import tqdm

        if self.budget.evaluations is not None:
            self._bar = tqdm(total=self.budget.evaluations, unit="eval", desc="search", dynamic_ncols=True)
        else:
            self._bar = tqdm(total=float(self.budget.seconds or 0), unit="s", desc="search (cost)", dynamic_ncols=True)

    def _update_bar(self) -> None:
        if self._bar is None:
            return
        st = self.state
        n = st.used_evaluations if self.budget.evaluations is not None else round(st.used_seconds, 1)
        self._bar.n = min(n, self._bar.total)
        best = self._best
        if best is not None and best.values is not None:
            self._bar.set_postfix(best=f"{best.values[0]:.4g}", cands=len(self.history), refresh=False)
        self._bar.refresh()


EVALUATION_FIELDS = {"metrics": dict[str, JsonFloat], "cost": JsonFloat, "failed": bool}
"""The fields of :meth:`Evaluation.to_json` that :meth:`Evaluation.from_json` reads."""
declare_records(
    "search",
    eval={"eval_id": int, "arch": list[int], "seed": int, "evaluation": EVALUATION_FIELDS},
    candidate={
        "cand_id": int, "arch": list[int], "values": list[JsonFloat] | None, "metrics": dict[str, JsonFloat],
        "failed": bool, "num_evaluations": int, "used_evaluations": int, "used_seconds": JsonFloat,
    },
)


def candidate_to_json(record: CandidateRecord, space: SearchSpace) -> dict[str, Any]:
    return {
        "type": "candidate",
        "cand_id": record.cand_id,
        "arch": list(record.arch),
        "arch_str": space.format(record.arch),
        "values": None if record.values is None else [json_float(v) for v in record.values],
        "metrics": {k: json_float(v) for k, v in record.metrics.items()},
        "failed": record.failed,
        "num_evaluations": record.num_evaluations,
        "used_evaluations": record.used_evaluations,
        "used_seconds": record.used_seconds,
        "uncharged_evaluations": record.uncharged_evaluations,
    }


def candidate_from_json(record: dict[str, Any]) -> CandidateRecord:
    """The candidate of a ``candidate`` log record (written by :func:`candidate_to_json`;
    a record without ``uncharged_evaluations`` is of a run that charged everything)."""
    uncharged = record.get("uncharged_evaluations", 0)
    if not isinstance(uncharged, int) or isinstance(uncharged, bool):
        raise RunDirError(f"candidate record {record.get('cand_id')!r} has uncharged_evaluations={uncharged!r}; expected int")
    return CandidateRecord(
        cand_id=record["cand_id"],
        arch=tuple(record["arch"]),
        values=None if record["values"] is None else tuple(float(v) for v in record["values"]),
        metrics={k: float(v) for k, v in record["metrics"].items()},
        failed=record["failed"],
        num_evaluations=record["num_evaluations"],
        used_evaluations=record["used_evaluations"],
        used_seconds=float(record["used_seconds"]),
        uncharged_evaluations=uncharged,
    )


def best_candidate(history: list[CandidateRecord]) -> CandidateRecord | None:
    """The candidate with the highest first objective (the earliest among equals)."""
    best: CandidateRecord | None = None
    best_value = 0.0
    for rec in history:
        if rec.values is None:
            continue
        if best is None or rec.values[0] > best_value:
            best, best_value = rec, rec.values[0]
    return best


def pareto_front(history: list[CandidateRecord]) -> list[CandidateRecord]:
    """Candidates not dominated by any other (all objectives maximised); repeats of an arch dropped."""
    scored = [r for r in history if r.values is not None]
    front: list[CandidateRecord] = []
    seen: set[Arch] = set()
    for r in scored:
        v = np.asarray(r.values)
        dominated = any(
            np.all(np.asarray(o.values) >= v) and np.any(np.asarray(o.values) > v) for o in scored
        )
        if not dominated and r.arch not in seen:
            front.append(r)
            seen.add(r.arch)
    return front


__all__ = ["Budget", "CandidateRecord", "Search", "SearchState", "best_candidate", "evaluation_seed", "pareto_front"]