"""One-shot importance, Fisher importance and Michel et al.'s iterative pruning."""

from __future__ import annotations

import numpy as np

from ..schemes import Scheme
from ..scores import head_importance
from .base import Head, Strategy, StrategyContext, by_importance, register


@register
class OneShotImportance(Strategy):
    name = "importance"
    label = "Importance (one-shot)"
    description = "Heads in ascending order of the full model's normalised importance, computed once."

    def order(self, ctx: StrategyContext) -> list[Head]:
        return by_importance(ctx.bundle.importance.normalized, ctx.all_heads())


@register
class FisherImportance(Strategy):
    name = "fisher"
    label = "Fisher (one-shot)"
    description = (
        "Kwon et al. 2022: heads in ascending order of E_x (dL(x)/d gate)^2 on the calibration set, "
        "compared across layers as is (no per-layer normalisation)."
    )

    def order(self, ctx: StrategyContext) -> list[Head]:
        return by_importance(ctx.bundle.importance.fisher, ctx.all_heads())


@register
class MichelIterative(Strategy):
    name = "michel"
    label = "Michel iterative"
    description = (
        "Michel et al. 2019: prune `step` heads of lowest importance, recompute importance (calibration set) under the current mask, "
        "repeat; a pruned head is never re-added."
    )
    version = 2  # 2: recomputations in the model's precision (bf16 where native), eager attention (1: fp32, sdpa)

    def __init__(self, step: int | None = None, importance_fn=None):
        self.step = step
        self.importance_fn = importance_fn or (
            lambda ctx, keep: head_importance(ctx.lm, ctx.calibration_set, keep, cache=ctx.cache, precision=ctx.lm.precision).normalized
        )

    def order(self, ctx: StrategyContext) -> list[Head]:
        layers, heads = ctx.shape
        total = layers * heads
        step = self.step or max(1, round(0.1 * total))
        pruned: list[Head] = []
        importance = ctx.bundle.importance.normalized
        while len(pruned) < total:
            remaining = [h for h in ctx.all_heads() if h not in set(pruned)]
            pruned.extend(by_importance(importance, remaining)[: min(step, total - len(pruned))])
            if len(pruned) >= total:
                break
            keep = Scheme(layers, heads, frozenset(pruned)).keep_mask()
            ctx.progress(len(pruned) / total, f"Michel: importance with {len(pruned)} heads pruned")
            importance = self.importance_fn(ctx, keep)
            importance = np.where(keep, importance, np.inf)
        return pruned
