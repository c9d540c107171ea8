"""The real-pruning report: prune a scheme physically (optionally repaired and recovered), check it
against masked inference, and measure size and speed; written as JSON and as a standalone HTML page
(figures inline).

Every accuracy in the report says its precision and data split; the saved checkpoint is loaded back
from its folder and measured in fp32 (the confirmation of what was shipped).
"""

from __future__ import annotations

import datetime as dt
import html
import json
import platform
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .batching import encode
from .cache import DiskCache
from .data import TextDataset
from .efficiency import compare_efficiency, paired_efficiency
from .errors import BhpvasError
from .evaluation import EvalResult, evaluate, forward_logits
from .loading import LoadedModel, load_model
from .outputs import atomic_folder, check_target
from .progress import ProgressFn, no_progress
from .pruning import keep_mask_from, prune_heads, save_pruned
from .repair import Repair, repaired_masked, repaired_pruned
from .schemes import Scheme
from .stats import change_from_predictions

if TYPE_CHECKING:
    from .recovery import RecoveryResult

SPLIT = "evaluation"
CHECK_PRECISION = "fp32"


def in_fp32(lm: LoadedModel) -> LoadedModel:
    """The same model (shared weights) evaluated without autocast."""
    return replace(lm, precision=CHECK_PRECISION, caches={}, _eager=None)


def measured(
    preds: np.ndarray, labels: np.ndarray, loss: float, precision: str, dataset: TextDataset, model: str, full: EvalResult | None
) -> dict[str, Any]:
    """One accuracy of the report with where it comes from: precision, data split, model and, against
    the full model, the agreement and the change with its 95% interval and McNemar p."""
    entry: dict[str, Any] = {
        "value": float((preds == labels).mean()),
        "loss": float(loss),
        "precision": precision,
        "split": SPLIT,
        "data": dataset.name,
        "rows": int(len(labels)),
        "model": model,
    }
    if full is not None:
        entry["agreement_with_full"] = float((preds == full.preds).mean())
        entry["change_vs_full"] = change_from_predictions(full.labels, full.preds, preds).to_dict()
    return entry


def of_result(result: EvalResult, precision: str, dataset: TextDataset, model: str, full: EvalResult | None) -> dict[str, Any]:
    """:func:`measured` of an evaluation."""
    return measured(result.preds, result.labels, result.loss, precision, dataset, model, full)


def treatment_records(
    repair: Repair | None, recovery: RecoveryResult | None, calibration: TextDataset | None
) -> dict[str, dict[str, Any] | None]:
    """What was done to the pruned model, as recorded in the report and beside the saved weights:
    the repair's summary, the recovery's summary, and the calibration set they were fitted on."""
    if calibration is not None and repair is not None and calibration.fingerprint != repair.calibration_fingerprint:
        raise BhpvasError(
            f"The repair was fitted on the calibration set {repair.calibration!r}, not on {calibration.name!r}; repair the scheme again."
        )
    described = None
    if calibration is not None:
        described = {"name": calibration.name, "fingerprint": calibration.fingerprint, "rows": len(calibration)}
    elif repair is not None:
        described = {"name": repair.calibration, "fingerprint": repair.calibration_fingerprint, "rows": None}
    recovered = None
    if recovery is not None:
        recovered = recovery.summary()
        if calibration is not None:
            recovered["calibration_fingerprint"] = calibration.fingerprint
    return {"repair": repair.summary() if repair is not None else None, "recovery": recovered, "calibration": described}


