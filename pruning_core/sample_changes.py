"""Per sample, what a scheme changed against the full model: flipped predictions, correctness and
the change of the true label's probability, with the broken samples first."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .evaluation import EvalResult


@dataclass
class SampleChanges:
    """Arrays over the samples of one dataset; ``order`` lists them flipped first, then by ``delta_label``."""

    flipped: np.ndarray
    correct: np.ndarray
    delta_label: np.ndarray
    order: np.ndarray


def sample_changes(full: EvalResult, current: EvalResult) -> SampleChanges:
    """Compare ``current`` (a scheme's evaluation) with ``full`` (the full model's) on the same data."""
    rows = np.arange(current.n)
    flipped = current.preds != full.preds
    correct = current.preds == current.labels
    delta = current.probs[rows, current.labels] - full.probs[rows, full.labels]
    order = np.lexsort((delta, ~flipped))
    return SampleChanges(flipped, correct, delta, order)
