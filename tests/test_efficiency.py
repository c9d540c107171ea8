"""Parameters, MACs and latency."""

from __future__ import annotations

import numpy as np

from pruning_core.efficiency import compare_efficiency, count_parameters, efficiency_report, encoder_macs
from pruning_core.pruning import prune_heads


def test_macs_formula_by_hand(tiny_bert):
    lm = tiny_bert  # 3 layers x 4 heads, d_h 8, d 32, d_ff 64
    t = 10
    per_layer = 4 * (4 * t * 32 * 8 + 2 * t * t * 8) + 2 * t * 32 * 64
    assert encoder_macs(lm, t) == 3 * per_layer
    assert encoder_macs(lm, t, [4, 0, 1]) == per_layer + 2 * t * 32 * 64 + (4 * t * 32 * 8 + 2 * t * t * 8) + 2 * t * 32 * 64


def test_pruned_model_is_smaller_and_report_is_complete(tiny_bert):
    keep = np.ones(tiny_bert.shape, dtype=bool)
    keep[:, :2] = False
    pruned = prune_heads(tiny_bert, keep)
    removed = 3 * 2 * (4 * 32 * 8 + 3 * 8)  # q/k/v weights+biases and output columns of 6 heads
    assert count_parameters(tiny_bert) - count_parameters(pruned) == removed
    full_report = efficiency_report(tiny_bert, batch_sizes=(1, 2), seq_lens=(8, 16), repeats=2)
    pruned_report = efficiency_report(pruned, batch_sizes=(1, 2), seq_lens=(8, 16), repeats=2)
    rows = compare_efficiency(full_report, pruned_report)
    assert len(rows) == 4
    assert all(r["full_ms"] > 0 and r["pruned_ms"] > 0 and r["macs_ceiling"] > 1 for r in rows)
    assert pruned_report.heads == 6 and full_report.heads == 12
