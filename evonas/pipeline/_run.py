"""``evonas run``: the whole pipeline in one run directory.

Layout of a pipeline run directory::

    RUN_DIR/
      config.yaml, meta.yaml, log.jsonl, result.json, report.md   (the pipeline's own)
      supernet/   a ``supernet`` run: novelty-sampled single-path supernet + proxy predictor
      search/     a ``search`` run: neighbourhood-aware evolution on the proxy predictor
      ensemble/   an ``ensemble`` run: the final members trained from scratch (``pool/members``)
                  and SAEP / baseline pruning
      export/     the chosen sub-ensemble (``evonas.load_ensemble``, ``evonas predict``)

Each stage folder is a normal run of its kind (``evonas report``, ``evonas supernet rank``,
``evonas ensemble build --resume`` work on it) and starts only when the previous stage
has finished. ``evonas run --resume RUN_DIR`` continues the first unfinished stage from
its own checkpoint and never repeats a finished one (a finished member is never retrained).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ensembles._config import CandidatesConfig
from evonas._json import json_float
from evonas.data import cached_splits
from evonas.errors import ConfigError, RunDirError
from evonas.models import check_decoder
from evonas.pipeline._config import (
    PipelineConfig,
    StagePaths,
    ensemble_config,
    search_config,
    supernet_config,
)
from evonas.runs import (
    RESULT,
    RunDir,
    RunKind,
    RunResult,
    declare_records,
    resume_run,
    run_kind,
    run_stage,
    start_run,
)
from evonas.spaces import SearchSpace
from evonas.strategies import STRATEGIES
from evonas.supernet._config import SupernetRunConfig
from evonas.tabular import JoinedTable, build_tables

EXPORT_DIR = "export"
SAEP = ("prs", "pap", "pie")


@dataclass
class PreparedPipeline:
    """What :meth:`PipelineRun.prepare` checked and built."""

    space: SearchSpace
    tables: JoinedTable | None
    supernet: SupernetRunConfig
    supernet_prepared: Any


def _nb201_table_path(config: PipelineConfig) -> str | None:
    for table in config.tables:
        if table.name == "nb201":
            path = table.params.get("path")
            return None if path is None else str(path)
    return None


def _stage_header(index: int, name: str, text: str, progress: bool) -> None:
    if progress:
        from tqdm import tqdm

        tqdm.write(f"[{index}/5] {name}: {text}")


declare_records("pipeline", rescore={"kept": list[str], "scores": list[dict[str, Any]]})


class PipelineRun(RunKind):
    """``evonas run``: supernet -> search -> final -> ensemble -> export (module docstring)."""

    name = "pipeline"
    Config = PipelineConfig

    def prepare(self, config: PipelineConfig) -> PreparedPipeline:
        """Check every stage before anything is written: data (loaded once), space
        capabilities, decoder, strategy, pruners, tables and the derived stage configs."""
        space: SearchSpace = config.space.build("space")
        cached_splits(config.dataset)  # loaded once here: every stage of this process reuses it
        check_decoder(config.network, space)
        strategy = STRATEGIES.get(config.search.strategy.name)
        objectives = len(config.search.fitness.objectives)
        if objectives > strategy.max_objectives:
            raise ConfigError(
                f"strategy {config.search.strategy.name!r} takes {strategy.max_objectives} objective(s); "
                f"search.fitness.objectives has {objectives} - use nsga2 for several"
            )
        # Built once here for its checks (capabilities, parameters); the search stage builds its own.
        strategy(space, objectives, np.random.default_rng(0), config.search.strategy.typed("strategy"))
        from ensembles._build import check_pruners

        check_pruners(config.ensemble.pruners, config.final.members)
        tables = None
        if config.tables:
            tables = build_tables(config.tables, space)
            missing = [m for m in config.report if m not in tables.metrics]
            if missing:
                raise ConfigError(f"report metric {missing[0]!r} is not in the tables; valid: {', '.join(tables.metrics)}")
        sn = supernet_config(config, _nb201_table_path(config))
        supernet_prepared = run_kind("supernet").prepare(sn)
        return PreparedPipeline(space, tables, sn, supernet_prepared)

    def execute(
        self, run: RunDir, config: PipelineConfig, prepared: PreparedPipeline, resume: bool, progress: bool
    ) -> dict[str, Any]:
        paths = StagePaths(run.path)
        if resume:
            run.read_log(repair=True)
            run.append({"type": "resume"})

        _stage_header(1, "supernet", f"single-path supernet, sampler {config.supernet.sampler.name} -> "
                      f"{paths.of('supernet')}", progress)
        sn = run_stage(paths.of("supernet"), "supernet", prepared.supernet, progress,
                       prepared=prepared.supernet_prepared, root=run.path)
        run.append({"type": "stage", "stage": "supernet", "status": "finished"})

        _stage_header(2, "search", f"{config.search.strategy.name} on the {config.search.score} score, fitness "
                      f"{config.search.fitness.name} -> {paths.of('search')}", progress)
        search_cfg = search_config(config, paths.of("supernet"))
        search = run_stage(paths.of("search"), "search", search_cfg, progress, root=run.path)
        run.append({"type": "stage", "stage": "search", "status": "finished"})

        _stage_header(3, "final", f"the best {config.final.members} distinct architectures trained from scratch "
                      f"-> {paths.of('ensemble') / 'pool' / 'members'}", progress)
        candidates, rescored = self._candidates(run, config, prepared, paths)
        ens_cfg = ensemble_config(config, candidates)
        _stage_header(4, "ensemble", "SAEP (prs, pap, pie) and baselines prune the trained pool", progress)
        ensemble = run_stage(paths.of("ensemble"), "ensemble", ens_cfg, progress, root=run.path)
        run.append({"type": "stage", "stage": "ensemble", "status": "finished"})

        label = config.ensemble.export or choose_export(ensemble.summary["rows"])
        _stage_header(5, "export", f"sub-ensemble {label!r} -> {paths.export}", progress)
        export = _export(paths, label)
        run.append({"type": "stage", "stage": "export", "status": "finished", "label": label})

        summary = _summary(config, prepared, sn, search, ensemble, export, label, rescored)
        run.write_json(RESULT, summary)
        try:
            from evonas.pipeline._report import write_report

            write_report(run, prepared.tables)  # the tables prepare loaded, not a second copy
        except Exception as exc:  # noqa: BLE001 -- the run's results stand; the report can be redone
            run.append({"type": "report_failed", "error": f"{type(exc).__name__}: {exc}"})
        return summary

    def _candidates(
        self, run: RunDir, config: PipelineConfig, prepared: PreparedPipeline, paths: StagePaths
    ) -> tuple[CandidatesConfig, list[dict[str, Any]]]:
        """The final candidates: the search's best distinct architectures, optionally
        re-scored with the supernet's inherited weights (reused from the log on resume)."""
        if not config.final.rescore:
            return CandidatesConfig(search_run=str(paths.of("search")), top=config.final.members), []
        for record in run.read_log():
            if record.get("type") == "rescore":
                return CandidatesConfig(archs=tuple(record["kept"])), list(record["scores"])
        from ensembles._candidates import candidates_from_search
        from evonas.search import evaluation_seed
        from evonas.supernet._run import load_supernet_evaluator

        pool = candidates_from_search(paths.of("search"), config.final.rescore, prepared.space)
        evaluator = load_supernet_evaluator(paths.of("supernet"), device=config.supernet.train.compute.device,
                                            space=prepared.space)
        scores: list[dict[str, Any]] = []
        finite: list[tuple[float, str]] = []
        for i, cand in enumerate(pool):
            ev = evaluator.evaluate(cand.arch, evaluation_seed(config.seed, i))
            loss = math.nan if ev.failed else float(ev.metrics.get("val_loss", math.nan))
            arch = prepared.space.format(cand.arch)
            scores.append({
                "arch": arch,
                "search_value": cand.source.get("value"),
                "val_loss": json_float(loss),
                "val_acc": json_float(math.nan if ev.failed else float(ev.metrics.get("val_acc", math.nan))),
            })
            if math.isfinite(loss):
                finite.append((loss, arch))
        # stable: equal losses keep the search's order
        kept = [arch for _, arch in sorted(finite, key=lambda pair: pair[0])[: config.final.members]]
        if not kept:
            raise RunDirError("re-scoring with the supernet's weights failed for every candidate")
        run.append({"type": "rescore", "scores": scores, "kept": kept})
        return CandidatesConfig(archs=tuple(kept)), scores

    def format_summary(self, summary: dict[str, Any], run_dir: Path) -> str:
        return format_summary(summary, run_dir)

    def report(self, run: RunDir) -> str:
        from evonas.pipeline._report import write_report

        return write_report(run)


