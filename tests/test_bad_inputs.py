"""A corpus of bad input to every command of the ``evonas`` command line.

Every case ends with exactly one line on stderr (``evonas: error: ...``, or argparse's
``evonas ...: error: ...`` for flag errors) naming what is wrong, exit code 2 and nothing
written: the finished run directories of the module (a search on the NAS-Bench-201
table, a supernet, an ensemble with its export and a predictor harness run, all tiny), the
module's config files and everything in the case's own folder (configs, corrupted copies of those runs) are
byte-identical afterwards. Cases fail before any training, so each takes milliseconds to
a second; they call :func:`evonas.cli.main` in-process.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from evonas.cli import main
from evonas.config import MAX_SEED, load_config
from evonas.runs._rundir import record_checksum

ARCHS = [
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|",
    "|nor_conv_1x1~0|+|skip_connect~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~1|avg_pool_3x3~2|",
]
COMMANDS = {
    "search": ["search"],
    "supernet": ["supernet", "train"],
    "ensemble": ["ensemble", "build"],
    "predictors": ["predictors", "evaluate"],
    "pipeline": ["run"],
}
KINDS = ("search", "supernet", "ensemble", "predictors")  # the kinds with a finished run in the fixture
BILLION_LAUGHS = "".join(
    f"{name}: &{name} [{', '.join([f'*{prev}'] * 9 if prev else ['lol'] * 9)}]\n"
    for prev, name in zip(["", *"abcdefgh"], "abcdefghi")
)


def configs(nb201: Path) -> dict[str, dict[str, Any]]:
    """A valid, tiny config of every run kind (only the first four are ever run)."""
    table = [{"name": "nb201", "params": {"path": str(nb201)}}]
    return {
        "search": {
            "evaluator": {"name": "tabular", "params": {"tables": table}},
            "fitness": {"objectives": [{"metric": "cifar10-valid_valid_acc_12ep"}]},
            "strategy": {"name": "rea", "params": {"population_size": 5, "tournament_size": 2}},
            "budget": {"evaluations": 12},
            "progress": False,
        },
        "supernet": {
            "dataset": {"name": "digits", "max_train": 192, "max_val": 48, "max_test": 16, "val_fraction": 0.2},
            "supernet": {"name": "nb201", "params": {"channels": 4, "cells_per_stage": 1}},
            "train": {"batch_size": 32, "steps": 6, "compute": {"device": "cpu"}},
            "evaluation": {"bn_batches": 1, "batch_size": 32, "val_images": 32},
            "proxy": {"every": 3, "archs_per_round": 6, "min_memory": 6, "predictor": "linear"},
            "checkpoint_every": 3,
            "log_every": 2,
            "progress": False,
        },
        "ensemble": {
            "seed": 0,
            "candidates": {"archs": ARCHS},
            "dataset": {"name": "digits", "val_fraction": 0.25, "seed": 0, "max_train": 300},
            "train": {"epochs": 1, "batch_size": 64, "optim": {"lr": 0.05}, "compute": {"device": "cpu"}},
            "network": {"name": "nb201", "params": {"channels": 4, "cells_per_stage": 1}},
            "pruners": [{"name": "top_k", "params": {"size": 2}}],
            "diversity": ["disagreement"],
            "progress": False,
        },
        "predictors": {
            "tables": table,
            "predictors": ["linear"],
            "train_sizes": [5],
            "test_size": 20,
            "trials": 1,
            "train_pool": 20,
            "seed": 3,
            "zero_cost": None,
            "progress": False,
        },
        "pipeline": {
            "seed": 3,
            "dataset": {"name": "digits", "val_fraction": 0.25, "max_train": 300},
            "network": {"name": "nb201", "params": {"channels": 4, "cells_per_stage": 1}},
            "train": {"epochs": 1, "batch_size": 64},
            "supernet": {"supernet": {"name": "nb201", "params": {"channels": 4, "cells_per_stage": 1}},
                         "train": {"steps": 6, "batch_size": 32}},
            "search": {"strategy": {"name": "rea", "params": {"population_size": 4, "tournament_size": 2}},
                       "budget": {"evaluations": 40}},
            "final": {"members": 2},
            "ensemble": {"pruners": [{"name": "top_k", "params": {"max_fraction": 1.0}}]},
            "progress": False,
        },
    }


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every entry under ``root``: a file's bytes, None for a folder (nothing ignored)."""
    return {str(p.relative_to(root)): (None if p.is_dir() else p.read_bytes()) for p in sorted(root.rglob("*"))}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, nb201_path: Path) -> dict[str, Path]:
    """Config files and finished runs of every kind (the ensemble with ``export/``)."""
    from evonas.export import write_export

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("bad-inputs")
    out: dict[str, Path] = {}
    try:
        for kind, raw in configs(nb201_path).items():
            path = root / f"{kind}.yaml"
            path.write_text(yaml.safe_dump(raw, sort_keys=False))
            out[f"{kind}.yaml"] = path
            if kind in KINDS:
                run = root / "runs" / kind
                assert main([*COMMANDS[kind], "--config", str(path), "--run-dir", str(run), "--no-progress"]) == 0
                out[kind] = run
        write_export(out["ensemble"], out["ensemble"] / "export")
    finally:
        torch.set_num_threads(threads)
    return out


@pytest.fixture(scope="module")
def pristine(world: dict[str, Path]) -> dict[str, bytes | None]:
    return snapshot(world["search"].parent.parent)


@dataclasses.dataclass
class Ctx:
    """What a case builds its command line from; it writes only under ``tmp``."""

    world: dict[str, Path]
    tmp: Path

    def config(self, kind: str) -> str:
        return str(self.world[f"{kind}.yaml"])

    def run(self, kind: str) -> str:
        return str(self.world[kind])

    def write(self, name: str, content: str | bytes) -> str:
        path = self.tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        return str(path)

    def copy(self, kind: str) -> Path:
        target = self.tmp / f"copy-{kind}"
        shutil.copytree(self.world[kind], target, symlinks=True)
        return target

    def corrupt(self, kind: str, name: str, content: str | bytes) -> str:
        run = self.copy(kind)
        (run / name).write_bytes(content.encode() if isinstance(content, str) else content)
        return str(run)

    def edit_config(self, kind: str, name: str, change: Callable[[dict[str, Any]], Any]) -> str:
        run = self.copy(kind)
        data = yaml.safe_load((run / name).read_text())
        change(data)
        (run / name).write_text(yaml.safe_dump(data, sort_keys=False))
        return str(run)

    def edit_log(self, kind: str, change: Callable[[list[dict[str, Any]]], None], chained: bool = True) -> str:
        """A copy whose log ``change`` edited; ``chained``: checksums recomputed (else a
        log without checksums, as written before they existed)."""
        run = self.copy(kind)
        records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines() if line.strip()]
        change(records)
        previous, lines = "", []
        for record in records:
            body = {k: v for k, v in record.items() if k != "chk"}
            if chained:
                previous = record_checksum(previous, body)
                body["chk"] = previous
            lines.append(json.dumps(body))
        (run / "log.jsonl").write_text("".join(line + "\n" for line in lines))
        return str(run)


