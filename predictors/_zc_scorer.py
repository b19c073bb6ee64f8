"""Computing and caching zero-cost proxy scores of NAS-Bench-201 architectures.

:class:`ZeroCostScorer` builds each architecture's NAS-Bench-201 network (seeded
initialisation), runs the proxies of :mod:`._proxies` on one fixed minibatch of real
images read through :func:`evonas.data.load_dataset`, and caches the scores per
architecture in memory (per process) and, when ``cache_dir`` is set, on disk as JSON so
that other processes (Ray workers, later runs) reuse them.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator

from evonas.errors import DataError, UnknownChoiceError
from evonas.spaces import Arch
from predictors._base import ParamError, check_archs, check_int, check_space

PROXIES: tuple[str, ...] = ("naswot", "jacob_cov", "synflow", "snip", "grad_norm", "params", "flops")
"""The zero-cost proxies, by name."""

_MEMORY: dict[str, dict[Arch, dict[str, float]]] = {}
_BATCHES: dict[str, Any] = {}
_FLUSH_EVERY = 25


def check_proxies(proxies: Sequence[str]) -> tuple[str, ...]:
    """Return ``proxies`` as a tuple; unknown names raise listing the valid ones."""
    if isinstance(proxies, str):
        proxies = (proxies,)
    for name in proxies:
        if name not in PROXIES:
            raise UnknownChoiceError("zero-cost proxy", name, PROXIES)
    return tuple(proxies)


class ZeroCostScorer(BaseEstimator):
    """Zero-cost proxy scores of architectures on one real minibatch, cached per architecture.

    Args:
        data_root: The image data for :func:`evonas.data.load_dataset` (for ``imagefolder``
            a tree or a ``.tar.gz`` such as ``cifar10-jpg-small.tar.gz``).
        dataset: Registered dataset name (default ``"imagefolder"``).
        batch_size: Images in the minibatch (Mellor et al. use 128; 64 is faster and
            ranks about as well).
        data_seed: Chooses the minibatch among the training images.
        init_seed: Seeds the networks' weight initialisation (the same for every
            architecture, so scores are reproducible).
        channels: ``C`` of the NAS-Bench-201 network (16 in the benchmark).
        cells: ``N``, cells per stage (5 in the benchmark).
        cache_dir: Folder of the on-disk cache (``None``: memory only).
        space: Search space of the architectures (only ``nb201`` has a network builder).

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
        channels: int = 16,
        cells: int = 5,
        cache_dir: str | None = None,
        space: str = "nb201",
    ) -> None:
        self.data_root = data_root
        self.dataset = dataset
        self.batch_size = batch_size
        self.data_seed = data_seed
        self.init_seed = init_seed
        self.channels = channels
        self.cells = cells
        self.cache_dir = cache_dir
        self.space = space

    # ------------------------------------------------------------------------- settings
    def _settings(self) -> dict[str, Any]:
        check_int(self, "batch_size", self.batch_size, 2)
        check_int(self, "data_seed", self.data_seed, 0)
        check_int(self, "init_seed", self.init_seed, 0)
        check_int(self, "channels", self.channels, 1)
        check_int(self, "cells", self.cells, 1)
        check_space(self.space)
        if self.space != "nb201":
            raise ParamError(f"ZeroCostScorer builds NAS-Bench-201 networks only; got space={self.space!r}")
        if self.data_root is not None and not isinstance(self.data_root, (str, os.PathLike)):
            raise ParamError(f"the 'data_root' parameter of ZeroCostScorer must be a path; got {self.data_root!r}")
        root = None if self.data_root is None else str(Path(self.data_root).expanduser().resolve())
        return {
            "space": self.space,
            "dataset": self.dataset,
            "data_root": root,
            "batch_size": int(self.batch_size),
            "data_seed": int(self.data_seed),
            "init_seed": int(self.init_seed),
            "channels": int(self.channels),
            "cells": int(self.cells),
        }

    @property
    def cache_key(self) -> str:
        """Hash of the settings that determine the scores."""
        text = json.dumps(self._settings(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def cache_file(self) -> Path | None:
        """The on-disk cache file of these settings, or None without ``cache_dir``."""
        if self.cache_dir is None:
            return None
        return Path(self.cache_dir).expanduser() / f"zc-{self.space}-{self.cache_key}.json"

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
        space = check_space(self.space)
        archs = check_archs(archs, space, min_count=0)
        settings = self._settings()
        key = self.cache_key
        memory = _MEMORY.setdefault(key, {})
        missing = [a for a in dict.fromkeys(archs) if not all(p in memory.get(a, {}) for p in proxies)]
        if missing:
            self._load_disk(memory)
            missing = [a for a in missing if not all(p in memory.get(a, {}) for p in proxies)]
        if missing:
            self._compute(missing, proxies, settings, memory, progress)
        out = np.empty((len(archs), len(proxies)), dtype=np.float64)
        for i, arch in enumerate(archs):
            out[i] = [memory[arch][p] for p in proxies]
        return out

    def _compute(
        self,
        archs: list[Arch],
        proxies: tuple[str, ...],
        settings: dict[str, Any],
        memory: dict[Arch, dict[str, float]],
        progress: bool,
    ) -> None:
        from tqdm.auto import tqdm

        batch = _minibatch(settings)
        fresh: dict[Arch, dict[str, float]] = {}
        for n, arch in enumerate(tqdm(archs, desc="zero-cost", disable=not progress, leave=False), start=1):
            todo = tuple(p for p in proxies if p not in memory.get(arch, {}))
            scores = score_architecture(arch, todo, batch, settings)
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
            "scores": {",".join(map(str, a)): {p: _json_float(v) for p, v in s.items()} for a, s in merged.items()},
        }
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "w") as fh:
                json.dump(payload, fh)
            os.chmod(tmp, 0o644)  # mkstemp makes it private; the cache is meant to be shared
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)


