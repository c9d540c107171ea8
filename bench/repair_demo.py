"""Repair on the demo (fp32): calibration 2,000 sampled SST-2 train sentences, evaluation SST-2 dev.

Prints one JSON line per measurement: one-shot importance (per-example ``head_importance`` on the
calibration set) with K heads pruned, masked vs repaired; the repair-aware strategy's repaired accuracy at K;
optionally a recovery fine-tune of importance@60 + repair.

    BHPVAS_CACHE_DIR=/tmp/c python bench/repair_demo.py --importance 50,60 --repair-aware 54,55,56,58,60 --recovery-steps 200
"""

from __future__ import annotations

import argparse
import json
import time

from pruning_core import DiskCache, evaluate, load_dataset, load_model
from pruning_core.recovery import RecoveryParams, recover
from pruning_core.repair import calibration_for, repair_scheme, repaired_pruned
from pruning_core.schemes import Scheme
from pruning_core.scores import head_importance
from pruning_core.strategies import StrategyContext, by_importance
from pruning_core.strategies.repair_aware import RepairAware


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--importance", default="50,60", help="K values for one-shot importance")
    parser.add_argument("--repair-aware", default="54,55,56,58,60", help="K values for the repair-aware strategy")
    parser.add_argument("--recovery-steps", type=int, default=0, help="recovery fine-tune steps on importance@60 + repair (0: skip)")
    args = parser.parse_args()
    lm = load_model("demo", precision="fp32")
    dev = load_dataset("sst2")
    calibration = calibration_for(dev)
    full = evaluate(lm, dev).accuracy
    print(json.dumps({"full": full, "calibration": calibration.name}), flush=True)
    heads = [(layer, head) for layer in range(lm.num_layers) for head in range(lm.num_heads)]
    orders = {"importance": by_importance(head_importance(lm, calibration).normalized, heads)}
    started = time.perf_counter()
    orders["repair-aware"] = RepairAware(calibration=calibration).order(
        StrategyContext(lm, calibration, None, DiskCache(), calibration=calibration)
    )
    print(json.dumps({"repair_aware_order_seconds": round(time.perf_counter() - started, 1)}), flush=True)
    for name, ks in (("importance", args.importance), ("repair-aware", args.repair_aware)):
        for k in (int(k) for k in ks.split(",") if k):
            scheme = Scheme(lm.num_layers, lm.num_heads, frozenset(orders[name][:k]))
            masked = evaluate(lm, dev, scheme).accuracy
            repair = repair_scheme(lm, scheme, calibration)
            repaired = evaluate(repaired_pruned(lm, repair), dev).accuracy
            row = {"strategy": name, "k": k, "masked": round(masked, 4), "repaired": round(repaired, 4)}
            print(json.dumps({**row, "drop_points": round(100 * (full - repaired), 2), "repair_s": round(repair.seconds, 1)}), flush=True)
    if args.recovery_steps:
        scheme = Scheme(lm.num_layers, lm.num_heads, frozenset(orders["importance"][:60]))
        student = repaired_pruned(lm, repair_scheme(lm, scheme, calibration))
        outcome = recover(student, lm, calibration, RecoveryParams(steps=args.recovery_steps), cache=DiskCache())
        after = evaluate(outcome.model, dev).accuracy
        print(
            json.dumps(
                {"recovery": "importance@60 + repair", "before": evaluate(student, dev).accuracy, "after": after, **outcome.summary()}
            )
        )


if __name__ == "__main__":
    main()