def pruning_report(
    lm: LoadedModel,
    dataset: TextDataset,
    scheme: Scheme,
    out_dir: str | Path,
    batch_sizes: tuple[int, ...] = (1, 32),
    seq_lens: tuple[int, ...] = (64, 128),
    repeats: int = 7,
    progress: ProgressFn | None = None,
    *,
    repair: Repair | None = None,
    recovery: RecoveryResult | None = None,
    calibration: TextDataset | None = None,
) -> dict[str, Any]:
    """Prune ``scheme`` for real, save the checkpoint under ``out_dir/model`` and return the report.

    ``repair`` (of this scheme, :func:`pruning_core.repair.repair_scheme`): the repaired model is
    pruned. ``recovery`` (a :func:`pruning_core.recovery.recover` run of the scheme's pruned model):
    its weights are saved. Both, and ``calibration`` (the set they were fitted on), are recorded in
    ``report.json`` and in the checkpoint's ``bhpvas_pruning.json``. The masked-vs-pruned check runs
    in fp32 on the model before recovery (recovery changes every weight, so the recovered model has
    no masked counterpart); the saved checkpoint is loaded back and measured in fp32.

    ``out_dir`` is written whole or not at all (see :func:`pruning_core.outputs.atomic_folder`): a
    new folder, an empty one, or an earlier report folder (replaced). On a shared server give each
    run its own folder (:func:`pruning_core.outputs.new_run_folder`).
    """
    report = progress or no_progress
    out = Path(out_dir)
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise BhpvasError(f"repeats must be a whole number of at least 1 (timed runs per latency cell), not {repeats!r}.")
    bad = [v for v in (*batch_sizes, *seq_lens) if isinstance(v, bool) or not isinstance(v, int) or v < 1]
    if bad or not batch_sizes or not seq_lens:
        raise BhpvasError("Batch sizes and sequence lengths for the latency table must be whole numbers of at least 1.")
    check_target(out)
    keep = keep_mask_from(scheme, lm) & lm.present_mask()
    if repair is not None and not np.array_equal(repair.keep, keep):
        raise BhpvasError("The repair was fitted for another scheme; repair the current scheme again.")
    records = treatment_records(repair, recovery, calibration)
    report(0.0, "masked evaluation")
    full = evaluate(lm, dataset, None)
    masked = evaluate(lm, dataset, scheme)
    report(0.1, "pruning" + (" the repaired model" if repair is not None else ""))
    if repair is not None:
        pruned, counterpart = repaired_pruned(lm, repair), repaired_masked(lm, repair)
    else:
        pruned, counterpart = prune_heads(lm, scheme), lm
    saved = recovery.model if recovery is not None else pruned
    if saved.kept_heads != pruned.kept_heads:
        raise BhpvasError("The recovered model keeps other heads than the scheme; recover the current scheme again.")
    report(0.15, "checking the pruned model against masked inference (fp32)")
    encoded = encode(lm, dataset)
    masked_logits = forward_logits(in_fp32(counterpart), encoded, scheme.keep_mask(), compact=False)
    pruned_logits = forward_logits(in_fp32(pruned), encode(pruned, dataset))
    max_diff = float(np.abs(masked_logits - pruned_logits).max())
    kind = "pruned" + (" + repair" if repair is not None else "") + (" + recovery" if recovery is not None else "")
    accuracy = {
        "full": of_result(full, lm.precision, dataset, "full model", None),
        "masked": of_result(masked, lm.precision, dataset, "full model with the scheme's heads gated off (no repair)", full),
        "pruned": of_result(evaluate(saved, dataset), saved.precision, dataset, f"{kind}, in memory", full),
    }
    if recovery is not None:
        loss = float(torch.nn.functional.cross_entropy(torch.from_numpy(pruned_logits).double(), torch.from_numpy(encoded.labels).long()))
        before = "pruned" + (" + repair" if repair is not None else "") + ", before recovery"
        accuracy["before_recovery"] = measured(pruned_logits.argmax(1), encoded.labels, loss, CHECK_PRECISION, dataset, before, full)
    report(0.3, "measuring latency of the full and the pruned model (interleaved)")
    full_eff, pruned_eff = paired_efficiency(lm, saved, batch_sizes, seq_lens, repeats)
    report(0.85, "saving and loading the checkpoint back (fp32)")
    checkpoint = out / "model"
    result = {
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {platform.processor()} torch threads={torch.get_num_threads()} device={lm.device}",
        "model": lm.name,
        "data": dataset.name,
        "evaluation_set": {"name": dataset.name, "fingerprint": dataset.fingerprint, "rows": len(dataset), "split": SPLIT},
        "scheme": scheme.to_dict(),
        "heads_total": lm.num_layers * lm.num_heads,
        "heads_pruned": len(scheme.pruned),
        "kept_per_layer": [len(k) for k in pruned.kept_heads],
        "saved_model": kind,
        "accuracy": accuracy,
        "max_abs_logit_diff_masked_vs_pruned": max_diff,
        "masked_equals_pruned": max_diff <= 1e-4,
        "masked_check": {
            "precision": CHECK_PRECISION,
            "compares": ("masked + repair vs pruned + repair" if repair is not None else "masked vs pruned")
            + (" (before recovery)" if recovery is not None else ""),
        },
        **records,
        "parameters_full": full_eff.parameters,
        "parameters_pruned": pruned_eff.parameters,
        "attention_parameters_full": full_eff.attention_parameters,
        "attention_parameters_pruned": pruned_eff.attention_parameters,
        "macs_full": full_eff.macs,
        "macs_pruned": pruned_eff.macs,
        "latency": compare_efficiency(full_eff, pruned_eff),
        "checkpoint": str(checkpoint),
    }
    with atomic_folder(out) as staging:
        save_pruned(saved, staging / "model", {"base_model": lm.name, **records})
        reloaded = load_model(staging / "model", device=str(lm.device), precision=CHECK_PRECISION)
        confirmed = evaluate(reloaded, dataset, cache=DiskCache(enabled=False))
        accuracy["saved"] = of_result(confirmed, CHECK_PRECISION, dataset, f"{kind}, loaded back from the saved checkpoint", full)
        (staging / "report.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
        (staging / "report.html").write_text(report_html(result, lm.shape))
    report(1.0, "report written")
    return result


def _figures(result: dict[str, Any], shape: tuple[int, int]) -> list[str]:
    import plotly.graph_objects as go

    layers, heads = shape
    pruned = {tuple(h) for h in result["scheme"]["pruned"]}
    grid = np.array([[0 if (layer, head) in pruned else 1 for head in range(heads)] for layer in range(layers)])
    heatmap = go.Figure(
        go.Heatmap(
            z=grid,
            x=[str(h) for h in range(heads)],
            y=[str(layer) for layer in range(layers)],
            colorscale=[[0, "#d62728"], [1, "#2ca02c"]],
            showscale=False,
            xgap=2,
            ygap=2,
            hovertemplate="layer %{y} head %{x}: %{z}<extra>1 = kept</extra>",
        )
    )
    heatmap.update_layout(
        title="Heads kept (green) and removed (red)", xaxis_title="head", yaxis_title="layer", height=320, margin=dict(t=50, b=40)
    )
    rows = result["latency"]
    labels = [f"batch {r['batch_size']}, len {r['seq_len']}" for r in rows]
    bars = go.Figure(
        [
            go.Bar(name="full", x=labels, y=[r["full_ms"] for r in rows]),
            go.Bar(name="pruned", x=labels, y=[r["pruned_ms"] for r in rows]),
        ]
    )
    bars.update_layout(title="Median latency (ms)", barmode="group", height=360, margin=dict(t=50, b=40))
    speed = go.Figure(
        [
            go.Bar(name="measured speed-up", x=labels, y=[r["speedup"] for r in rows]),
            go.Bar(name="MACs ceiling", x=labels, y=[r["macs_ceiling"] for r in rows]),
        ]
    )
    speed.update_layout(title="Speed-up against the MACs ceiling", barmode="group", height=360, margin=dict(t=50, b=40))
    first = heatmap.to_html(full_html=False, include_plotlyjs=True)
    return [first] + [fig.to_html(full_html=False, include_plotlyjs=False) for fig in (bars, speed)]


def treatment_text(result: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, sentence) for the repair, the recovery and the calibration set of a report, when recorded."""
    facts = []
    if repair := result.get("repair"):
        facts.append(
            (
                "Repair",
                f"{repair['variant']} (ridge {repair['ridge']:g}) on {repair['calibration']} "
                f"(fingerprint {repair['calibration_fingerprint'][:12]}), {repair['calibration_tokens']:,} tokens, {repair['seconds']} s"
                + (" (reused from the cache)" if repair.get("from_cache") else ""),
            )
        )
    if recovery := result.get("recovery"):
        facts.append(
            (
                "Recovery",
                f"{recovery['steps_done']} of {recovery['steps']} steps on {recovery['data']}, loss {recovery['first_loss']} → "
                f"{recovery['last_loss']}, {recovery['seconds']} s" + ("" if recovery["completed"] else " (stopped early)"),
            )
        )
    if calibration := result.get("calibration"):
        rows = f", {calibration['rows']:,} rows" if calibration.get("rows") else ""
        facts.append(("Calibration set", f"{calibration['name']} (fingerprint {calibration['fingerprint'][:12]}{rows})"))
    return facts


def accuracy_text(entry: dict[str, Any]) -> str:
    """``0.9071 (fp32, evaluation split; change -1.15 pp, 95% interval [-2.10, -0.20] pp, McNemar p 0.02)``."""
    text = f"{entry['value']:.4f} ({entry['precision']}, {entry['split']} split"
    if change := entry.get("change_vs_full"):
        text += (
            f"; change {100 * change['delta']:+.2f} pp, 95% interval [{100 * change['low']:+.2f}, {100 * change['high']:+.2f}] pp, "
            f"McNemar p {change['p_value']:.3g}"
        )
    return text + ")"


def report_html(result: dict[str, Any], shape: tuple[int, int]) -> str:
    """A standalone HTML page (plotly.js inlined, no network needed to view it)."""
    esc = html.escape
    accuracy = result["accuracy"]
    facts = [
        ("Model", result["model"]),
        ("Data", f"{result['data']} ({result['evaluation_set']['rows']:,} rows, evaluation split)"),
        ("Heads removed", f"{result['heads_pruned']} of {result['heads_total']}"),
        ("Saved model", result["saved_model"]),
        *((f"Accuracy: {entry['model']}", accuracy_text(entry)) for entry in accuracy.values()),
        *treatment_text(result),
        (
            f"Max |logit| difference, {result['masked_check']['compares']} ({result['masked_check']['precision']})",
            f"{result['max_abs_logit_diff_masked_vs_pruned']:.2e}",
        ),
        ("Parameters", f"{result['parameters_full']:,} → {result['parameters_pruned']:,}"),
        (
            "MACs per sequence",
            ", ".join(f"len {t}: {result['macs_full'][t]:,} → {result['macs_pruned'][t]:,}" for t in result["macs_full"]),
        ),
        ("Pruned checkpoint", result["checkpoint"]),
        ("Measured on", result["machine"]),
        ("Created", result["created"]),
    ]
    rows = "".join(f"<tr><th>{esc(k)}</th><td>{esc(str(v))}</td></tr>" for k, v in facts)
    latency = "".join(
        f"<tr><td>{r['batch_size']}</td><td>{r['seq_len']}</td><td>{r['full_ms']:.2f}</td><td>{r['pruned_ms']:.2f}</td>"
        f"<td>{r['speedup']:.2f}×</td><td>{r['macs_ceiling']:.2f}×</td></tr>"
        for r in result["latency"]
    )
    figures = "".join(f"<div class='fig'>{f}</div>" for f in _figures(result, shape))
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>bhpvas pruning report</title>
<style>body{{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;color:#222}}
table{{border-collapse:collapse;margin:1em 0}}th,td{{border:1px solid #ccc;padding:4px 10px;text-align:left}}
th{{background:#f4f4f4}}.fig{{margin:1em 0}}</style></head>
<body><h1>Pruning report</h1>
<table>{rows}</table>
<h2>Latency (median of repeats)</h2>
<table><tr><th>batch</th><th>length</th><th>full ms</th><th>pruned ms</th><th>speed-up</th><th>MACs ceiling</th></tr>{latency}</table>
{figures}
<p>Scheme JSON:</p><pre>{esc(json.dumps(result["scheme"]))}</pre>
</body></html>
"""
