"""Old (per-batch) against new (per-example) importance on the demo: Spearman of the head rankings.

The old estimator took |dL/d xi| of each length-bucketed batch's mean loss (token budget 2048),
so examples' gradients cancelled before the absolute value; the new one takes it per example.

    BHPVAS_CACHE_DIR=... python bench/importance_spearman.py [--precision fp32]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from scipy.stats import spearmanr

from pruning_core import DiskCache, load_dataset, load_model
from pruning_core.batching import collate, encode, length_batches
from pruning_core.calibration import data_sets
from pruning_core.scores import head_importance, layer_normalize


def per_batch_importance(lm, dataset, max_tokens: int = 2048) -> np.ndarray:
    """The previous estimator: sum over batches of |d mean-batch-loss / d xi| / tokens, layer-normalised."""
    encoded = encode(lm, dataset)
    total = np.zeros(lm.shape)
    tokens = 0
    for indices in length_batches(encoded.lengths, max_tokens):
        gates = torch.ones(lm.shape, requires_grad=True)
        batch = collate(encoded, indices, lm.pad_id, lm.device)
        labels = torch.as_tensor(encoded.labels[indices], device=lm.device)
        with lm.gated(gates):
            loss = torch.nn.functional.cross_entropy(lm.model(**batch).logits, labels)
        (grad,) = torch.autograd.grad(loss, gates)
        total += grad.abs().double().cpu().numpy()
        tokens += int(batch["attention_mask"].sum())
    return layer_normalize(total / tokens)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--precision", default="fp32")
    args = parser.parse_args()
    lm = load_model("demo", precision=args.precision)
    sets = data_sets("sst2", load_dataset("sst2"))
    cache = DiskCache()
    started = time.perf_counter()
    old_dev = per_batch_importance(lm, sets.evaluation).ravel()
    new_dev = head_importance(lm, sets.evaluation, cache=cache).normalized.ravel()
    new_calibration = head_importance(lm, sets.calibration, cache=cache).normalized.ravel()
    result = {
        "old_per_batch_dev_vs_new_per_example_dev": round(float(spearmanr(old_dev, new_dev).statistic), 4),
        "old_per_batch_dev_vs_new_per_example_calibration": round(float(spearmanr(old_dev, new_calibration).statistic), 4),
        "new_dev_vs_new_calibration": round(float(spearmanr(new_dev, new_calibration).statistic), 4),
        "calibration": sets.calibration_description,
        "seconds": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
