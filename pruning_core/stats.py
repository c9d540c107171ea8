"""Uncertainty of accuracy changes on a fixed evaluation set (SPEC section 3).

A pruned model and the full model are scored on the same samples, so their difference is paired:
- paired bootstrap: resample samples with replacement (seeded), recompute the accuracy change on
  each resample, report the 2.5 and 97.5 percentiles;
- McNemar exact test: among the discordant samples (exactly one of the two models is right), the
  count where only the full model is right is Binomial(n_discordant, 1/2) under "no change";
  two-sided exact p-value.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.stats import binom

DEFAULT_RESAMPLES = 2000
SHAPES = "full_correct and pruned_correct must be non-empty 1-D arrays of the same length"
ALPHA = 0.05


def within_drop(accuracy, full_accuracy, max_drop: float):
    """Whether ``accuracy`` stays within ``max_drop`` of the full model (the 1- and 3-point knees'
    criterion); elementwise for arrays."""
    return accuracy >= full_accuracy - max_drop - 1e-12


def is_significant_drop(delta: float, p_value: float) -> bool:
    """Accuracy is lower and McNemar's test rejects "no change" at the 5% level."""
    return delta < 0 and p_value < ALPHA


@dataclass(frozen=True)
class Change:
    """Accuracy change of a pruned model against the full model, with its uncertainty."""

    delta: float
    low: float
    high: float
    p_value: float
    lost: int
    gained: int

    @property
    def significant_drop(self) -> bool:
        """Accuracy is lower and McNemar's test rejects "no change" at the 5% level."""
        return is_significant_drop(self.delta, self.p_value)

    def to_dict(self) -> dict[str, float | int]:
        return {
            "delta": self.delta,
            "low": self.low,
            "high": self.high,
            "p_value": self.p_value,
            "lost": self.lost,
            "gained": self.gained,
        }


def mcnemar_exact(lost: int | np.ndarray, gained: int | np.ndarray) -> float | np.ndarray:
    """Two-sided exact McNemar p-value: 2 * P(Binomial(lost + gained, 1/2) <= min(lost, gained)), at most 1.

    ``lost``: samples the full model gets right and the pruned one wrong; ``gained``: the reverse.
    Vectorised over arrays; no discordant pair gives p = 1.
    """
    lost_a, gained_a = np.broadcast_arrays(np.asarray(lost), np.asarray(gained))
    if lost_a.ndim == 0:
        return float(_mcnemar(lost_a, gained_a))
    # Bootstrap knees ask for hundreds of thousands of (lost, gained) pairs but only a few hundred distinct ones.
    lost_i, gained_i = lost_a.astype(np.int64).ravel(), gained_a.astype(np.int64).ravel()
    base = int(gained_i.max(initial=0)) + 1
    keys, inverse = np.unique(lost_i * base + gained_i, return_inverse=True)
    return _mcnemar(keys // base, keys % base)[inverse].reshape(lost_a.shape)


def _mcnemar(lost: np.ndarray, gained: np.ndarray) -> np.ndarray:
    n = lost + gained
    return np.where(n == 0, 1.0, np.minimum(1.0, 2.0 * binom.cdf(np.minimum(lost, gained), n, 0.5)))


@lru_cache(maxsize=4)
def bootstrap_counts(n: int, resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> np.ndarray:
    """(resamples, n) how often each sample is drawn, with replacement, in each resample (read-only).

    One seeded draw is shared by every comparison that should be paired (all points of all curves
    on one evaluation set). A resample's statistic is then a product with the counts: sums of
    0/1 values weighted by whole counts are exact in float64, so every point's resampled
    accuracies come from one matrix product instead of a gather per point.
    """
    indices = np.random.default_rng(seed).integers(0, n, size=(resamples, n))
    offsets = np.arange(resamples, dtype=np.int64)[:, None] * n
    counts = np.bincount((indices + offsets).ravel(), minlength=resamples * n).reshape(resamples, n).astype(np.float64)
    counts.flags.writeable = False
    return counts


def accuracy_changes(
    full_correct: np.ndarray, pruned_correct: np.ndarray, resamples: int = DEFAULT_RESAMPLES, seed: int = 0, level: float = 0.95
) -> list[Change]:
    """:func:`accuracy_change` of every row of ``pruned_correct`` (points, samples), on the same resamples."""
    full_correct = np.asarray(full_correct, dtype=bool)
    rows = np.atleast_2d(np.asarray(pruned_correct, dtype=bool))
    if full_correct.ndim != 1 or len(full_correct) == 0 or rows.ndim != 2 or rows.shape[1] != len(full_correct):
        raise ValueError(SHAPES)
    n = len(full_correct)
    diff = rows.astype(np.float64) - full_correct.astype(np.float64)
    deltas = diff @ bootstrap_counts(n, resamples, seed).T / n
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(deltas, [tail, 100 - tail], axis=1)
    lost = (full_correct & ~rows).sum(1)
    gained = (~full_correct & rows).sum(1)
    p_values = np.atleast_1d(mcnemar_exact(lost, gained))
    return [
        Change(float(d), float(lo), float(hi), float(p), int(a), int(b))
        for d, lo, hi, p, a, b in zip(diff.mean(1), low, high, p_values, lost, gained, strict=True)
    ]


def accuracy_change(
    full_correct: np.ndarray, pruned_correct: np.ndarray, resamples: int = DEFAULT_RESAMPLES, seed: int = 0, level: float = 0.95
) -> Change:
    """Accuracy change (pruned - full) with its paired-bootstrap interval and McNemar p-value."""
    pruned_correct = np.asarray(pruned_correct, dtype=bool)
    if pruned_correct.ndim != 1:
        raise ValueError(SHAPES)
    return accuracy_changes(full_correct, pruned_correct[None], resamples, seed, level)[0]


def change_from_predictions(labels: np.ndarray, full_preds: np.ndarray, preds: np.ndarray, seed: int = 0) -> Change:
    """:func:`accuracy_change` from class predictions (e.g. an ``EvalResult``'s ``labels``,
    ``full_preds`` and ``preds``: the sidebar's interval for the current scheme)."""
    labels = np.asarray(labels)
    return accuracy_change(np.asarray(full_preds) == labels, np.asarray(preds) == labels, seed=seed)
