"""MACs of a scheme: heads kept per layer and the share of the full model's MACs."""

from __future__ import annotations

from pruning_core.efficiency import encoder_macs, kept_per_layer, scheme_macs


def test_kept_per_layer_counts_each_pruned_head_once():
    assert kept_per_layer([(0, 1), (0, 1), (2, 0), (2, 3)], 3, 4) == [3, 4, 2]
    assert kept_per_layer([], 2, 12) == [12, 12]


def test_scheme_macs_against_the_formula(tiny_bert):
    layers, heads = tiny_bert.num_layers, tiny_bert.num_heads
    full, share = scheme_macs(tiny_bert, 128, [])
    assert full == encoder_macs(tiny_bert, 128, [heads] * layers) and share == 100
    macs, share = scheme_macs(tiny_bert, 128, [(0, 0), (1, 1)])
    assert macs == encoder_macs(tiny_bert, 128, kept_per_layer([(0, 0), (1, 1)], layers, heads))
    assert 0 < share < 100 and macs < full