Case = Callable[[Ctx], tuple[list[str], str]]
CASES: list[Any] = []


def case(name: str, build: Case) -> None:
    CASES.append(pytest.param(build, id=name))


def drop(record_type: str, key: str) -> Callable[[list[dict[str, Any]]], None]:
    def change(records: list[dict[str, Any]]) -> None:
        for r in records:
            if r.get("type") == record_type:
                r.pop(key)

    return change


def put(record_type: str, key: str, value: Any) -> Callable[[list[dict[str, Any]]], None]:
    def change(records: list[dict[str, Any]]) -> None:
        for r in records:
            if r.get("type") == record_type:
                r[key] = value

    return change


def _setter(keys: tuple[str, ...], value: Any) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        node = data
        for k in keys[:-1]:
            node = node[k]
        node[keys[-1]] = value

    return change


# ====================================================================== config files
BAD_FILES: list[tuple[str, str | bytes | None, str]] = [
    ("missing", None, "does not exist"),
    ("empty", "", "is empty (or null); it must hold a mapping of keys to values"),
    ("only-comments", "# seed: 1\n\n", "is empty (or null)"),
    ("not-utf8", "seed: 1  # caf\xe9\n".encode("latin-1"), "is not UTF-8 text (byte 14)"),
    ("invalid-yaml", "seed: [\n", "is not valid YAML at line 2"),
    ("a-list", "- seed\n- 1\n", "must hold a mapping of keys to values; it holds a list"),
    ("a-scalar", "hello\n", "must hold a mapping of keys to values; it holds a string"),
    ("billion-laughs", BILLION_LAUGHS, "uses the YAML alias *a at line 2; evonas does not expand aliases"),
    ("merge-key-alias", "base: &b {seed: 1}\nother:\n  <<: *b\n", "uses the YAML alias *b"),
    ("deep-nesting", "seed: " + "[" * 500 + "]" * 500 + "\n", "nests mappings or lists deeper than 64 levels"),
    ("unknown-key", "sed: 1\n", "unknown key 'sed'; valid keys:"),
    ("integer-of-5000-digits", "seed: " + "9" * 5000 + "\n", "holds a value Python cannot read"),
]
for _kind in COMMANDS:
    for _name, _content, _fragment in BAD_FILES:
        def _file_case(ctx: Ctx, kind: str = _kind, name: str = _name, content: Any = _content,
                       fragment: str = _fragment) -> tuple[list[str], str]:
            path = str(ctx.tmp / f"{name}.yaml") if content is None else ctx.write(f"{name}.yaml", content)
            return [*COMMANDS[kind], "--config", path, "--run-dir", str(ctx.tmp / "new")], fragment

        case(f"{_kind}-config-{_name}", _file_case)
    case(f"{_kind}-config-is-a-directory",
         lambda ctx, kind=_kind: ([*COMMANDS[kind], "--config", str(ctx.tmp)], "is a directory; give the path of a YAML file"))
    case(f"{_kind}-config-is-a-device",
         lambda ctx, kind=_kind: ([*COMMANDS[kind], "--config", os.devnull], "is not a regular file"))

