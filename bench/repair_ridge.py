"""Repair's sensitivity to its ridge and to refitting the bias, on the demo (fp32).

Importance order (per-example ``head_importance`` on the calibration set, 2,000 SST-2 train
sentences); for each K, each ridge and with or without the bias refit: SST-2 dev accuracy of the
repaired pruned model, and its accuracy, agreement and KL against the full model on 1,000 other
SST-2 train sentences (not in the calibration set). The dev column is the evaluation set: read it
to understand the repair, not to choose its settings (the default ridge, 1e-3, was set before).

    python bench/repair_ridge.py --ks 40,50,55,60 > bench/measured/repair_ridge.jsonl
"""

from __future__ import annotations

import argparse
import json

from held_out import demo_setup, kl

from pruning_core import evaluate
from pruning_core.repair import TeacherTargets, repair_scheme, repaired_pruned
from pruning_core.schemes import Scheme

RIDGES = (0.001, 0.01, 0.1, 0.3, 1.0, 3.0, 10.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ks", default="40,50,55,60", help="heads pruned (importance order)")
    args = parser.parse_args()
    lm, dev, calibration, held, full_held, order = demo_setup()
    teacher = TeacherTargets()
    for k in (int(k) for k in args.ks.split(",") if k):
        scheme = Scheme(lm.num_layers, lm.num_heads, frozenset(order[:k]))
        print(json.dumps({"k": k, "masked_dev": evaluate(lm, dev, scheme).accuracy}), flush=True)
        for fit_bias in (True, False):
            for ridge in RIDGES:
                model = repaired_pruned(lm, repair_scheme(lm, scheme, calibration, ridge=ridge, fit_bias=fit_bias, teacher=teacher))
                on_dev, on_held = evaluate(model, dev), evaluate(model, held)
                row = {
                    "k": k,
                    "fit_bias": fit_bias,
                    "ridge": ridge,
                    "dev": round(on_dev.accuracy, 4),
                    "held_out_train": round(on_held.accuracy, 4),
                    "held_out_agreement": round(float((on_held.preds == full_held.preds).mean()), 4),
                    "held_out_kl": round(kl(full_held.probs, on_held.probs), 5),
                }
                print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
