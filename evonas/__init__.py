"""evonas: evolutionary and ensemble neural architecture search with performance predictors.

Extension points are registries; a plugin adds to them with :func:`register`::

    import evonas

    @evonas.register("space", "chain")
    class ChainSpace(evonas.spaces.SpaceBase): ...

See :data:`evonas._registry.KINDS` for every kind and its calling convention, and
:mod:`evonas.plugins` for how plugins are loaded (``--plugin``, entry points, Ray workers).
:func:`load_ensemble` loads an exported ensemble (:mod:`evonas.export`) for inference.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from evonas._registry import KINDS, Component, register, registry

if TYPE_CHECKING:
    from evonas.export import load_ensemble

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    # Loading an exported ensemble needs torch: imported on first use, not with evonas.
    if name == "load_ensemble":
        from evonas.export import load_ensemble

        return load_ensemble
    raise AttributeError(f"module 'evonas' has no attribute {name!r}")


__all__ = ["KINDS", "Component", "__version__", "load_ensemble", "register", "registry"]
