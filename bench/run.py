"""Benchmark: bhpvas masked evaluation against a run_bertology-style reference, in one run.

The reference is written here as run_bertology evaluated masks: batches of 32, every sequence
padded to 128 tokens, eager attention, one full forward pass per mask, nothing cached. Both paths
evaluate the same model, data and masks; the script prints a table and writes JSON.

    python bench/run.py                 # masked evaluation + one-head toggles
    python bench/run.py --analysis      # also analyze + curves on the demo, cold and warm
    python bench/run.py --analysis-only --precision fp32   # only the whole analysis, in fp32
    python bench/run.py --model bert-base-random --precision bf16   # 12 x 12 heads, e.g. on a GPU
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from pruning_core import DiskCache, Scheme, evaluate, load_dataset, load_model
from pruning_core.batching import encode, resolve_keep_mask
from pruning_core.efficiency import encoder_macs
from pruning_core.evaluation import forward_logits
from pruning_core.fastpath import shared_start
from pruning_core.incremental import prefix_store


def matmul_peak(seconds: float = 3.0, dtype: torch.dtype = torch.float32) -> float:
    """Achieved GFLOP/s of a large matrix product in ``dtype`` on this device (best of repeats)."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    a = torch.randn(2048, 2048, device=device).to(dtype)
    b = torch.randn(2048, 2048, device=device).to(dtype)
    best = 0.0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        a @ b
        if device == "cuda":
            torch.cuda.synchronize()
        best = max(best, 2 * 2048**3 / (time.perf_counter() - start) / 1e9)
    return best


def reference_evaluate(lm_eager, dataset, keep: np.ndarray) -> tuple[float, np.ndarray]:
    """run_bertology style: batch 32, padded to 128, eager attention, full forward per mask."""
    texts = list(dataset.texts)
    labels = np.asarray(dataset.label_ids(lm_eager.label2id, lm_eager.num_labels))
    preds = []
    with torch.inference_mode(), lm_eager.gated(keep):
        for start in range(0, len(texts), 32):
            batch = lm_eager.tokenizer(
                texts[start : start + 32], padding="max_length", truncation=True, max_length=128, return_tensors="pt"
            )
            batch = {k: v.to(lm_eager.device) for k, v in batch.items()}
            preds.append(lm_eager.model(**batch).logits.argmax(-1).cpu().numpy())
    preds = np.concatenate(preds)
    return float((preds == labels).mean()), preds


def timed(fn, repeats: int) -> tuple[float, object]:
    times, value = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), value


def interleaved(fns: list, repeats: int) -> list:
    """Time ``fns`` in rounds (each once per round, in turn), so that a machine slowing down or
    speeding up during the run affects all of them alike: per function the median seconds and its
    last value, then per round the first function's speed-up over the last."""
    times: list[list[float]] = [[] for _ in fns]
    values: list[object] = [None] * len(fns)
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            start = time.perf_counter()
            values[i] = fn()
            times[i].append(time.perf_counter() - start)
    per_round = [last / first for first, last in zip(times[0], times[-1])]
    return [(statistics.median(t), v) for t, v in zip(times, values)] + [per_round]


def masked_flops(lm, encoded, keep: np.ndarray) -> float:
    """FLOPs of the mask's encoder over the dataset, every layer for every token (SPEC MACs x 2)."""
    heads = keep.sum(axis=1).tolist()
    return 2.0 * sum(encoder_macs(lm, int(t), heads) for t in encoded.lengths)


def compact_flops(lm, encoded, keep: np.ndarray) -> float:
    """FLOPs the compact path performs once the first layer's context vectors are stored: there
    only the output projection and the feed-forward; in the last layer keys and values for every
    token, everything else for the first token only."""
    heads = keep.sum(axis=1).tolist()
    d, dh = lm.num_heads * lm.head_dim, lm.head_dim
    d_ff = getattr(lm.config, "intermediate_size", None) or lm.config.hidden_dim
    total = 0
    for t in (int(x) for x in encoded.lengths):
        first = heads[0] * t * d * dh + 2 * t * d * d_ff
        last = heads[-1] * (2 * t * d * dh + 2 * d * dh + 2 * t * dh) + 2 * d * d_ff
        total += first + encoder_macs(lm, t, heads[1:-1]) + last
    return 2.0 * total


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def base_sized_model(folder: str) -> str:
    """A random-init BERT-base-sized classifier (12 layers x 12 heads, hidden 768) with the demo's
    tokenizer, saved under ``folder``: timing only, its accuracy is chance."""
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from pruning_core.demo import DEMO_DIR

    torch.manual_seed(0)
    config = BertConfig(num_labels=2, id2label={0: "negative", 1: "positive"}, label2id={"negative": 0, "positive": 1})
    BertForSequenceClassification(config).save_pretrained(folder)
    AutoTokenizer.from_pretrained(str(DEMO_DIR)).save_pretrained(folder)
    return folder


