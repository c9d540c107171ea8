"""Seconds per "+ repair" curve point on the demo (calibration 2,000 SST-2 train sentences, evaluation
SST-2 dev), with the full model's side of the repair recomputed for every point (``live``, what
each point cost before ``TeacherTargets``) and kept across points (``kept``), interleaved; prints
one JSON line per point (wall and process CPU seconds) and checks both give the same accuracy.
The first ``kept`` point includes the one-off pass over the calibration set. Orders: the shipped
demo curves' one-shot importance.

    python bench/repair_points.py --ks 22,36,50 --repeats 2 [--precision fp32]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from pruning_core import DiskCache, evaluate, load_dataset, load_model
from pruning_core.calibration import data_sets
from pruning_core.curves import load_curves
from pruning_core.repair import TeacherTargets
from pruning_core.repair_curves import repaired_accuracy
from pruning_core.schemes import Scheme


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ks", default="22,36,50", help="heads pruned at each measured point")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--precision", default="fp32")
    args = parser.parse_args()
    lm = load_model("demo", precision=args.precision)
    sets = data_sets("sst2", load_dataset("sst2"))
    shipped = Path(__file__).resolve().parents[1] / "pruning_core" / "assets" / "demo_results" / "curves.json"
    order = load_curves(shipped).curves["importance"].orders[0]
    kept = TeacherTargets()
    for repeat in range(args.repeats):
        for k in (int(k) for k in args.ks.split(",")):
            accuracies = {}
            for mode, teacher in (("live", TeacherTargets(max_bytes=0)), ("kept", kept)):
                cache = DiskCache(tempfile.mkdtemp())
                evaluate(lm, sets.evaluation, None, cache=cache)
                wall, cpu = time.perf_counter(), time.process_time()
                result, _ = repaired_accuracy(
                    lm, sets.evaluation, sets.calibration, Scheme(*lm.shape, frozenset(order[:k])), cache=cache, teacher=teacher
                )
                accuracies[mode] = result.accuracy
                row = {"repeat": repeat, "k": k, "mode": mode, "wall_s": round(time.perf_counter() - wall, 2)}
                print(json.dumps({**row, "cpu_s": round(time.process_time() - cpu, 2), "accuracy": result.accuracy}), flush=True)
            assert accuracies["live"] == accuracies["kept"]


if __name__ == "__main__":
    main()