def choose_export(rows: list[dict[str, Any]]) -> str:
    """The pruner row the pipeline exports: of the SAEP pruners (else of all pruners) the
    best validation accuracy, fewer members on ties, then config order."""
    from ensembles._evaluate import EnsembleRow
    from evonas.export import select_row

    parsed = [EnsembleRow.from_dict(r) for r in rows]
    saep = [r for r in parsed if r.kind == "pruner" and r.pruner in SAEP]
    return select_row(saep or parsed).label


def _export(paths: StagePaths, label: str) -> dict[str, Any]:
    """Write ``export/`` from the ensemble stage (once; a finished export is read back)."""
    from evonas.export import read_export, write_export

    if (paths.export / "ensemble.yaml").is_file():
        record = read_export(paths.export)
        if record.get("label") == label:
            return record
        raise RunDirError(
            f"{str(paths.export)!r} holds the sub-ensemble {record.get('label')!r}, not {label!r}; "
            "move it away and resume to export again"
        )
    return write_export(paths.of("ensemble"), paths.export, label)


def _truth(prepared: PreparedPipeline, config: PipelineConfig, arch: str) -> dict[str, Any]:
    if prepared.tables is None:
        return {}
    genotype = prepared.space.parse(arch)
    if not prepared.tables.has(genotype):
        return {m: None for m in config.report}
    return {m: json_float(prepared.tables.query(genotype, m)) for m in config.report}