# ========================================================================= overrides
OVERRIDES: dict[str, list[tuple[str, str]]] = {
    "search": [
        ("seed", "override 'seed' must have the form key.sub=value"),
        ("budget..evaluations=3", "has an empty key part"),
        ("seed=[1", "value '[1' is not valid YAML"),
        ("seed=[&a [1, 2], *a]", "uses the YAML alias *a"),
        ("bogus=1", "unknown key 'bogus'; valid keys: budget, checkpoint_every"),
        ("strategy.params.popsize=3", "unknown key 'strategy.params.popsize'; valid keys: population_size, tournament_size"),
        ("budget.minutes=3", "unknown key 'budget.minutes'; valid keys: evaluations, seconds"),
        ("evaluator.params.tables.0.params.bogus=1", "unknown key 'evaluator.params.tables[0].params.bogus'"),
        ("seed=abc", "invalid value 'abc' for 'seed'; expected an integer"),
        ("seed=1.5", "invalid value 1.5 for 'seed'; expected an integer"),
        ("seed=-1", "invalid value -1 for 'seed'; expected an integer in [0, 4294967295]"),
        (f"seed={2**40}", f"invalid value {2**40} for 'seed'; expected an integer in [0, 4294967295]"),
        ("progress=maybe", "invalid value 'maybe' for 'progress'; expected true or false"),
        ("budget.seconds=.inf", "invalid value inf for 'budget.seconds'; expected a finite number > 0 or null"),
        ("budget.seconds=.nan", "invalid value nan for 'budget.seconds'; expected a finite number"),
        ("budget.seconds=-1e-3", "invalid value -0.001 for 'budget.seconds'"),
        ("budget.evaluations=0", "invalid value 0 for 'budget.evaluations'; expected an integer in [1, 1000000000]"),
        ("budget.evaluations=100000000000000", "invalid value 100000000000000 for 'budget.evaluations'"),
        ("budget={evaluations: null, seconds: null}", "budget needs 'evaluations' or 'seconds'"),
        ("checkpoint_every=0", "invalid value 0 for 'checkpoint_every'"),
        ("strategy.params.population_size=100000000000", "expected an integer in [1, 100000]"),
        ("strategy.params.tournament_size=1000000000", "'strategy.params.tournament_size'; expected an integer in [1, 100000]"),
        ("strategy={name: nsga2, params: {population_size: 100000000000}}", "expected an integer in [2, 100000]"),
        ("strategy={name: nsga2, params: {crossover_prob: 1.5}}", "'strategy.params.crossover_prob'; expected a finite number in [0, 1]"),
        ("strategy.name=cmaes", "unknown strategy 'cmaes'; valid choices: bananas, npenas, nsga2, optuna_nsga2, optuna_tpe, random, rea"),
        ("space.name=darts", "unknown search space 'darts'; valid choices:"),
        ("evaluator.name=surrogate", "unknown evaluator 'surrogate'; valid choices:"),
        ("executor.name=dask", "unknown executor 'dask'; valid choices: ray, serial"),
        ("executor.params.timeout_s=0", "invalid value 0.0 for 'executor.params.timeout_s'"),
        ("fitness.name=neighborhood", "invalid value 'neighborhood' for 'fitness.name'; valid values: 'plain', 'neighbourhood'"),
        ("fitness.objectives=[{metric: acc}]", "acc"),
        ("fitness.objectives.0.direction=up", "invalid value 'up' for 'fitness.objectives[0].direction'"),
        ("fitness.objectives.3.metric=x", "'3' is not an index of a list of 1 item(s)"),
        ("evaluator.params.tables.0.params.path=/nonexistent/nb201.csv.gz", "'/nonexistent/nb201.csv.gz' does not exist"),
        ("evaluator.params.tables.0.name=nope", "unknown table 'nope'"),
        ("seed=" + "9" * 5000, "holds a value Python cannot read"),
    ],
    "supernet": [
        ("supernet.params.channels=100000000000000000000",
         "invalid value 100000000000000000000 for 'supernet.params.channels'; expected an integer in [1, 256]"),
        ("supernet.params.channels=0", "'supernet.params.channels'; expected an integer in [1, 256]"),
        ("supernet.params.cells_per_stage=1000000000", "'supernet.params.cells_per_stage'; expected an integer in [1, 32]"),
        ("supernet.name=darts", "unknown supernet 'darts'"),
        ("sampler.name=evolution", "unknown sampler 'evolution'"),
        ("sampler={name: novelty, params: {archive_size: 100000000000}}", "'sampler.params.archive_size'; expected an integer in [1, 1000000]"),
        ("sampler={name: novelty, params: {kk: 1}}", "unknown key 'sampler.params.kk'"),
        ("train.batch_size=1000000000000", "'train.batch_size'; expected an integer in [1, 65536]"),
        ("train.steps=0", "'train.steps'; expected an integer in [1, 1000000000]"),
        ("train.archs_per_step=10000000", "'train.archs_per_step'; expected an integer in [1, 65536]"),
        ("train.optim.lr=0", "invalid value 0.0 for 'train.optim.lr'"),
        ("train.optim.momentum=1", "'train.optim.momentum'; expected a finite number in [0, 1)"),
        ("train.compute.num_threads=100000", "'train.compute.num_threads'; expected an integer in [1, 1024]"),
        ("train.compute.amp=sometimes", "'train.compute.amp'"),
        ("evaluation.batch_size=10000000000", "'evaluation.batch_size'; expected an integer in [1, 65536]"),
        ("evaluation.val_images=0", "'evaluation.val_images'"),
        ("proxy.archs_per_round=1000000000000", "'proxy.archs_per_round'; expected an integer in [1, 1000000]"),
        ("proxy.ensemble=1000", "'proxy.ensemble'; expected an integer in [1, 100]"),
        ("proxy.predictor=oracle", "oracle"),
        ("dataset.name=imagenet", "unknown dataset 'imagenet'"),
        ("dataset.val_fraction=1.5", "val_fraction"),
        ("dataset.max_train=0", "max_train"),
        ("dataset.bogus=1", "unknown key 'dataset.bogus'"),
        (f"seed={2**32}", "'seed'; expected an integer in [0, 4294967295]"),
        ("proxy={every: 3, archs_per_round: 6, min_memory: 6, predictor: gae, predictor_params: {hidden: 10000000000}}",
         "invalid value 10000000000 for 'hidden' of GAEPredictor; expected an integer in [1, 4096]"),
        ("proxy.predictor_params={alpha: -1}", "invalid value -1 for 'alpha' of LinearPredictor"),
        ("dataset={name: imagefolder, root: /tmp, image_size: 1000000}", "'image_size'; expected an integer in [1, 4096]"),
    ],
    "ensemble": [
        ("network.params.channels=100000000000", "'network.params.channels'; expected an integer in [1, 256]"),
        ("network.params.cells_per_stage=0", "'network.params.cells_per_stage'; expected an integer in [1, 32]"),
        ("network.name=resnet", "unknown decoder 'resnet'"),
        ("candidates.archs=[]", "the candidate list is empty"),
        ("candidates.archs=['|bogus~0|']", "malformed nb201 architecture '|bogus~0|'"),
        ("candidates.archs=['|nor_conv_3x3~1|+|none~0|none~1|+|none~0|none~1|none~2|']", "must read from node 0"),
        ("candidates.top=100000000", "'candidates.top'"),
        ("train.epochs=0", "'train.epochs'; expected an integer in [1, 1000000000]"),
        ("train.num_workers=100000", "'train.num_workers'; expected an integer in [0, 1024]"),
        ("train.eval_batch_size=1000000", "'train.eval_batch_size'; expected an integer in [1, 65536]"),
        ("ece_bins=0", "'ece_bins'; expected an integer in [1, 10000]"),
        ("ece_bins=1000000000000", "'ece_bins'; expected an integer in [1, 10000]"),
        ("pruners=[{name: magic}]", "unknown pruner 'magic'"),
        ("pruners=[{name: top_k, params: {size: 5}}]", "size"),
        ("diversity=[entropy]", "entropy"),
        ("seed=-3", "'seed'; expected an integer in [0, 4294967295]"),
        ("pruners=[{name: caruana, params: {iterations: 1000000000000}}]", "'iterations' of pruner 'caruana'"),
    ],
    "predictors": [
        ("trials=0", "invalid value 0 for 'trials'; expected an integer in [1, 10000]"),
        ("trials=100000000000", "invalid value 100000000000 for 'trials'; expected an integer in [1, 10000]"),
        ("train_sizes=[1]", "'train_sizes[0]'; expected an integer in [2, 1000000]"),
        ("train_sizes=[100000000000]", "'train_sizes[0]'; expected an integer in [2, 1000000]"),
        ("train_sizes=[]", "train_sizes must list at least one size"),
        ("train_sizes=[5, 5]", "train_sizes lists a size twice"),
        ("test_size=1000000000", "'test_size'; expected an integer in [2, 1000000]"),
        ("train_pool=3", "'train_pool'"),
        ("top_fraction=0", "'top_fraction'"),
        ("direction=up", "invalid value 'up' for 'direction'"),
        ("predictors=[oracle]", "oracle"),
        ("params={linear: 5}", "invalid value 5 for 'params.linear'; expected a mapping"),
        ("threads_per_trial=0", "'threads_per_trial'; expected an integer in [1, 1024]"),
        ("zero_cost.batch_size=1", "'zero_cost.batch_size'; expected an integer in [2, 65536]"),
        ("zero_cost.init_seed=-1", "'zero_cost.init_seed'"),
        ("params={linear: {bogus: 1}}", "unknown hyper-parameter(s) 'bogus' for predictor 'linear'"),
    ],
    "pipeline": [
        ("final.members=1000000000000", "'final.members'; expected an integer in [1, 1000000]"),
        ("supernet.supernet.params.channels=100000000000000000000", "'supernet.supernet.params.channels'; expected an integer in [1, 256]"),
        ("network.params.channels=100000000000000000000", "'network.params.channels'; expected an integer in [1, 256]"),
        ("search.budget.seconds=.inf", "'search.budget.seconds'; expected a finite number > 0 or null"),
        ("search.strategy.params.population_size=100000000000", "expected an integer in [1, 100000]"),
        ("ensemble.ece_bins=0", "'ensemble.ece_bins'"),
        ("seed=-1", "'seed'; expected an integer in [0, 4294967295]"),
        ("bogus=1", "unknown key 'bogus'"),
        ("dataset.name=imagenet", "unknown dataset 'imagenet'"),
        ("supernet.bogus=1", "unknown key 'supernet.bogus'"),
    ],
}
for _kind, _items in OVERRIDES.items():
    for _override, _fragment in _items:
        case(f"{_kind}-override-{_override}", lambda ctx, kind=_kind, o=_override, f=_fragment: (
            [*COMMANDS[kind], "--config", ctx.config(kind), "--run-dir", str(ctx.tmp / "new"), o], f))


