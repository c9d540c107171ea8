"""The BHPVAS proposal: which heads the sidebar's thresholds propose, least important first.

The thresholds and their defaults are :class:`~pruning_core.strategies.composite.Thresholds` (one set
of defaults for the CLI, the strategies and the app); this module orders and caps what they select.
"""

from __future__ import annotations

import numpy as np

from .analysis import AnalysisBundle
from .strategies.composite import Thresholds

Head = tuple[int, int]


def proposed_heads(bundle: AnalysisBundle, rule: Thresholds, target: int = 0) -> tuple[list[Head], int]:
    """Heads ``rule`` proposes, least important first (at most ``target`` when it is above 0), and how many met it."""
    meets = rule.proposed(bundle)
    importance = bundle.importance.display()
    layers, heads = np.nonzero(meets)
    order = np.argsort(importance[layers, heads], kind="stable")
    chosen = [(int(layers[i]), int(heads[i])) for i in order]
    count = len(chosen)
    if target > 0:
        chosen = chosen[:target]
    return chosen, count
