"""Evaluator configs for search runs: score architectures with a finished supernet run.

``evaluator: {name: supernet, params: {run_dir: RUN_DIR}}`` scores with inherited weights;
``evaluator: {name: proxy, params: {run_dir: RUN_DIR}}`` with the run's proxy predictor
(cheap enough for the neighbourhood-aware fitness to score every neighbour). A relative
``run_dir`` in a config file is relative to the file. With ``tables`` and ``report``
every evaluation also records the ground truth of the architecture (e.g. the
NAS-Bench-201 table's ``cifar10_test_acc``; see :class:`evonas.evaluation.TableMetrics`). The factories follow
:class:`evonas._registry.Component`: ``factory(config, space=space) -> evaluator``; the
supernet run must have been trained on the search's space.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from evonas.config import (
    MAX_WORKERS,
    Checked,
    ComponentConfig,
    IsPath,
    Range,
    Registered,
)
from evonas.errors import RunDirError
from evonas.evaluation import Evaluator, with_table_metrics
from evonas.spaces import SearchSpace
from evonas.training import check_device_spec


@dataclass(frozen=True)
class SupernetEvaluatorConfig(Checked):
    """A finished supernet run's weights as an evaluator (metrics ``val_loss``, ``val_acc``).

    Attributes:
        run_dir: The run directory of ``evonas supernet train``.
        device: Where evaluations run (``cpu``, ``auto``, ``cuda``, ``cuda:N``).
        actors: Serve the evaluations from this many Ray actors that hold the weights
            once (0: evaluate in the calling process). Uses the Ray instance this process
            is connected to, or starts a local one on loopback (which a Ray executor
            without ``address`` then shares); connect with ``ray.init(address=...)``
            first to use a cluster.
        tables: Benchmark tables holding the ground truth of the architectures.
        report: Table metrics recorded with every evaluation (needs ``tables``).
    """

    run_dir: Annotated[str, IsPath()]
    device: str = "cpu"
    actors: Annotated[int, Range(0, MAX_WORKERS)] = 0
    tables: tuple[Annotated[ComponentConfig, Registered("table")], ...] = ()
    report: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        check_device_spec(self.device)


@dataclass(frozen=True)
class ProxyEvaluatorConfig(Checked):
    """A finished supernet run's proxy predictor as an evaluator (metric ``proxy_val_loss``).

    Attributes:
        run_dir: The run directory of ``evonas supernet train`` (its proxy loop must have run).
        tables: Benchmark tables holding the ground truth of the architectures.
        report: Table metrics recorded with every evaluation (needs ``tables``).
    """

    run_dir: Annotated[str, IsPath()]
    tables: tuple[Annotated[ComponentConfig, Registered("table")], ...] = ()
    report: tuple[str, ...] = ()


def build_supernet_evaluator(config: SupernetEvaluatorConfig, *, space: SearchSpace) -> Evaluator:
    """The ``supernet`` evaluator entry.

    Raises:
        RunDirError: The run is missing or unfinished.
        CapabilityError: The run was trained on another space.
    """
    from evonas.supernet._run import load_supernet_evaluator

    weights = load_supernet_evaluator(config.run_dir, device=config.device, space=space)
    evaluator: Evaluator = weights
    if config.actors > 0:
        from evonas.executors._ray import init_local_ray, ray
        from evonas.supernet._actor import SupernetActorEvaluator

        if not ray.is_initialized():
            init_local_ray()
        evaluator = SupernetActorEvaluator(weights, num_actors=config.actors)
    return with_table_metrics(evaluator, config.tables, config.report, space)


def build_proxy_evaluator(config: ProxyEvaluatorConfig, *, space: SearchSpace) -> Evaluator:
    """The ``proxy`` evaluator entry.

    Raises:
        RunDirError: The run is missing, unfinished, or fitted no predictor.
        CapabilityError: The run was trained on another space.
    """
    from evonas.supernet._run import load_predictor

    evaluator = load_predictor(config.run_dir, space=space)
    if evaluator is None:
        raise RunDirError(f"supernet run {config.run_dir!r} has no proxy predictor; train it with proxy.every > 0")
    return with_table_metrics(evaluator, config.tables, config.report, space)