def _table_override(ctx: Ctx, content: bytes | None) -> tuple[list[str], str]:
    path = str(ctx.tmp) if content is None else ctx.write("table.csv", content)
    return ["search", "--config", ctx.config("search"), "--run-dir", str(ctx.tmp / "new"),
            f"evaluator.params.tables.0.params.path={path}"], "table"


case("search-table-is-a-directory", lambda ctx: _table_override(ctx, None))
case("search-file-table-nested-too-deep", lambda ctx: (
    ["search", "--config", ctx.config("search"), "--run-dir", str(ctx.tmp / "new"),
     f"evaluator.params.tables=[{{name: file, params: {{path: {ctx.write('t.json', '[' * 100_000 + ']' * 100_000)}}}}}]"],
    "t.json' nests JSON values too deeply to be a table"))
case("search-file-table-integer-of-5000-digits", lambda ctx: (
    ["search", "--config", ctx.config("search"), "--run-dir", str(ctx.tmp / "new"),
     f"evaluator.params.tables=[{{name: file, params: {{path: {ctx.write('t.json', '[' + '9' * 5000 + ']')}}}}}]"],
    "t.json' is not a readable JSON file"))
case("predictors-rf-with-a-million-times-too-many-trees", lambda ctx: (
    ["predictors", "evaluate", "--config", ctx.config("predictors"), "--run-dir", str(ctx.tmp / "new"), "predictors=[rf]",
     "params={rf: {n_estimators: 10000000000}}"],
    "invalid value 10000000000 for 'n_estimators' of RandomForestPredictor; expected an integer in [1, 100000]"))
case("predictors-gin-too-wide", lambda ctx: (
    ["predictors", "evaluate", "--config", ctx.config("predictors"), "--run-dir", str(ctx.tmp / "new"), "predictors=[gin]",
     "params={gin: {hidden: 10000000000}}"], "'hidden' of GNNPredictor; expected an integer in [1, 4096]"))
case("search-table-not-utf8", lambda ctx: _table_override(ctx, b"arch,acc\n\xff\xfe,1\n"))
case("search-table-garbage", lambda ctx: _table_override(ctx, b"\x1f\x8b\x08garbage"))
case("ensemble-search-run-missing", lambda ctx: (
    ["ensemble", "build", "--config", ctx.config("ensemble"), "--run-dir", str(ctx.tmp / "new"),
     "candidates={search_run: /nonexistent/run, top: 2}"], "'/nonexistent/run'"))
case("ensemble-search-run-of-another-kind", lambda ctx: (
    ["ensemble", "build", "--config", ctx.config("ensemble"), "--run-dir", str(ctx.tmp / "new"),
     f"candidates={{search_run: {ctx.run('supernet')}, top: 2}}"], "not a 'search' run"))
case("supernet-imagefolder-root-missing", lambda ctx: (
    ["supernet", "train", "--config", ctx.config("supernet"), "--run-dir", str(ctx.tmp / "new"),
     "dataset={name: imagefolder, root: /nonexistent/images}"], "/nonexistent/images"))
case("search-run-dir-is-a-file", lambda ctx: (
    ["search", "--config", ctx.config("search"), "--run-dir", ctx.write("file", "x")],
    "exists and is not a directory"))
case("search-run-dir-is-a-finished-run", lambda ctx: (
    ["search", "--config", ctx.config("search"), "--run-dir", ctx.run("search")], "already exists and is not empty"))
case("search-plugin-missing", lambda ctx: (
    ["search", "--config", ctx.config("search"), "--plugin", "no_such_plugin_module"], "no_such_plugin_module"))

