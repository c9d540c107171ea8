"""Leave-one-out ablation: the change of loss and accuracy when one head alone is gated off.

A measured criterion (no gradient approximation): for every present head h, the calibration set
(at most :data:`~pruning_core.calibration.MEASURED_ROWS` rows of it, a seeded sample) is
evaluated with h gated off, through the compact and incremental evaluation path (the full
model's hidden states are remembered, so only the layers from h's layer up are recomputed).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .cache import DiskCache, cache_key
from .calibration import MEASURED_ROWS, measured_subset
from .data import TextDataset
from .evaluation import evaluate
from .loading import LoadedModel
from .progress import ProgressFn, no_progress


@dataclass
class LeaveOneOut:
    """Per head (layers, heads): loss and accuracy with the head gated off, minus the full model's."""

    loss: np.ndarray
    accuracy: np.ndarray
    full_loss: float
    full_accuracy: float
    n: int

    def arrays(self) -> dict[str, np.ndarray]:
        return {
            "loss": self.loss,
            "accuracy": self.accuracy,
            "full": np.asarray([self.full_loss, self.full_accuracy]),
            "n": np.asarray(self.n),
        }

    @classmethod
    def from_arrays(cls, a: dict[str, np.ndarray]) -> LeaveOneOut:
        return cls(a["loss"], a["accuracy"], float(a["full"][0]), float(a["full"][1]), int(a["n"]))


def leave_one_out(
    lm: LoadedModel,
    dataset: TextDataset,
    progress: ProgressFn | None = None,
    cache: DiskCache | None = None,
    rows: int | None = MEASURED_ROWS,
) -> LeaveOneOut:
    """Loss and accuracy change of gating off each present head alone, on ``dataset`` (at most
    ``rows`` rows of it, a seeded sample; None: all rows; cached)."""
    cache = cache if cache is not None else DiskCache()
    if rows is not None:
        dataset = measured_subset(dataset, rows)
    report = progress or no_progress
    present = lm.present_mask()
    key = cache_key("loo", model=lm.fingerprint, data=dataset.fingerprint, present=present.tobytes().hex(), precision=lm.precision)
    hit = cache.get(key)
    if hit is not None:
        return LeaveOneOut.from_arrays(hit[0])
    full = evaluate(lm, dataset, None, cache=cache, remember=True)
    loss = np.full(lm.shape, np.nan)
    accuracy = np.full(lm.shape, np.nan)
    heads = list(zip(*np.nonzero(present)))
    for i, (layer, head) in enumerate(heads):
        keep = present.copy()
        keep[layer, head] = False
        result = evaluate(lm, dataset, keep, cache=cache)
        loss[layer, head] = result.loss - full.loss
        accuracy[layer, head] = result.accuracy - full.accuracy
        report((i + 1) / len(heads), f"leave-one-out {i + 1}/{len(heads)}")
    result = LeaveOneOut(loss, accuracy, full.loss, full.accuracy, full.n)
    cache.put(key, result.arrays())
    return result
