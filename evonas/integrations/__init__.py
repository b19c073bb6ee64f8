"""Integrations with other optimisation frameworks, each behind an optional extra.

* :mod:`evonas.integrations.optuna` (``pip install 'evonas[optuna]'``): ``EvonasSampler``
  drives an Optuna study with any evonas strategy; the strategies ``optuna_tpe`` and
  ``optuna_nsga2`` run Optuna's samplers inside ``evonas search``.
* :mod:`evonas.integrations.ray_tune` (``pip install 'evonas[tune]'``): ``EvonasSearcher``
  runs any evonas strategy as a Ray Tune search algorithm inside ``Tuner.fit()``.

Importing this package imports neither framework; importing a submodule whose framework is
missing raises :class:`MissingExtraError`, an ``ImportError`` whose one-line message names
the extra to install.
"""

from __future__ import annotations

from evonas.integrations._extras import EXTRAS, MissingExtraError

__all__ = ["EXTRAS", "MissingExtraError"]
