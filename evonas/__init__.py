"""evonas: evolutionary and ensemble neural architecture search with performance predictors."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