# ================================================================ run directories
for _kind in KINDS:
    _resume = COMMANDS[_kind] + ["--resume"]
    for _cmd, _verb in ((_resume, "resume"), (["report"], "report")):
        case(f"{_kind}-{_verb}-config-invalid-yaml", lambda ctx, k=_kind, c=_cmd: (
            [*c, ctx.corrupt(k, "config.yaml", "seed: [\n")], "config.yaml' is not valid YAML at line 2"))
        case(f"{_kind}-{_verb}-config-not-utf8", lambda ctx, k=_kind, c=_cmd: (
            [*c, ctx.corrupt(k, "config.yaml", b"seed: \xff\n")], "config.yaml' is not UTF-8 text (byte 6)"))
        case(f"{_kind}-{_verb}-config-billion-laughs", lambda ctx, k=_kind, c=_cmd: (
            [*c, ctx.corrupt(k, "config.yaml", BILLION_LAUGHS)], "config.yaml' uses the YAML alias *a"))
        case(f"{_kind}-{_verb}-config-empty", lambda ctx, k=_kind, c=_cmd: (
            [*c, ctx.corrupt(k, "config.yaml", "")], "config.yaml' is empty (or null)"))
        case(f"{_kind}-{_verb}-config-a-list", lambda ctx, k=_kind, c=_cmd: (
            [*c, ctx.corrupt(k, "config.yaml", "- 1\n")], "config.yaml' must hold a mapping of keys to values"))
        case(f"{_kind}-{_verb}-config-wrong-type", lambda ctx, k=_kind, c=_cmd: (
            [*c, ctx.edit_config(k, "config.yaml", _setter(("seed",), "x"))], "invalid value 'x' for 'seed'"))
        case(f"{_kind}-{_verb}-meta-invalid-yaml", lambda ctx, k=_kind, c=_cmd: (
            [*c, ctx.corrupt(k, "meta.yaml", "kind: [\n")], "meta.yaml' is not valid YAML at line 2"))
        case(f"{_kind}-{_verb}-meta-not-utf8", lambda ctx, k=_kind, c=_cmd: (
            [*c, ctx.corrupt(k, "meta.yaml", b"kind: \xfe\xff\n")], "meta.yaml' is not UTF-8 text"))
        case(f"{_kind}-{_verb}-meta-a-list", lambda ctx, k=_kind, c=_cmd: (
            [*c, ctx.corrupt(k, "meta.yaml", "- search\n")], "meta.yaml' must hold a mapping"))
        case(f"{_kind}-{_verb}-log-not-utf8", lambda ctx, k=_kind, c=_cmd: (
            [*c, ctx.corrupt(k, "log.jsonl", b'{"type": "x\xff"}\n{"type": "y"}\n')], "is corrupt at line 1"))
        case(f"{_kind}-{_verb}-log-integer-of-5000-digits", lambda ctx, k=_kind, c=_cmd: (
            [*c, ctx.corrupt(k, "log.jsonl", '{"type": "x", "n": ' + "9" * 5000 + '}\n{"type": "y"}\n')],
            "is corrupt at line 1"))
        case(f"{_kind}-{_verb}-log-deeply-nested-line", lambda ctx, k=_kind, c=_cmd: (
            [*c, ctx.corrupt(k, "log.jsonl", "[" * 100_000 + "]" * 100_000 + "\n{}\n")], "is corrupt at line 1"))
        case(f"{_kind}-{_verb}-log-edited", lambda ctx, k=_kind, c=_cmd: (
            [*c, _edited_log(ctx, k)], "was edited or spliced at line 1 (checksum mismatch)"))
        case(f"{_kind}-{_verb}-log-spliced", lambda ctx, k=_kind, c=_cmd: (
            [*c, _spliced_log(ctx, k)], "records with and without checksums"))
    case(f"{_kind}-report-meta-unknown-kind", lambda ctx, k=_kind: (
        ["report", ctx.edit_config(k, "meta.yaml", _setter(("kind",), "gardening"))], "holds a 'gardening' run; known kinds:"))
    case(f"{_kind}-report-meta-plugins-malformed", lambda ctx, k=_kind: (
        ["report", ctx.edit_config(k, "meta.yaml", _setter(("plugins",), 3))], "malformed 'plugins' entry: 3"))
    case(f"{_kind}-resume-result-malformed", lambda ctx, k=_kind: (
        # an ensemble build without a complete summary is unfinished: --resume completes it
        [*COMMANDS[k], "--resume", ctx.corrupt(k, "result.json", '{"complete": true, "rows": [{"x": 1}]}\n' if k == "ensemble" else "{}\n")],
        f"result.json' is not the summary of a {k} run ("))


def _edited_log(ctx: Ctx, kind: str) -> str:
    """A copy whose log has one value changed without its checksum."""
    run = ctx.copy(kind)
    lines = (run / "log.jsonl").read_text().splitlines()
    record = json.loads(lines[0])
    record["type"] = str(record["type"]) + "x"
    lines[0] = json.dumps(record)
    (run / "log.jsonl").write_text("\n".join(lines) + "\n")
    return str(run)


def _spliced_log(ctx: Ctx, kind: str) -> str:
    """A copy whose log has a record without a checksum appended."""
    run = ctx.copy(kind)
    with open(run / "log.jsonl", "a") as fh:
        fh.write(json.dumps({"type": "note"}) + "\n" + json.dumps({"type": "note"}) + "\n")
    return str(run)


# The record fields each run kind reads back: a record lacking one or holding another
# type is refused, with checksums recomputed over it or in a log without checksums.
_READ: dict[str, dict[str, list[tuple[str, Any, str]]]] = {
    "search": {
        "eval": [("eval_id", "x", "expected an integer"), ("arch", None, "expected a list of integers"),
                 ("seed", 1.5, "expected an integer"), ("evaluation", {"metrics": {}, "cost": 1.0}, "'evaluation.failed'")],
        "candidate": [("cand_id", None, "expected an integer"), ("metrics", "x", "expected a mapping"),
                      ("values", ["x"], "values=['x']; expected a list of a number"), ("failed", "no", "expected true or false"),
                      ("used_seconds", "soon", "used_seconds='soon'")],
    },
    "supernet": {
        "step": [("step", "x", "expected an integer"), ("loss", "x", "loss='x'"), ("lr", None, "lr=None")],
        "proxy": [("archs", None, "expected a list"), ("archs", [["a"]], "archs[0][0]='a'"),
                  ("val_loss", "x", "val_loss='x'"), ("memory", 1.5, "expected an integer"),
                  ("fitted", "yes", "expected true or false")],
    },
    "ensemble": {},
    "predictors": {
        "trial": [("predictor", 3, "expected a string"), ("train_size", "x", "expected an integer"),
                  ("kendall_tau", None, "kendall_tau=None"), ("failed", None, "expected true or false"),
                  ("error", 5, "expected a string")],
    },
}
for _kind, _types in _READ.items():
    for _type, _fields in _types.items():
        for _field, _value, _fragment in _fields:
            _command = ["report"] if _kind != "supernet" else ["supernet", "rank"]
            if f"{_kind}-log-{_type}-lacks-{_field}" not in {p.id for p in CASES}:
                case(f"{_kind}-log-{_type}-lacks-{_field}", lambda ctx, k=_kind, t=_type, f=_field, c=_command: (
                    [*c, ctx.edit_log(k, drop(t, f))], f"its {t!r} record lacks the field {f!r}"))
            case(f"{_kind}-log-{_type}-{_field}-is-{_value!r}", lambda ctx, k=_kind, t=_type, f=_field, v=_value, m=_fragment: (
                [*COMMANDS[k], "--resume", ctx.edit_log(k, put(t, f, v))], m))
        case(f"{_kind}-legacy-log-{_type}-lacks-{_fields[0][0]}", lambda ctx, k=_kind, t=_type, f=_fields[0][0]: (
            ["report", ctx.edit_log(k, drop(t, f), chained=False)], f"its {t!r} record lacks the field {f!r}"))
