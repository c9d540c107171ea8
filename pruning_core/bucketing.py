"""Training batches of similar-length rows (the demo model's fine-tuning, DSP's gates).

Kept apart from :mod:`pruning_core.batching` (which needs a loaded model) so that the demo's
training code can use it without importing the model loader.
"""

from __future__ import annotations

import numpy as np


def bucketed_batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator, window: int = 50) -> list[np.ndarray]:
    """One epoch of shuffled batches of similar-length rows: shuffle, sort within windows of
    ``window`` batches, cut into batches, shuffle the batches.

    For training (the demo model, DSP's gates): every row once per epoch, batches still random,
    and far less padding than plain random batches (most SST-2 train rows are short phrases).
    """
    order = rng.permutation(len(lengths))
    span = window * batch_size
    batches = []
    for start in range(0, len(order), span):
        chunk = order[start : start + span]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]