def _summary(
    config: PipelineConfig,
    prepared: PreparedPipeline,
    sn: RunResult,
    search: RunResult,
    ensemble: RunResult,
    export: dict[str, Any],
    label: str,
    rescored: list[dict[str, Any]],
) -> dict[str, Any]:
    from ensembles._evaluate import BEST_SINGLE, FULL

    from ensembles._members import Member

    members_dir = ensemble.run_dir / "pool" / "members"

    final = []
    for name in ensemble.summary.get("members", []):
        member = Member.load(members_dir / name)
        metrics = member.metadata.get("metrics") or {}
        arch = member.arch_str or ""
        final.append({
            "name": name,
            "arch": arch,
            "num_params": member.num_params,
            "val_acc": metrics.get("val_acc"),
            "test_acc": metrics.get("test_acc"),
            "truth": _truth(prepared, config, arch),
        })
    rows = {r["label"]: r for r in ensemble.summary.get("rows", [])}
    chosen = rows[label]
    objective = config.search.fitness.objectives[0]
    best = search.summary.get("best") or {}
    pick_metrics = best.get("metrics") or {}
    pick = {
        "arch": best.get("arch"),
        # the fitness in the metric's own units (the neighbourhood aggregate for that fitness)
        "fitness": pick_metrics.get(f"fitness/{objective.metric}"),
        objective.metric: pick_metrics.get(objective.metric),
        "truth": {m: pick_metrics.get(m) for m in config.report},
    }
    sn_summary = sn.summary
    return {
        "stages": {
            "supernet": {
                "dir": "supernet",
                "steps": sn_summary.get("steps"),
                "final_loss": sn_summary.get("final_loss"),
                "proxy_memory": sn_summary.get("proxy_memory"),
                "predictor_fitted": sn_summary.get("predictor_fitted"),
            },
            "search": {
                "dir": "search",
                "candidates": search.summary.get("candidates"),
                "used_evaluations": search.summary.get("used_evaluations"),
                "stop_reason": search.summary.get("stop_reason"),
            },
            "final": {"dir": "ensemble/pool/members", "members": final, "rescored": rescored},
            "ensemble": {
                "dir": "ensemble",
                "rows": [
                    {k: r.get(k) for k in ("label", "kind", "members", "num_members", "val_acc", "test_acc")}
                    for r in ensemble.summary.get("rows", [])
                ],
            },
            "export": {"dir": EXPORT_DIR, "label": label},
        },
        "pick": pick,
        "objective": f"{objective.direction} {objective.metric}",
        "report": list(config.report),
        "result": {
            "label": label,
            "members": list(chosen["members"]),
            "archs": [m["arch"] for m in final if m["name"] in chosen["members"]],
            "num_members": chosen["num_members"],
            "pool_size": len(final),
            "val_acc": chosen["val_acc"],
            "test_acc": chosen["test_acc"],
            "best_single_test_acc": rows.get(BEST_SINGLE, {}).get("test_acc"),
            "full_pool_test_acc": rows.get(FULL, {}).get("test_acc"),
            "export": EXPORT_DIR,
        },
        "export": {k: export.get(k) for k in ("label", "test_acc", "val_acc")},
    }


