"""The BHPVAS composite criterion: low importance together with high stability and/or similarity.

As a scheme (the sidebar's proposal): a head is proposed when importance <= t_I and, for the
enabled criteria, stability >= t_S and/or similarity >= t_C. As an order (the curve): heads by a
composite rank score, the mean of the percentile ranks of low importance, high stability and
high similarity.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata

from ..analysis import AnalysisBundle
from ..schemes import Scheme
from .base import Head, Strategy, StrategyContext, register


@dataclass(frozen=True)
class Thresholds:
    """Sidebar thresholds; importance is the display scale (min-max to [0, 1])."""

    importance: float = 0.3
    stability: float | None = 0.9
    similarity: float | None = 0.5
    logic: str = "or"

    def proposed(self, bundle: AnalysisBundle) -> np.ndarray:
        """Boolean (layers, heads): heads proposed for pruning."""
        criteria = bundle.criteria()
        low = np.nan_to_num(criteria["importance_display"], nan=np.inf) <= self.importance
        checks = []
        if self.stability is not None:
            checks.append(np.nan_to_num(criteria["stability"], nan=-np.inf) >= self.stability)
        if self.similarity is not None:
            checks.append(np.nan_to_num(criteria["similarity"], nan=-np.inf) >= self.similarity)
        if not checks:
            return low
        combined = np.logical_and.reduce(checks) if self.logic == "and" else np.logical_or.reduce(checks)
        return low & combined

    def scheme(self, bundle: AnalysisBundle, model: str = "") -> Scheme:
        return Scheme.from_mask(~self.proposed(bundle), model=model, name="bhpvas-thresholds")


def composite_score(bundle: AnalysisBundle, use_stability: bool = True, use_similarity: bool = True) -> np.ndarray:
    """Mean percentile rank of (low importance, high stability, high similarity); higher = prune earlier."""
    criteria = bundle.criteria()
    parts = [rankdata(-np.nan_to_num(criteria["importance"], nan=np.inf).ravel()) / criteria["importance"].size]
    if use_stability:
        parts.append(rankdata(np.nan_to_num(criteria["stability"], nan=-np.inf).ravel()) / criteria["stability"].size)
    if use_similarity:
        parts.append(rankdata(np.nan_to_num(criteria["similarity"], nan=-np.inf).ravel()) / criteria["similarity"].size)
    return np.mean(parts, axis=0).reshape(bundle.shape)


@register
class Composite(Strategy):
    name = "bhpvas"
    label = "BHPVAS composite"
    description = "Heads by the mean percentile rank of low importance, high stability and high similarity."

    def __init__(self, use_stability: bool = True, use_similarity: bool = True):
        self.use_stability = use_stability
        self.use_similarity = use_similarity

    def order(self, ctx: StrategyContext) -> list[Head]:
        score = composite_score(ctx.bundle, self.use_stability, self.use_similarity)
        return sorted(ctx.all_heads(), key=lambda h: (-score[h], h))
