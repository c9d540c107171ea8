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
from pruning_core.calibration import data_sets
from pruning_core.evaluation import collate, encode, length_batches
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
    dev = load_dataset("sst2")
    sets = data_sets("sst2", dev)
    cache = DiskCache()
    result = {}
    for name, data in (("dev", sets.evaluation), ("calibration", sets.calibration)):
        started = time.perf_counter()
        old = per_batch_importance(lm, data)
        new = head_importance(lm, data, cache=cache).normalized
        result[name] = {
            "data": data.name,
            "spearman_old_vs_new": round(float(spearmanr(old.ravel(), new.ravel()).statistic), 4),
            "seconds": round(time.perf_counter() - started, 1),
        }
        result[name]["old"] = old.round(5).tolist()
    new_cal = head_importance(lm, sets.calibration, cache=cache).normalized
    old_dev = np.asarray(result["dev"]["old"])
    result["spearman_old_dev_vs_new_calibration"] = round(float(spearmanr(old_dev.ravel(), new_cal.ravel()).statistic), 4)
    print(
        json.dumps(
            {k: ({kk: vv for kk, vv in v.items() if kk != "old"} if isinstance(v, dict) else v) for k, v in result.items()}, indent=2
        )
    )


if __name__ == "__main__":
    main()