def _json_float(v: float) -> float | str:
    return v if math.isfinite(v) else repr(float(v))


def _read_cache(path: Path) -> dict[Arch, dict[str, float]]:
    try:
        data = json.loads(path.read_text())
        return {
            tuple(int(t) for t in key.split(",")): {p: float(v) for p, v in scores.items()}
            for key, scores in data["scores"].items()
        }
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise DataError(f"zero-cost cache {str(path)!r} is unreadable ({exc}); delete it to recompute") from None


def _minibatch(settings: dict[str, Any]) -> tuple[Any, Any, int]:
    """The fixed minibatch ``(images, labels, num_classes)`` of ``settings`` (loaded once)."""
    key = json.dumps({k: settings[k] for k in ("dataset", "data_root", "batch_size", "data_seed")}, sort_keys=True)
    if key not in _BATCHES:
        import torch

        from evonas.data import load_dataset

        splits = load_dataset(
            settings["dataset"], settings["data_root"], val_fraction=0.0, seed=settings["data_seed"]
        )
        train = splits.train
        if len(train) < settings["batch_size"]:
            raise DataError(
                f"zero-cost minibatch of {settings['batch_size']} images asked from a training split of {len(train)}"
            )
        rng = np.random.default_rng(settings["data_seed"])
        rows = np.sort(rng.choice(len(train), size=settings["batch_size"], replace=False))
        if hasattr(train, "reseeded"):
            train = train.reseeded(settings["data_seed"], augment=False)
        images, labels = zip(*(train[int(r)] for r in rows))
        x = torch.stack([torch.as_tensor(im, dtype=torch.float32) for im in images])
        y = torch.as_tensor(labels, dtype=torch.long)
        _BATCHES[key] = (x, y, int(splits.num_classes))
    return _BATCHES[key]


def score_architecture(
    arch: Arch, proxies: Sequence[str], batch: tuple[Any, Any, int], settings: dict[str, Any]
) -> dict[str, float]:
    """Every proxy of ``proxies`` for the NAS-Bench-201 network of ``arch`` on ``batch``.

    The network is built once, with its initialisation seeded by ``settings["init_seed"]``
    inside :func:`torch.random.fork_rng`, so the caller's random state is untouched.
    """
    import torch

    from evonas.models import NB201Network
    from predictors import _proxies

    x, y, num_classes = batch
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings["init_seed"])
        model = NB201Network(
            arch, C=settings["channels"], N=settings["cells"], num_classes=num_classes, in_channels=x.shape[1]
        )
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
