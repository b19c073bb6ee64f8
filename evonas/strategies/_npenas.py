"""NPENAS: Wei et al., "NPENAS: Neural Predictor Guided Evolution for Neural Architecture
Search", arXiv:2003.12857, 2020."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, ClassVar

from evonas.config import MAX_POPULATION, Range
from evonas.spaces import Arch
from evonas.strategies._bananas import Acquisition, GuidedConfig, PredictorGuidedSearch


@dataclass(frozen=True)
class NPENASConfig(GuidedConfig):
    """Hyper-parameters of NPENAS (defaults: ``num_init`` 10, ``batch_size`` 10,
    ``num_parents`` 10, a 50-tree random forest as the predictor).

    Attributes:
        children_per_parent: One-edit mutations drawn from each parent per batch
            (default 10); repeats and architectures proposed before are dropped.
        acquisition: ``mean`` (default: NPENAS-NP, children ranked by the predicted
            fitness) or an acquisition over an uncertainty estimate, e.g. ``its``
            (NPENAS-BO, independent Thompson sampling).
    """

    children_per_parent: Annotated[int, Range(1, MAX_POPULATION)] = 10
    acquisition: Acquisition = "mean"


class NPENAS(PredictorGuidedSearch):
    """Neural-predictor-guided evolution (Wei et al., 2020).

    The population is every architecture evaluated successfully, which is also the
    predictor's training set. Each step the best ``num_parents`` members are parents;
    every parent breeds ``children_per_parent`` children by one-edit mutation; the
    predictor scores the children and the ``batch_size`` best are evaluated and join the
    population. NPENAS-NP ranks by the predicted fitness (``acquisition: mean``; the
    paper's predictor is a graph network: ``surrogate: {name: gin}``); NPENAS-BO by
    Thompson sampling from a predictor with uncertainty (``acquisition: its``). See
    :class:`~evonas.strategies._bananas.PredictorGuidedSearch` for failures, the first
    batch and refitting.
    """

    Config: ClassVar[type] = NPENASConfig

    def candidates(self, parents: Sequence[Arch]) -> list[Arch]:
        found: dict[Arch, None] = {}
        for parent in parents:
            for _ in range(self.config.children_per_parent):
                child = self.space.mutate(parent, self.rng)
                if child not in self._proposed:
                    found.setdefault(child)
        return list(found)
