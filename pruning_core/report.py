"""The real-pruning report: prune a scheme physically, check it against masked inference, and
measure size and speed; written as JSON and as a standalone HTML page (figures inline)."""

from __future__ import annotations

import datetime as dt
import html
import json
import platform
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .batching import encode
from .data import TextDataset
from .efficiency import compare_efficiency, paired_efficiency
from .errors import BhpvasError
from .evaluation import evaluate, forward_logits
from .loading import LoadedModel
from .outputs import atomic_folder, check_target
from .progress import ProgressFn, no_progress
from .pruning import prune_heads, save_pruned
from .schemes import Scheme


def pruning_report(
    lm: LoadedModel,
    dataset: TextDataset,
    scheme: Scheme,
    out_dir: str | Path,
    batch_sizes: tuple[int, ...] = (1, 32),
    seq_lens: tuple[int, ...] = (64, 128),
    repeats: int = 7,
    progress: ProgressFn | None = None,
) -> dict[str, Any]:
    """Prune ``scheme`` for real, save the checkpoint under ``out_dir/model`` and return the report.

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
    report(0.0, "masked evaluation")
    masked = evaluate(lm, dataset, scheme)
    report(0.15, "pruning")
    pruned = prune_heads(lm, scheme)
    encoded = encode(lm, dataset)
    masked_logits = forward_logits(lm, encoded, scheme.keep_mask(), compact=False)
    pruned_logits = forward_logits(pruned, encode(pruned, dataset))
    max_diff = float(np.abs(masked_logits - pruned_logits).max())
    pruned_preds = pruned_logits.argmax(1)
    report(0.3, "measuring latency of the full and the pruned model (interleaved)")
    full_eff, pruned_eff = paired_efficiency(lm, pruned, batch_sizes, seq_lens, repeats)
    report(0.9, "saving")
    checkpoint = out / "model"
    result = {
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {platform.processor()} torch threads={torch.get_num_threads()} device={lm.device}",
        "model": lm.name,
        "data": dataset.name,
        "scheme": scheme.to_dict(),
        "heads_total": lm.num_layers * lm.num_heads,
        "heads_pruned": len(scheme.pruned),
        "kept_per_layer": [len(k) for k in pruned.kept_heads],
        "accuracy_full": masked.accuracy if not scheme.pruned else evaluate(lm, dataset, None).accuracy,
        "accuracy_masked": masked.accuracy,
        "accuracy_pruned": float((pruned_preds == encoded.labels).mean()),
        "loss_masked": masked.loss,
        "agreement_with_full": masked.agreement,
        "max_abs_logit_diff_masked_vs_pruned": max_diff,
        "masked_equals_pruned": max_diff <= 1e-4,
        "parameters_full": full_eff.parameters,
        "parameters_pruned": pruned_eff.parameters,
        "attention_parameters_full": full_eff.attention_parameters,
        "attention_parameters_pruned": pruned_eff.attention_parameters,
        "macs_full": full_eff.macs,
        "macs_pruned": pruned_eff.macs,
        "latency": compare_efficiency(full_eff, pruned_eff),
        "checkpoint": str(checkpoint),
    }
    page = report_html(result, lm.shape)
    with atomic_folder(out) as staging:
        save_pruned(pruned, staging / "model")
        (staging / "report.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
        (staging / "report.html").write_text(page)
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


def report_html(result: dict[str, Any], shape: tuple[int, int]) -> str:
    """A standalone HTML page (plotly.js inlined, no network needed to view it)."""
    esc = html.escape
    facts = [
        ("Model", result["model"]),
        ("Data", result["data"]),
        ("Heads removed", f"{result['heads_pruned']} of {result['heads_total']}"),
        (
            "Accuracy: full / masked / pruned",
            f"{result['accuracy_full']:.4f} / {result['accuracy_masked']:.4f} / {result['accuracy_pruned']:.4f}",
        ),
        ("Agreement with the full model", f"{result['agreement_with_full']:.4f}"),
        ("Max |logit| difference, masked vs pruned", f"{result['max_abs_logit_diff_masked_vs_pruned']:.2e}"),
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
