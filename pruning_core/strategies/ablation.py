"""Leave-one-out: heads in ascending order of the calibration loss increase when each alone is gated off."""

from __future__ import annotations

import numpy as np

from ..ablation import leave_one_out
from .base import Head, Strategy, StrategyContext, by_importance, register


@register
class LeaveOneOutOrder(Strategy):
    name = "loo"
    label = "Leave-one-out"
    description = "Heads in ascending order of the calibration loss increase when that head alone is gated off (measured, computed once)."
    version = 2  # 2: leave-one-out on the fast path (a head's share subtracted from its layer's projection), rounding-level changes

    def order(self, ctx: StrategyContext) -> list[Head]:
        loo = ctx.bundle.loo
        if loo is None:
            loo = leave_one_out(ctx.lm, ctx.calibration_set, cache=ctx.cache)
        return by_importance(np.asarray(loo.loss, dtype=float), ctx.all_heads())
