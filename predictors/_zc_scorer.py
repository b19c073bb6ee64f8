"""Computing and caching zero-cost proxy scores of architectures.

:class:`ZeroCostScorer` builds each architecture's network through the configured decoder
(:func:`evonas.models.build_network`; NAS-Bench-201's network by default) with a seeded
initialisation, runs the proxies of :mod:`._proxies` on one fixed minibatch of real images
(from :func:`evonas.data.cached_splits`), and caches the scores per architecture in memory
(per process) and, when ``cache_dir`` is set, on disk as JSON so that other processes (Ray
workers, later runs) reuse them.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence, Sized
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
from sklearn.base import BaseEstimator

from evonas._files import atomic_write_bytes
from evonas._json import json_float, jsonable
from evonas.config import MAX_BATCH_SIZE, MAX_SEED, ComponentConfig, to_dict
from evonas.errors import CapabilityError, DataError, UnknownChoiceError
from evonas.spaces import Arch, SearchSpace
from predictors._base import ParamError, SpaceLike, check_archs, check_int, resolve_space

if TYPE_CHECKING:
    import torch

PROXIES: tuple[str, ...] = ("naswot", "jacob_cov", "synflow", "snip", "grad_norm", "params", "flops")
"""The zero-cost proxies, by name."""

DEFAULT_NETWORK = ComponentConfig("nb201", {"channels": 16, "cells_per_stage": 5})
"""The network zero-cost proxies score by default: NAS-Bench-201's ``C=16, N=5`` network."""

Minibatch = tuple["torch.Tensor", "torch.Tensor", int]
"""``(images, labels, num_classes)`` of the fixed minibatch."""

_MEMORY: dict[tuple[SearchSpace, str], dict[Arch, dict[str, float]]] = {}
_FLUSH_EVERY = 25


def check_proxies(proxies: Sequence[str]) -> tuple[str, ...]:
    """Return ``proxies`` as a tuple; unknown names raise listing the valid ones."""
    if isinstance(proxies, str):
        proxies = (proxies,)
    for name in proxies:
        if name not in PROXIES:
            raise UnknownChoiceError("zero-cost proxy", name, PROXIES)
    return tuple(proxies)


def _space_settings(space: SearchSpace) -> dict[str, Any]:
    """The space as JSON-ready settings: its name and parameters."""
    params = to_dict(getattr(space, "config", None))
    return {"name": space.name, "params": json.loads(json.dumps(jsonable(params), default=repr))}


