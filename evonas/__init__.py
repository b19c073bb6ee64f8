"""evonas: evolutionary and ensemble neural architecture search with performance predictors.

Extension points are registries; a plugin adds to them with :func:`register`::

    import evonas

    @evonas.register("space", "chain")
    class ChainSpace(evonas.spaces.SpaceBase): ...

See :data:`evonas._registry.KINDS` for every kind and its calling convention, and
:mod:`evonas.plugins` for how plugins are loaded (``--plugin``, entry points, Ray workers).
"""

from __future__ import annotations

from evonas._registry import KINDS, Component, register, registry

__version__ = "0.1.0"

__all__ = ["KINDS", "Component", "__version__", "register", "registry"]