case("ensemble-log-member-failed-malformed", lambda ctx: (
    ["report", ctx.edit_log("ensemble", lambda rs: rs.append({"type": "member_failed", "error": "x"}))],
    "its 'member_failed' record lacks the field 'name'"))
case("search-log-eval-metrics-not-numbers", lambda ctx: (
    ["search", "--resume", ctx.edit_log("search", lambda rs: rs[0]["evaluation"]["metrics"].update(acc="high"))],
    "evaluation.metrics.acc='high'"))

# plan.yaml of an ensemble run
PLANS: list[tuple[str, Callable[[dict[str, Any]], Any] | str | bytes, str]] = [
    ("not-utf8", b"format: \xff\n", "plan.yaml' is not UTF-8 text"),
    ("invalid-yaml", "format: [\n", "plan.yaml' is not valid YAML"),
    ("alias", "format: &f evonas-ensemble-plan/2\nother: *f\n", "plan.yaml' uses the YAML alias *f"),
    ("a-list", "- 1\n", "plan.yaml' must hold a mapping"),
    ("other-format", _setter(("format",), "something/1"), "is not an 'evonas-ensemble-plan/2' file"),
    ("candidates-a-string", _setter(("candidates",), "m00"), "with a list of candidates"),
    ("entry-a-string", _setter(("candidates", 0), "m00"), "candidate 0 must be a mapping named 'm00'"),
    ("name-escapes", _setter(("candidates", 0, "name"), "../../evil"), "candidate 0 must be a mapping named 'm00'; got '../../evil'"),
    ("name-repeated", _setter(("candidates", 1, "name"), "m00"), "candidate 1 must be a mapping named 'm01'"),
    ("arch-malformed", _setter(("candidates", 0, "arch"), "|bogus~0|"), "candidate 0 has a malformed architecture"),
    ("arch-a-number", _setter(("candidates", 0, "arch"), 5), "expected an architecture string; got 5"),
    ("seed-huge", _setter(("candidates", 0, "seed"), 10**30), "'candidates[0].seed'"),
    ("seed-a-string", _setter(("candidates", 0, "seed"), "x"), "'candidates[0].seed'"),
    ("source-a-list", _setter(("candidates", 0, "source"), [1]), "candidate 0 has source [1]; expected a mapping"),
    ("data-missing", lambda d: d.pop("data"), "malformed 'data' entry: None"),
    ("data-negative", _setter(("data", "num_classes"), -5), "invalid value -5 for 'data.num_classes'"),
]
for _name, _change, _fragment in PLANS:
    for _verb in ("report", "resume"):
        def _plan_case(ctx: Ctx, change: Any = _change, verb: str = _verb, fragment: str = _fragment) -> tuple[list[str], str]:
            if callable(change):
                run = ctx.edit_config("ensemble", "plan.yaml", change)
            else:
                run = ctx.corrupt("ensemble", "plan.yaml", change)
            if verb == "resume":
                os.unlink(os.path.join(run, "result.json"))  # an unfinished build reads its plan
            return (["report", run] if verb == "report" else ["ensemble", "build", "--resume", run]), fragment

        case(f"ensemble-{_verb}-plan-{_name}", _plan_case)

# supernet rank on broken supernet runs
case("rank-config-invalid-yaml", lambda ctx: (
    ["supernet", "rank", ctx.corrupt("supernet", "config.yaml", "seed: [\n")], "config.yaml' is not valid YAML"))
case("rank-meta-billion-laughs", lambda ctx: (
    ["supernet", "rank", ctx.corrupt("supernet", "meta.yaml", BILLION_LAUGHS)], "meta.yaml' uses the YAML alias"))
case("rank-weights-garbage", lambda ctx: (
    ["supernet", "rank", ctx.corrupt("supernet", "supernet.pt", b"not torch"), "--num-archs", "2"],
    "cannot be read as supernet weights"))
case("rank-weights-missing", lambda ctx: (
    ["supernet", "rank", _without(ctx.copy("supernet"), "supernet.pt")], "training has not finished"))
case("rank-predictor-unsigned", lambda ctx: (
    ["supernet", "rank", ctx.corrupt("supernet", "predictor.pkl", b"\x80\x04K\x01."), "--num-archs", "2", "--no-progress"],
    "is not signed with this user's evonas key"))
case("report-supernet-rank-json-malformed", lambda ctx: (
    ["report", ctx.corrupt("supernet", "rank.json", '{"num_archs": 3}\n')], "rank.json' is not what 'evonas supernet rank' writes"))


def _without(run: Path, name: str) -> str:
    (run / name).unlink()
    return str(run)


# an export of the ensemble run, broken
EXPORTS: list[tuple[str, str | bytes, str]] = [
    ("not-utf8", b"\xff\xfe", "ensemble.yaml' is not UTF-8 text"),
    ("invalid-yaml", "label: [\n", "ensemble.yaml' is not valid YAML at line 2"),
    ("alias", BILLION_LAUGHS, "ensemble.yaml' uses the YAML alias *a"),
    ("a-list", "- 1\n", "ensemble.yaml' must hold a mapping"),
    ("deep", "a: " + "[" * 200 + "]" * 200 + "\n", "ensemble.yaml' nests mappings or lists deeper than 64 levels"),
    ("other-format", "format: x/1\n", "is not an 'evonas-ensemble-export/1' file; its format is 'x/1'"),
]
for _name, _content, _fragment in EXPORTS:
    case(f"predict-export-{_name}", lambda ctx, content=_content, f=_fragment: (
        ["predict", ctx.corrupt("ensemble", "export/ensemble.yaml", content), ctx.write("img.png", b"")], f))

