"""Random pruning: a strong baseline (several seeds)."""

from __future__ import annotations

import numpy as np

from .base import Head, Strategy, StrategyContext, register


@register
class RandomOrder(Strategy):
    name = "random"
    label = "Random"
    description = "Heads in a uniformly random order from numpy's default_rng(seed); the curve shows the mean and min-max over seeds."

    def __init__(self, seed: int = 0):
        self.seed = seed

    def order(self, ctx: StrategyContext) -> list[Head]:
        heads = ctx.all_heads()
        return [heads[i] for i in np.random.default_rng(self.seed).permutation(len(heads))]
