"""What the repair benches share: the demo in fp32, its calibration set, 1,000 held-out SST-2 train
sentences (not in the calibration set), the importance order, and KL between class distributions."""

from __future__ import annotations

import json

import numpy as np

from pruning_core import evaluate, load_dataset, load_model
from pruning_core.data import TextDataset
from pruning_core.evaluation import EvalResult
from pruning_core.loading import LoadedModel
from pruning_core.repair import calibration_for
from pruning_core.scores import head_importance
from pruning_core.strategies import by_importance


def kl(p: np.ndarray, q: np.ndarray) -> float:
    """Mean KL(p || q) over rows of class probabilities."""
    p, q = np.clip(p, 1e-9, 1), np.clip(q, 1e-9, 1)
    return float((p * (np.log(p) - np.log(q))).sum(-1).mean())


def demo_setup() -> tuple[LoadedModel, TextDataset, TextDataset, TextDataset, EvalResult, list]:
    """(model, dev, calibration, held-out train, the full model on held-out, importance order);
    prints the full model's accuracies as the first JSON line."""
    lm = load_model("demo", precision="fp32")
    dev = load_dataset("sst2")
    calibration = calibration_for(dev)
    train = load_dataset("sst2:train")
    used = set(calibration.texts)
    candidates = np.random.default_rng(7).permutation(len(train))[:3000]
    held = train.subset(np.sort(np.array([i for i in candidates if train.texts[i] not in used][:1000])), name="sst2:train[1000 held out]")
    full_dev, full_held = evaluate(lm, dev), evaluate(lm, held)
    print(json.dumps({"precision": "fp32", "full_dev": full_dev.accuracy, "full_held_out_train": full_held.accuracy}), flush=True)
    heads = [(layer, head) for layer in range(lm.num_layers) for head in range(lm.num_heads)]
    order = by_importance(head_importance(lm, calibration).normalized, heads)
    return lm, dev, calibration, held, full_held, order