# ================================================== runs of another kind, wrong paths
OTHER = {"search": "supernet", "supernet": "search", "ensemble": "predictors", "predictors": "ensemble", "pipeline": "search"}
for _kind, _other in OTHER.items():
    case(f"{_kind}-resume-a-{_other}-run", lambda ctx, k=_kind, o=_other: (
        [*COMMANDS[k], "--resume", ctx.run(o)], f"holds a {o!r} run, not a {k!r} run"))
    case(f"{_kind}-resume-missing", lambda ctx, k=_kind: (
        [*COMMANDS[k], "--resume", str(ctx.tmp / "nowhere")], "does not exist"))
    case(f"{_kind}-resume-a-plain-folder", lambda ctx, k=_kind: (
        [*COMMANDS[k], "--resume", str(ctx.tmp)], "is not a run directory: config.yaml or meta.yaml is missing"))
case("search-resume-with-run-dir", lambda ctx: (
    ["search", "--resume", ctx.run("search"), "--run-dir", str(ctx.tmp / "x")], "takes no --run-dir"))
case("search-resume-override-not-extendable", lambda ctx: (
    ["search", "--resume", ctx.run("search"), "seed=1"], "--resume takes overrides of budget.* only"))
case("search-resume-extension-out-of-range", lambda ctx: (
    ["search", "--resume", ctx.run("search"), "budget.evaluations=100000000000000"], "'budget.evaluations'"))
case("supernet-resume-any-override", lambda ctx: (
    ["supernet", "train", "--resume", ctx.run("supernet"), "train.steps=10"], "--resume takes overrides of none only"))
case("rank-a-search-run", lambda ctx: (["supernet", "rank", ctx.run("search")], "holds a 'search' run, not a 'supernet' run"))
case("rank-a-file", lambda ctx: (["supernet", "rank", ctx.write("f.txt", "x")], "does not exist"))
case("report-missing", lambda ctx: (["report", str(ctx.tmp / "nowhere")], "does not exist"))
case("report-a-plain-folder", lambda ctx: (["report", str(ctx.tmp)], "is not a run directory"))
case("report-plugin-missing", lambda ctx: (["report", ctx.run("search"), "--plugin", "/nonexistent/plugin.py"], "plugin"))
case("predict-a-search-run", lambda ctx: (
    ["predict", ctx.run("search"), ctx.write("a.png", b"")], "is a 'search' run, which has no export"))
case("predict-missing-run", lambda ctx: (
    ["predict", str(ctx.tmp / "nowhere"), ctx.write("a.png", b"")], "does not exist; expected an export folder"))

# =============================================================================== flags
FLAGS: list[tuple[str, Callable[[Ctx], list[str]], str]] = [
    ("rank-num-archs-0", lambda ctx: ["supernet", "rank", ctx.run("supernet"), "--num-archs", "0"],
     "invalid value 0 for '--num-archs'; expected an integer >= 1"),
    ("rank-num-archs-negative", lambda ctx: ["supernet", "rank", ctx.run("supernet"), "--num-archs", "-5"],
     "invalid value -5 for '--num-archs'"),
    ("rank-num-archs-beyond-the-space", lambda ctx: ["supernet", "rank", ctx.run("supernet"), "--num-archs", "100000"],
     "invalid value 100000 for '--num-archs'; expected an integer in [1, 156"),
    ("rank-num-archs-not-a-number", lambda ctx: ["supernet", "rank", ctx.run("supernet"), "--num-archs", "many"],
     "argument --num-archs: invalid int value: 'many'"),
    ("rank-val-images-0", lambda ctx: ["supernet", "rank", ctx.run("supernet"), "--val-images", "0"],
     "invalid value 0 for '--val-images'; expected an integer >= 1"),
    ("rank-val-images-beyond-the-split", lambda ctx: ["supernet", "rank", ctx.run("supernet"), "--num-archs", "2",
                                                      "--val-images", "1000000"],
     "invalid value 1000000 for '--val-images'; expected an integer in [1, 48]"),
    ("rank-table-missing", lambda ctx: ["supernet", "rank", ctx.run("supernet"), "--table", str(ctx.tmp / "t.csv")],
     "NAS-Bench-201 is no ground truth"),
    ("rank-table-a-directory", lambda ctx: ["supernet", "rank", ctx.run("supernet"), "--table", str(ctx.tmp)],
     "NAS-Bench-201 is no ground truth"),
    ("rank-table-for-a-run-it-cannot-rank", lambda ctx: ["supernet", "rank", ctx.run("supernet"), "--num-archs", "2",
                                                         "--table", ctx.write("t.csv", "arch,acc\n")],
     "NAS-Bench-201 is no ground truth"),
    ("predict-batch-size-0", lambda ctx: ["predict", ctx.run("ensemble"), ctx.write("a.png", b""), "--batch-size", "0"],
     "invalid value 0 for '--batch-size'; expected an integer in [1, 65536]"),
    ("predict-batch-size-huge", lambda ctx: ["predict", ctx.run("ensemble"), ctx.write("a.png", b""),
                                             "--batch-size", "100000000"], "'--batch-size'; expected an integer in [1, 65536]"),
    ("predict-batch-size-not-a-number", lambda ctx: ["predict", ctx.run("ensemble"), "x.png", "--batch-size", "lots"],
     "argument --batch-size: invalid int value"),
    ("predict-output-a-folder", lambda ctx: ["predict", ctx.run("ensemble"), ctx.write("a.png", b""), "--output", str(ctx.tmp)],
     "is a folder; give the path of a CSV file"),
    ("predict-output-exists", lambda ctx: ["predict", ctx.run("ensemble"), ctx.write("a.png", b""),
                                           "--output", ctx.write("out.csv", "x")], "already exists; pass --force"),
    ("predict-output-folder-missing", lambda ctx: ["predict", ctx.run("ensemble"), ctx.write("a.png", b""),
                                                   "--output", str(ctx.tmp / "no" / "out.csv")], "does not exist"),
    ("predict-image-missing", lambda ctx: ["predict", ctx.run("ensemble"), str(ctx.tmp / "none.png")],
     "does not exist; expected image files or folders of them"),
    ("predict-not-an-image-file", lambda ctx: ["predict", ctx.run("ensemble"), ctx.write("notes.txt", "x")],
     "is not an image file"),
    ("predict-corrupt-image", lambda ctx: ["predict", ctx.run("ensemble"), ctx.write("broken.png", b"\x89PNG junk")],
     "cannot read image"),
    ("predict-image-of-another-size", lambda ctx: ["predict", ctx.run("ensemble"), _png(ctx, 9, "L")],
     "the ensemble takes images of 8x8"),
    ("predict-image-of-other-channels", lambda ctx: ["predict", ctx.run("ensemble"), _png(ctx, 8, "RGB")],
     "with 3 channel(s)"),
    ("predict-no-images-in-folder", lambda ctx: ["predict", ctx.run("ensemble"), str(ctx.tmp)], "no image files"),
    ("search-neither-config-nor-resume", lambda ctx: ["search"], "one of the arguments --config --resume is required"),
    ("search-config-and-resume", lambda ctx: ["search", "--config", "a.yaml", "--resume", "b"], "not allowed with argument"),
    ("search-unknown-flag", lambda ctx: ["search", "--config", "a.yaml", "--bogus"], "unrecognized arguments: --bogus"),
    ("unknown-command", lambda ctx: ["fly"], "invalid choice: 'fly'"),
    ("supernet-without-action", lambda ctx: ["supernet"], "the following arguments are required: action"),
    ("predict-without-paths", lambda ctx: ["predict", ctx.run("ensemble")], "the following arguments are required: PATH"),
    ("rank-without-run-dir", lambda ctx: ["supernet", "rank"], "the following arguments are required: RUN_DIR"),
]
for _name, _argv, _fragment in FLAGS:
    case(_name, lambda ctx, a=_argv, f=_fragment: (a(ctx), f))