def _fmt(value: Any, digits: int = 2) -> str:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return "-"
    return f"{v:.{digits}f}" if math.isfinite(v) else str(v)


def format_summary(summary: dict[str, Any], run_dir: Path | None = None) -> str:
    """The pipeline's summary for the terminal: the pick, the final members and the ensemble."""
    lines = [] if run_dir is None else [f"run directory: {run_dir}"]
    stages = summary["stages"]
    sn = stages["supernet"]
    lines.append(f"supernet: {sn['steps']} steps, final loss {_fmt(sn['final_loss'], 4)}, proxy predictor fitted on "
                 f"{sn.get('proxy_memory') or 0} labelled cells")
    pick = summary["pick"]
    truth = "".join(f", {k} {_fmt(v)}" for k, v in (pick.get("truth") or {}).items())
    lines.append(f"search: {stages['search']['candidates']} candidates; pick {pick['arch']} "
                 f"({summary.get('objective', 'fitness')}: {_fmt(pick.get('fitness'), 4)}{truth})")
    report = summary.get("report") or []
    head = "| member | architecture | params | val acc | test acc |" + "".join(f" {m} |" for m in report)
    lines += ["final members (trained from scratch):", head, "|" + " --- |" * (5 + len(report))]
    for m in stages["final"]["members"]:
        lines.append(
            f"| {m['name']} | {m['arch']} | {m['num_params']} | {_fmt(m['val_acc'])} | {_fmt(m['test_acc'])} |"
            + "".join(f" {_fmt((m.get('truth') or {}).get(k))} |" for k in report)
        )
    res = summary["result"]
    lines.append(
        f"ensemble {res['label']!r}: {res['num_members']} of {res['pool_size']} members kept "
        f"({', '.join(res['members'])}); test accuracy {_fmt(res['test_acc'])} % vs best single member "
        f"{_fmt(res['best_single_test_acc'])} % and full pool {_fmt(res['full_pool_test_acc'])} %"
    )
    where = str(run_dir) if run_dir is not None else "RUN_DIR"
    lines.append(f"exported to {os.path.join(where, EXPORT_DIR)}: evonas.load_ensemble({where!r}) or "
                 f"`evonas predict {where} IMAGES...`; `evonas report {where}` for the report")
    return "\n".join(lines)


PIPELINE = PipelineRun()


def run_pipeline(
    config_path: str | os.PathLike[str] | None,
    overrides: list[str] | tuple[str, ...] = (),
    run_dir: str | os.PathLike[str] | None = None,
    progress: bool | None = None,
) -> RunResult:
    """Start a pipeline run (:func:`evonas.runs.start_run` of the ``pipeline`` kind)."""
    return start_run(PIPELINE.name, config_path, overrides, run_dir, progress)


def resume_pipeline(run_dir: str | os.PathLike[str], progress: bool | None = None) -> RunResult:
    """Continue the pipeline run in ``run_dir`` from its first unfinished stage."""
    return resume_run(run_dir, (), progress, kind=PIPELINE.name)


__all__ = ["PIPELINE", "PipelineRun", "choose_export", "format_summary", "resume_pipeline", "run_pipeline"]
