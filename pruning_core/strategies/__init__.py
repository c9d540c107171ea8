"""Pruning strategies; each module registers its strategies in :data:`REGISTRY`."""

from . import ablation, composite, dsp, importance, layers, random_order, repair_aware  # noqa: F401  (registration)
from .base import REGISTRY, Head, Strategy, StrategyContext, by_importance, register
from .composite import Thresholds, composite_order
from .dsp import DSPResult, soft_top_k, train_dsp
from .layers import layer_order

__all__ = [
    "REGISTRY",
    "DSPResult",
    "Head",
    "Strategy",
    "StrategyContext",
    "Thresholds",
    "by_importance",
    "composite_order",
    "layer_order",
    "register",
    "soft_top_k",
    "train_dsp",
]