def _png(ctx: Ctx, size: int, mode: str) -> str:
    from PIL import Image

    path = ctx.tmp / f"image-{size}-{mode}.png"
    Image.new(mode, (size, size)).save(path)
    return str(path)


# ============================================================================== tests
ERROR_LINE = re.compile(r"^evonas(?: [a-z]+)*: error: \S")


@pytest.mark.parametrize("build", CASES)
def test_bad_input_is_one_line_exit_2_and_changes_nothing(
    build: Case,
    world: dict[str, Path],
    pristine: dict[str, bytes | None],
    tmp_path: Path,
    nb201_env: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)  # a default run directory would land here, and be seen
    argv, fragment = build(Ctx(world, tmp_path))
    before = snapshot(tmp_path)
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse: flag errors
        code = exc.code
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert code == 2, captured
    assert len(lines) == 1 and captured.err.endswith("\n"), captured.err
    assert ERROR_LINE.match(lines[0]), lines[0]
    assert lines[0].startswith("evonas: error: ") or " error: " in lines[0]
    assert fragment in lines[0], lines[0]
    assert "Traceback" not in captured.err
    assert snapshot(tmp_path) == before
    assert snapshot(world["search"].parent.parent) == pristine


def test_the_corpus_is_large_and_names_are_unique() -> None:
    ids = [p.id for p in CASES]
    assert len(ids) >= 150
    assert len(set(ids)) == len(ids)


# ------------------------------------------------------------------ valid neighbours
def test_exponent_floats_are_numbers_in_files_and_overrides(tmp_path: Path) -> None:
    from evonas.search import SearchConfig
    from evonas.supernet import SupernetRunConfig

    path = tmp_path / "s.yaml"
    path.write_text("evaluator: {name: tabular}\nfitness: {objectives: [{metric: m}]}\nstrategy: {name: random}\n"
                    "budget: {seconds: 1.0e6}\n")
    assert load_config(SearchConfig, path).budget.seconds == 1e6
    assert load_config(SearchConfig, path, ["budget.seconds=1e-3"]).budget.seconds == 1e-3
    assert load_config(SupernetRunConfig, None, ["train.optim.lr=1e-3"]).train.optim.lr == 1e-3


def test_bounds_admit_their_limits(tmp_path: Path) -> None:
    from evonas.search import SearchConfig
    from evonas.supernet import SupernetRunConfig

    config = load_config(SupernetRunConfig, None, [f"seed={MAX_SEED}", "supernet.params.channels=256",
                                                    "supernet.params.cells_per_stage=32"])
    assert config.seed == MAX_SEED and config.supernet.params["channels"] == 256
    search = load_config(SearchConfig, None, ["evaluator.name=tabular", "fitness.objectives=[{metric: m}]",
                                              "strategy={name: rea, params: {population_size: 100000}}",
                                              "budget.evaluations=1000000000"])
    assert search.strategy.params["population_size"] == 100_000 and search.budget.evaluations == 10**9


def test_anchors_without_aliases_still_load(tmp_path: Path) -> None:
    from evonas.config import read_yaml

    path = tmp_path / "a.yaml"
    path.write_text("seed: &s 3\nbudget: {evaluations: 5}\n")
    assert read_yaml(path) == {"seed": 3, "budget": {"evaluations": 5}}


@pytest.mark.parametrize("table, fragment", [
    ("missing", "does not exist; give the NAS-Bench-201 table file"),
    ("folder", "is a directory; give the NAS-Bench-201 table file"),
    ("garbage", "t.csv' is not a readable CSV"),
    ("other-columns", "t.csv' lacks required columns"),
])
def test_rank_checks_the_table_before_evaluating_a_cell(
    world: dict[str, Path], pristine: dict[str, bytes | None], tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch, table: str, fragment: str,
) -> None:
    """A run the table applies to (CIFAR-10 at 32x32, stood in for by the digits run): a
    bad ``--table`` is refused before the first architecture is evaluated."""
    import evonas.supernet._run as supernet_run
    from evonas.supernet import SupernetEvaluator

    def never(self: Any, arch: Any, seed: int = 0) -> Any:
        raise AssertionError("an architecture was evaluated before --table was checked")

    monkeypatch.setattr(supernet_run, "is_cifar10", lambda splits: True)
    monkeypatch.setattr(SupernetEvaluator, "evaluate", never)
    path = {"missing": tmp_path / "nb201.csv.gz", "folder": tmp_path}.get(table, tmp_path / "t.csv")
    if table == "garbage":
        path.write_bytes(b"\x1f\x8b\x08 not gzip")
    elif table == "other-columns":
        path.write_text("arch,accuracy\n|none~0|+|none~0|none~1|+|none~0|none~1|none~2|,1.0\n")
    code = main(["supernet", "rank", str(world["supernet"]), "--num-archs", "2", "--table", str(path), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("evonas: error: ") and fragment in err, err
    assert snapshot(world["search"].parent.parent) == pristine
