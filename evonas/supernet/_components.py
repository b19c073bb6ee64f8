"""Evaluator configs for search runs: score architectures with a finished supernet run.

``evaluator: {name: supernet, params: {run_dir: RUN_DIR}}`` scores with inherited weights;
``evaluator: {name: proxy, params: {run_dir: RUN_DIR}}`` with the run's proxy predictor
(cheap enough for the neighbourhood-aware fitness to score every neighbour). The factories
follow :class:`evonas._registry.Component`: ``factory(config) -> evaluator``.
"""

from __future__ import annotations

from dataclasses import dataclass

from evonas.errors import ConfigError, RunDirError
from evonas.training._device import check_device_spec


@dataclass(frozen=True)
class SupernetEvaluatorConfig:
    """A finished supernet run's weights as an evaluator (metrics ``val_loss``, ``val_acc``).

    Attributes:
        run_dir: The run directory of ``evonas supernet train``.
        device: Where evaluations run (``cpu``, ``auto``, ``cuda``, ``cuda:N``).
        actors: Serve the evaluations from this many Ray actors that hold the weights
            once (0: evaluate in the calling process). Uses the Ray instance this process
            is connected to, or starts a local one on loopback (which a Ray executor
            without ``address`` then shares); connect with ``ray.init(address=...)``
            first to use a cluster.
    """

    run_dir: str
    device: str = "cpu"
    actors: int = 0

    def __post_init__(self) -> None:
        check_device_spec(self.device)
        if isinstance(self.actors, bool) or not isinstance(self.actors, int) or self.actors < 0:
            raise ConfigError(f"evaluator.params.actors must be an integer >= 0; got {self.actors!r}")


@dataclass(frozen=True)
class ProxyEvaluatorConfig:
    """A finished supernet run's proxy predictor as an evaluator (metric ``proxy_val_loss``).

    Attributes:
        run_dir: The run directory of ``evonas supernet train`` (its proxy loop must have run).
    """

    run_dir: str


def build_supernet_evaluator(config: SupernetEvaluatorConfig) -> object:
    from evonas.supernet._run import load_supernet_evaluator

    evaluator = load_supernet_evaluator(config.run_dir, device=config.device)
    if config.actors == 0:
        return evaluator
    from evonas.executors._ray import init_local_ray, ray
    from evonas.supernet._actor import SupernetActorEvaluator

    if not ray.is_initialized():
        init_local_ray()

    return SupernetActorEvaluator(evaluator, num_actors=config.actors)


def build_proxy_evaluator(config: ProxyEvaluatorConfig) -> object:
    from evonas.supernet._run import load_predictor

    evaluator = load_predictor(config.run_dir)
    if evaluator is None:
        raise RunDirError(
            f"supernet run {config.run_dir!r} has no proxy predictor; train it with proxy.every > 0"
        )
    return evaluator