class ZeroCostScorer(BaseEstimator):
    """Zero-cost proxy scores of architectures on one real minibatch, cached per architecture.

    Args:
        data_root: The image data of ``dataset`` (for ``imagefolder`` a tree or a
            ``.tar.gz`` such as ``cifar10-jpg-small.tar.gz``).
        dataset: Registered dataset name (default ``"imagefolder"``).
        batch_size: Images in the minibatch (Mellor et al. use 128).
        data_seed: Chooses the minibatch among the training images.
        init_seed: Seeds the networks' weight initialisation (the same for every
            architecture, so scores are reproducible).
        network: The registered decoder building the networks and its parameters
            (default :data:`DEFAULT_NETWORK`); it must serve ``space``.
        cache_dir: Folder of the on-disk cache (``None``: memory only).
        space: Search space of the architectures: a registered name or a space value.

    The cache key covers every argument but ``cache_dir``, so scorers with other
    settings never share entries.
    """

    def __init__(
        self,
        data_root: str | None = None,
        dataset: str = "imagefolder",
        batch_size: int = 64,
        data_seed: int = 0,
        init_seed: int = 0,
        network: ComponentConfig = DEFAULT_NETWORK,
        cache_dir: str | None = None,
        space: SpaceLike = "nb201",
    ) -> None:
        self.data_root = data_root
        self.dataset = dataset
        self.batch_size = batch_size
        self.data_seed = data_seed
        self.init_seed = init_seed
        self.network = network
        self.cache_dir = cache_dir
        self.space = space

    # ------------------------------------------------------------------------- settings
    def search_space(self) -> SearchSpace:
        """The search space of the ``space`` hyper-parameter."""
        return resolve_space(self.space, owner=self)

    def network_config(self) -> ComponentConfig:
        """``network`` with every default parameter of its decoder filled in.

        Raises:
            ParamError: ``network`` is not a ComponentConfig.
            UnknownChoiceError: The decoder is not registered.
            ConfigError: A decoder parameter is unknown or invalid.
        """
        if not isinstance(self.network, ComponentConfig):
            raise ParamError(
                f"invalid value {self.network!r} for 'network' of ZeroCostScorer; expected a ComponentConfig "
                "naming a registered decoder"
            )
        typed = self.network.typed("decoder")
        return ComponentConfig(self.network.name, {} if typed is None else to_dict(typed))

    def _settings(self) -> dict[str, Any]:
        space = self.search_space()
        check_int(self.batch_size, "batch_size", 2, MAX_BATCH_SIZE, owner=self)
        check_int(self.data_seed, "data_seed", 0, MAX_SEED, owner=self)
        check_int(self.init_seed, "init_seed", 0, MAX_SEED, owner=self)
        if not isinstance(self.dataset, str):
            raise ParamError(f"invalid value {self.dataset!r} for 'dataset' of ZeroCostScorer; expected a dataset name")
        if self.data_root is not None and not isinstance(self.data_root, (str, os.PathLike)):
            raise ParamError(f"invalid value {self.data_root!r} for 'data_root' of ZeroCostScorer; expected a path")
        network = self.network_config()
        self._check_decoder(network, space)
        root = None if self.data_root is None else str(Path(self.data_root).expanduser().resolve())
        return {
            "space": _space_settings(space),
            "dataset": self.dataset,
            "data_root": root,
            "batch_size": int(self.batch_size),
            "data_seed": int(self.data_seed),
            "init_seed": int(self.init_seed),
            "network": {"name": network.name, "params": network.params},
        }

    @staticmethod
    def _check_decoder(network: ComponentConfig, space: SearchSpace) -> None:
        from evonas.models import check_decoder

        try:
            check_decoder(network, space)
        except CapabilityError as exc:
            raise CapabilityError(f"zero-cost scores need a network decoder for space {space.name!r}: {exc}") from None

    def check(self) -> None:
        """Raise unless every setting is valid and ``network`` decodes the scorer's space.

        Raises:
            ParamError: An invalid setting.
            UnknownChoiceError: An unknown space or decoder.
            CapabilityError: ``network`` does not decode architectures of the space.
        """
        self._settings()

    def check_for(self, space: SearchSpace, owner: object) -> None:
        """Raise unless this scorer's settings are valid and it scores architectures of ``space``.

        Args:
            space: The space of the predictor reading the scores.
            owner: That predictor (for the message).

        Raises:
            ParamError: The scorer has another space, or an invalid setting.
            CapabilityError: ``network`` does not decode architectures of ``space``.
        """
        own = self.search_space()
        if own != space:
            raise ParamError(
                f"the scorer of {type(owner).__name__} scores space {own.name!r} ({own!r}), not the predictor's "
                f"space {space.name!r} ({space!r}); "
                "give both the same 'space'"
            )
        self.check()

    @property
    def cache_key(self) -> str:
        """Hash of the settings that determine the scores."""
        text = json.dumps(self._settings(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def cache_file(self) -> Path | None:
        """The on-disk cache file of these settings, or None without ``cache_dir``."""
        if self.cache_dir is None:
            return None
        return Path(self.cache_dir).expanduser() / f"zc-{self.search_space().name}-{self.cache_key}.json"

    # --------------------------------------------------------------------------- scores
    def scores(self, archs: Sequence[Any], proxies: Sequence[str], progress: bool = False) -> np.ndarray:
        """Scores of every architecture under every proxy (computed once, then cached).

        Args:
            archs: Genotypes of the space.
            proxies: Names among :data:`PROXIES`.
            progress: Show a tqdm bar while computing uncached scores.

        Returns:
            ``float64`` array, ``-inf`` where a proxy cannot score a network (e.g. NASWOT
            of a cell whose output ignores the input). Shapes: ``(len(archs), len(proxies))``.
        """
        proxies = check_proxies(proxies)
        space = self.search_space()
        checked = check_archs(archs, space, min_count=0)
        key = self.cache_key
        memory = _MEMORY.setdefault((space, key), {})
        missing = [a for a in dict.fromkeys(checked) if not all(p in memory.get(a, {}) for p in proxies)]
        if missing:
            self._load_disk(memory)
            missing = [a for a in missing if not all(p in memory.get(a, {}) for p in proxies)]
        if missing:
            self._compute(missing, proxies, space, memory, progress)
        out = np.empty((len(checked), len(proxies)), dtype=np.float64)
        for i, arch in enumerate(checked):
            out[i] = [memory[arch][p] for p in proxies]
        return out

    def minibatch(self) -> Minibatch:
        """The fixed minibatch ``(images, labels, num_classes)`` of these settings.

        Raises:
            DataError: The images are missing, unreadable, or fewer than ``batch_size``.
        """
        import torch

        from evonas.data import DatasetConfig, ImageTensorDataset, cached_splits

        settings = self._settings()
        splits = cached_splits(
            DatasetConfig(name=settings["dataset"], root=settings["data_root"], val_fraction=0.0, seed=settings["data_seed"])
        )
        train = splits.train
        size = len(cast(Sized, train))
        if size < settings["batch_size"]:
            raise DataError(f"zero-cost minibatch of {settings['batch_size']} images asked from a training split of {size}")
        rng = np.random.default_rng(settings["data_seed"])
        rows = np.sort(rng.choice(size, size=settings["batch_size"], replace=False))
        if isinstance(train, ImageTensorDataset):
            train = train.reseeded(settings["data_seed"], augment=False)
        images, labels = zip(*(train[int(r)] for r in rows))
        x = torch.stack([torch.as_tensor(im, dtype=torch.float32) for im in images])
        y = torch.as_tensor(labels, dtype=torch.long)
        return x, y, int(splits.num_classes)

    def _compute(
        self,
        archs: list[Arch],
        proxies: tuple[str, ...],
        space: SearchSpace,
        memory: dict[Arch, dict[str, float]],
        progress: bool,
    ) -> None:
        from tqdm.auto import tqdm

        batch = self.minibatch()
        network = self.network_config()
        fresh: dict[Arch, dict[str, float]] = {}
        for n, arch in enumerate(tqdm(archs, desc="zero-cost", disable=not progress, leave=False), start=1):
            todo = tuple(p for p in proxies if p not in memory.get(arch, {}))
            scores = score_architecture(arch, todo, batch, space, network, int(self.init_seed))
            memory.setdefault(arch, {}).update(scores)
            fresh[arch] = memory[arch]
            if n % _FLUSH_EVERY == 0:
                self._save_disk(fresh)
        self._save_disk(fresh)

    # ----------------------------------------------------------------------- disk cache
    def _load_disk(self, memory: dict[Arch, dict[str, float]]) -> None:
        path = self.cache_file()
        if path is None or not path.is_file():
            return
        for arch, scores in _read_cache(path).items():
            memory.setdefault(arch, {}).update(scores)

    def _save_disk(self, fresh: dict[Arch, dict[str, float]]) -> None:
        path = self.cache_file()
        if path is None or not fresh:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        # Merge with what other processes wrote meanwhile; a lost race only costs a recomputation.
        merged = _read_cache(path) if path.is_file() else {}
        for arch, scores in fresh.items():
            merged.setdefault(arch, {}).update(scores)
        payload = {
            "settings": self._settings(),
            "scores": {",".join(map(str, a)): {p: json_float(v) for p, v in s.items()} for a, s in merged.items()},
        }
        atomic_write_bytes(path, json.dumps(payload).encode())


def _read_cache(path: Path) -> dict[Arch, dict[str, float]]:
    try:
        data = json.loads(path.read_text())
        return {
            tuple(int(t) for t in key.split(",")): {p: float(v) for p, v in scores.items()}
            for key, scores in data["scores"].items()
        }
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        raise DataError(f"zero-cost cache {str(path)!r} is unreadable ({exc}); delete it to recompute") from None


def score_architecture(
    arch: Arch,
    proxies: Sequence[str],
    batch: Minibatch,
    space: SearchSpace,
    network: ComponentConfig,
    init_seed: int,
) -> dict[str, float]:
    """Every proxy of ``proxies`` for the network of ``arch`` on ``batch``.

    The network is built once by the decoder ``network``, with its initialisation seeded
    by ``init_seed`` (:func:`evonas.training.seeded_model`), so the caller's random state
    is untouched.
    """
    from evonas.models import build_network
    from evonas.training import seeded_model
    from predictors import _proxies

    x, y, num_classes = batch
    model = seeded_model(lambda: build_network(network, space, arch, num_classes, int(x.shape[1])), init_seed)
    model.train()
    out: dict[str, float] = {}
    data_proxies = tuple(p for p in proxies if p in _proxies.DATA_PROXIES)
    if data_proxies:
        out.update(_proxies.minibatch_scores(model, x, y, data_proxies))
    if "synflow" in proxies:
        out["synflow"] = _proxies.synflow(model, tuple(x.shape[1:]))
    if "params" in proxies:
        out["params"] = _proxies.num_params(model)
    if "flops" in proxies:
        out["flops"] = _proxies.flops(model, tuple(x.shape[1:]))
    return out
