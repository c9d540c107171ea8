"""Does a criterion carry signal on this model? (SPEC section 3: a criterion without signal is flagged.)

Measured against leave-one-out damage on the calibration set (the loss increase when the head
alone is gated off), the one effect every criterion claims to predict. A criterion has no signal
when either
- its spread is negligible: the 10-90 percentile range covers less than ``MIN_SPREAD`` (5%) of
  the criterion's possible range (stability and CKA live in [0, 1]), so any threshold either
  passes almost every head or almost none; or
- it does not rank heads by damage: the Spearman correlation with the leave-one-out loss
  increase, in the direction the criterion claims (high stability or high similarity = less
  damage, high importance = more), is not significant (one-sided p >= 0.05).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.stats import spearmanr

MIN_SPREAD = 0.05
ALPHA = 0.05

# criterion -> (possible range, sign of the expected Spearman correlation with damage)
EXPECTED = {
    "importance": ((0.0, 1.0), +1),
    "fisher": (None, +1),
    "stability": ((0.0, 1.0), -1),
    "similarity": ((0.0, 1.0), -1),
}


@dataclass(frozen=True)
class Signal:
    """The verdict for one criterion, with the numbers behind it."""

    criterion: str
    signal: bool
    reason: str
    low: float
    high: float
    spread: float
    spearman: float
    p_value: float

    def to_dict(self) -> dict:
        return asdict(self)


def criterion_signal(criterion: str, values: np.ndarray, damage: np.ndarray) -> Signal:
    """Judge ``values`` (layers, heads) of ``criterion`` against leave-one-out ``damage``."""
    value_range, sign = EXPECTED[criterion]
    x, y = np.asarray(values, float).ravel(), np.asarray(damage, float).ravel()
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if len(x) < 3:
        return Signal(criterion, False, "fewer than 3 heads with values", np.nan, np.nan, np.nan, np.nan, np.nan)
    low, high = np.percentile(x, [10, 90])
    width = (value_range[1] - value_range[0]) if value_range else (x.max() - x.min())
    spread = float((high - low) / width) if width > 0 else 0.0
    rho = spearmanr(x, y).statistic if np.ptp(x) > 0 and np.ptp(y) > 0 else 0.0
    rho = 0.0 if not np.isfinite(rho) else float(rho)
    one_sided = float(spearmanr(x, y, alternative="greater" if sign > 0 else "less").pvalue) if rho != 0 else 1.0
    reasons = []
    if spread < MIN_SPREAD:
        reasons.append(f"10-90% of heads span only {low:.3f}-{high:.3f} ({100 * spread:.1f}% of its range)")
    if one_sided >= ALPHA:
        direction = "more" if sign > 0 else "less"
        reasons.append(
            f"it does not rank heads by leave-one-out damage (Spearman {rho:+.2f}, one-sided p = {one_sided:.2g}; "
            f"expected higher values = {direction} damage)"
        )
    verdict = not reasons
    reason = "; ".join(reasons) if reasons else f"ranks heads by leave-one-out damage (Spearman {rho:+.2f}, p = {one_sided:.2g})"
    return Signal(criterion, verdict, reason, float(low), float(high), spread, rho, one_sided)


def signal_report(criteria: dict[str, np.ndarray], damage: np.ndarray) -> dict[str, Signal]:
    """:func:`criterion_signal` for every criterion of ``criteria`` that has an expectation."""
    return {name: criterion_signal(name, values, damage) for name, values in criteria.items() if name in EXPECTED}