class EvaluationClock:
    """Seconds spent in the curves' masked evaluations, split into the 10 % grid, the knee
    refinement and the fp32 confirmation (the bench wraps the two modules' ``evaluate``)."""

    def __init__(self, grid: list[int]):
        self.grid = set(grid)
        self.seconds = {"grid": 0.0, "refinement": 0.0, "fp32_confirmation": 0.0}
        self.calls = dict.fromkeys(self.seconds, 0)

    def wrap(self, module, fixed_kind: str | None = None):
        original = module.evaluate

        def clocked(lm, dataset, scheme=None, **kwargs):
            start = time.perf_counter()
            result = original(lm, dataset, scheme, **kwargs)
            pruned = int((~resolve_keep_mask(lm, scheme)).sum())
            kind = fixed_kind or ("grid" if pruned in self.grid else "refinement")
            self.seconds[kind] += time.perf_counter() - start
            self.calls[kind] += int(not result.from_cache)
            return result

        module.evaluate = clocked
        return lambda: setattr(module, "evaluate", original)


def whole_analysis(lm, source: str, dataset) -> dict:
    """Analysis plus every default strategy's curves as the app computes them, cold (an empty
    cache, nothing remembered): scores on the calibration set, curves on the evaluation set, the
    knees confirmed in fp32 when the precision is lower; then reopened warm."""
    from pruning_core import confirm as confirm_module
    from pruning_core import curves as curves_module
    from pruning_core.analysis import analyze
    from pruning_core.calibration import data_sets
    from pruning_core.curves import CurveParams, compute_curves, pruning_steps

    sets = data_sets(source, dataset)
    described = sets.describe()
    with tempfile.TemporaryDirectory() as folder:
        cache = DiskCache(folder)
        prefix_store(lm).clear()
        start = time.perf_counter()
        bundle = analyze(lm, sets.calibration, cache=cache, calibration=described["calibration"])
        analysis_cold = time.perf_counter() - start
        clock = EvaluationClock(pruning_steps(lm.num_layers * lm.num_heads, CurveParams().step_fraction))
        restore = [clock.wrap(curves_module), clock.wrap(confirm_module, "fp32_confirmation")]
        start = time.perf_counter()
        try:
            curves = compute_curves(lm, sets.evaluation, bundle, cache=cache, calibration=sets.calibration, descriptions=described)
        finally:
            for undo in restore:
                undo()
        curves_cold = time.perf_counter() - start
        start = time.perf_counter()
        again = analyze(lm, sets.calibration, cache=cache, calibration=described["calibration"])
        compute_curves(lm, sets.evaluation, again, cache=cache, calibration=sets.calibration, descriptions=described)
        warm = time.perf_counter() - start
    return {
        "calibration": described["calibration"],
        "evaluation": described["evaluation"],
        "analysis_cold_s": round(analysis_cold, 1),
        "analysis_parts_s": bundle.timings,
        "curves_cold_s": round(curves_cold, 1),
        "curves_evaluations": curves.evaluations,
        "curves_per_strategy_s": {k: round(v.seconds, 1) for k, v in curves.curves.items()},
        "dsp": curves.extra.get("dsp"),
        "total_cold_s": round(analysis_cold + curves_cold, 1),
        "curve_evaluations_s": {kind: round(v, 1) for kind, v in clock.seconds.items()},
        "curve_evaluations_computed": clock.calls,
        "orders_s": round(curves_cold - sum(clock.seconds.values()), 1),
        "grid_only_cold_s": round(analysis_cold + curves_cold - clock.seconds["refinement"] - clock.seconds["fp32_confirmation"], 1),
        "reopen_warm_s": round(warm, 2),
        "knee": curves.knee_table(),
        "fp32_confirmation": curves.extra.get("fp32_confirmation"),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="demo")
    parser.add_argument("--data", default="sst2")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--precision", default=None, choices=("fp32", "bf16", "fp16"), help="evaluation autocast (default: bf16 on CUDA)")
    parser.add_argument("--analysis", action="store_true", help="also time analyze + curves cold and warm")
    parser.add_argument("--analysis-only", action="store_true", help="only the whole analysis (no mask timings)")
    parser.add_argument("--out", default=str(Path(__file__).with_name("results.json")))
    args = parser.parse_args()

    torch.manual_seed(0)
    source = base_sized_model(tempfile.mkdtemp(prefix="bhpvas-base-")) if args.model == "bert-base-random" else args.model
    lm = load_model(source, precision=args.precision)
    dataset = load_dataset(args.data)
    if args.analysis_only:
        result = {
            "date": time.strftime("%Y-%m-%d %H:%M"),
            "machine": f"{platform.machine()} cores={os.cpu_count()} torch threads={torch.get_num_threads()} device={lm.device}",
            "model": args.model,
            "precision": lm.precision,
            "analysis": whole_analysis(lm, args.data, dataset),
            "prepacked": shared_start(lm).prepack,
            "command": " ".join(["python", *sys.argv]),
        }
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
        a = result["analysis"]
        print(f"{lm.precision}: analysis cold {a['analysis_cold_s']} s {a['analysis_parts_s']}; curves cold {a['curves_cold_s']} s")
        print(f"per strategy: {a['curves_per_strategy_s']}; total cold {a['total_cold_s']} s; reopen {a['reopen_warm_s']} s")
        print(
            f"orders learned {a['orders_s']} s; evaluations {a['curve_evaluations_s']} ({a['curve_evaluations_computed']} computed); "
            f"analysis + orders + the 10 % grid (no refinement, no fp32 confirmation) {a['grid_only_cold_s']} s"
        )
        return 0
    eager = load_model(source, attn_implementation="eager", precision="fp32")
    encoded = encode(lm, dataset)
    rng = np.random.default_rng(0)
    masks = []
    for share in (0.1, 0.3, 0.5):
        keep = np.ones(lm.shape, dtype=bool)
        keep.ravel()[rng.choice(keep.size, int(share * keep.size), replace=False)] = False
        masks.append(keep)
    work = tempfile.mkdtemp(prefix="bhpvas-bench-")
    cache = DiskCache(work)
    evaluate(lm, dataset, None, cache=cache)
    full_entries = {p.name for p in Path(work).glob("*.npz")}

    def fresh(scheme: Scheme, **kwargs):
        """A masked evaluation computed now: the full model's result (for agreement) stays cached."""
        for path in Path(work).glob("*.npz"):
            if path.name not in full_entries:
                path.unlink()
        return evaluate(lm, dataset, scheme, cache=cache, **kwargs)

    peak = matmul_peak(dtype={"bf16": torch.bfloat16, "fp16": torch.float16}.get(lm.precision, torch.float32))
    rows = []
    tokens = int(encoded.lengths.sum())
    for keep in masks:
        scheme = Scheme.from_mask(keep)
        fresh(scheme, incremental=False)
        (ours_s, ours), (plain_s, plain_logits), (ref_s, (ref_acc, ref_preds)), ratios = interleaved(
            [
                lambda scheme=scheme: fresh(scheme, incremental=False),
                lambda keep=keep: forward_logits(lm, encoded, keep, compact=False),
                lambda keep=keep: reference_evaluate(eager, dataset, keep),
            ],
            args.repeats,
        )
        performed = compact_flops(lm, encoded, keep)
        rows.append(
            {
                "heads_pruned": int((~keep).sum()),
                "ours_s": round(ours_s, 3),
                "plain_gated_s": round(plain_s, 3),
                "reference_s": round(ref_s, 3),
                "speedup_vs_reference": round(ref_s / ours_s, 2),
                "speedup_per_round": [round(r, 2) for r in ratios],
                "tokens_per_s": round(tokens / ours_s),
                "gflop_performed": round(performed / 1e9, 1),
                "gflop_full_forward": round(masked_flops(lm, encoded, keep) / 1e9, 1),
                "gflops": round(performed / ours_s / 1e9, 1),
                "share_of_matmul_peak": round(performed / ours_s / 1e9 / peak, 3),
                "accuracy": ours.accuracy,
                "plain_accuracy": float((plain_logits.argmax(1) == ours.labels).mean()),
                "max_prob_diff_vs_plain": float(np.abs(ours.probs - softmax(plain_logits)).max()),
                "reference_accuracy": ref_acc,
                "prediction_mismatches_vs_reference": int((ours.preds != ref_preds).sum()),
            }
        )
    precision_check = None
    if lm.precision != "fp32":
        exact = load_model(source, precision="fp32")
        fp32_s, fp32 = timed(lambda: evaluate(exact, dataset, Scheme.from_mask(masks[1]), cache=DiskCache(enabled=False)), args.repeats)
        mixed = fresh(Scheme.from_mask(masks[1]), incremental=False)
        precision_check = {
            "precision": lm.precision,
            "heads_pruned": int((~masks[1]).sum()),
            "accuracy": mixed.accuracy,
            "fp32_accuracy": fp32.accuracy,
            "prediction_mismatches_vs_fp32": int((mixed.preds != fp32.preds).sum()),
            "max_prob_diff_vs_fp32": float(np.abs(mixed.probs - fp32.probs).max()),
            "fp32_seconds": round(fp32_s, 3),
        }
    current = Scheme.from_mask(masks[1])
    prefix_store(lm).clear()
    fresh(current, remember=True)
    toggles = []
    for layer in range(lm.num_layers):
        toggled = current.toggled(layer, int(rng.integers(lm.num_heads)))
        seconds, fast = timed(lambda toggled=toggled: fresh(toggled), args.repeats)
        slow = softmax(forward_logits(lm, encoded, toggled.keep_mask(), compact=False))
        toggles.append(
            {
                "layer": layer,
                "seconds": round(seconds, 3),
                "accuracy_diff_vs_slow_path": abs(fast.accuracy - float((slow.argmax(1) == fast.labels).mean())),
                "max_prob_diff_vs_slow_path": float(np.abs(fast.probs - slow).max()),
            }
        )
    result = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": f"{platform.machine()} {platform.processor()} cores={os.cpu_count()} torch threads={torch.get_num_threads()} device={lm.device}",
        "torch": torch.__version__,
        "model": args.model,
        "data": f"{dataset.name} ({len(dataset)} rows, {int(encoded.lengths.sum())} tokens)",
        "precision": lm.precision,
        "prepacked": shared_start(lm).prepack,
        "matmul_peak_gflops": round(peak, 1),
        "matmul_peak_precision": lm.precision,
        "precision_check": precision_check,
        "masked_evaluation": rows,
        "one_head_toggle": toggles,
        "toggle_mean_s": round(statistics.mean(t["seconds"] for t in toggles), 3),
        "command": " ".join(["python", *sys.argv]),
    }
    if args.analysis:
        result["analysis"] = whole_analysis(lm, args.data, dataset)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"{result['machine']}; {lm.precision}; {lm.precision} matmul peak {result['matmul_peak_gflops']} GFLOP/s; {result['data']}")
    print(
        f"{'pruned':>6} {'ours s':>8} {'plain s':>8} {'ref s':>8} {'speed-up':>8} {'tok/s':>8} {'GFLOP/s':>8} {'% peak':>7} "
        f"{'acc':>7} {'ref acc':>7} {'max dp':>8}"
    )
    for r in rows:
        print(
            f"{r['heads_pruned']:>6} {r['ours_s']:>8.3f} {r['plain_gated_s']:>8.3f} {r['reference_s']:>8.3f} {r['speedup_vs_reference']:>7.2f}x "
            f"{r['tokens_per_s']:>8} {r['gflops']:>8.1f} {100 * r['share_of_matmul_peak']:>6.1f}% {r['accuracy']:>7.4f} "
            f"{r['reference_accuracy']:>7.4f} {r['max_prob_diff_vs_plain']:>8.1e}"
        )
    print(
        "one-head toggle (incremental), seconds by layer:",
        ", ".join(f"L{t['layer']} {t['seconds']:.3f}" for t in toggles),
        f"(mean {result['toggle_mean_s']})",
    )
    print("max |prob| difference fast vs slow path:", max(t["max_prob_diff_vs_slow_path"] for t in toggles))
    if precision_check:
        print(f"{lm.precision} vs fp32: {precision_check}")
    if "analysis" in result:
        a = result["analysis"]
        print(
            f"analysis cold {a['analysis_cold_s']} s {a['analysis_parts_s']}; curves cold {a['curves_cold_s']} s ({a['curves_evaluations']} evaluations)"
        )
        print(f"per strategy: {a['curves_per_strategy_s']}; total cold {a['total_cold_s']} s; reopen {a['reopen_warm_s']} s")
    print(f"results written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
