"""Repair variants on the demo (fp32): attention output only vs attention + feed-forward output.

Importance order (per-example ``head_importance`` on the calibration set, 2,000 SST-2 train
sentences). For each K and variant: the repaired pruned model's agreement and KL divergence
against the full model on 1,000 other SST-2 train sentences (not in the calibration set; how the
default variant was chosen), then its SST-2 dev accuracy (the evaluation set: reported, not used
to choose).

    python bench/repair_variants.py --ks 20,40,50,55,60,65 > bench/measured/repair_variants.jsonl
"""

from __future__ import annotations

import argparse
import json
import time

from held_out import demo_setup, kl

from pruning_core import DiskCache, evaluate
from pruning_core.repair import TeacherTargets, repair_scheme, repaired_pruned
from pruning_core.schemes import Scheme

VARIANTS = (("attention", "attention"), ("full", "attention"), ("attention", "residual"), ("full", "residual"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ks", default="40,50,60", help="heads pruned (importance order)")
    args = parser.parse_args()
    lm, dev, calibration, held, full_held, order = demo_setup()
    teachers = {target: TeacherTargets() for target in ("attention", "residual")}
    uncached = DiskCache(enabled=False)
    for k in (int(k) for k in args.ks.split(",") if k):
        scheme = Scheme(lm.num_layers, lm.num_heads, frozenset(order[:k]))
        print(json.dumps({"k": k, "masked_dev": round(evaluate(lm, dev, scheme).accuracy, 4)}), flush=True)
        for variant, target in VARIANTS:
            started = time.perf_counter()
            repair = repair_scheme(lm, scheme, calibration, variant=variant, target=target, teacher=teachers[target], cache=uncached)
            seconds = time.perf_counter() - started
            model = repaired_pruned(lm, repair)
            on_held, on_dev = evaluate(model, held), evaluate(model, dev)
            row = {
                "k": k,
                "variant": variant,
                "target": target,
                "held_out_agreement": round(float((on_held.preds == full_held.preds).mean()), 4),
                "held_out_kl": round(kl(full_held.probs, on_held.probs), 5),
                "dev": round(on_dev.accuracy, 4),
                "repair_seconds": round(seconds, 1),
            }
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
