"""Attention maps and streaming per-head statistics."""

from __future__ import annotations

import numpy as np

from pruning_core.attention import PROFILE_NAMES, attention_maps, attention_statistics, key_categories
from pruning_core.pruning import prune_heads


def test_maps_are_row_stochastic_and_follow_gates(tiny_bert):
    lm = tiny_bert
    sample = attention_maps(lm, ["a good film ."])[0]
    assert sample.tokens[0] == "[CLS]" and sample.tokens[-1] == "[SEP]"
    t = len(sample.tokens)
    assert sample.attention.shape == (lm.num_layers, lm.num_heads, t, t)
    assert np.allclose(sample.attention.sum(-1), 1, atol=1e-5)
    keep = np.ones(lm.shape, dtype=bool)
    keep[0, :] = False
    gated = attention_maps(lm, ["a good film ."], scheme=keep)[0]
    assert np.allclose(gated.attention[0], sample.attention[0], atol=1e-6), "layer 0's own attention does not depend on its gates"
    assert np.abs(gated.attention[1] - sample.attention[1]).max() > 1e-6, "later layers see the gated output"


def test_key_categories_priority():
    import torch

    ids = torch.tensor([[101, 7, 8, 102, 0]])
    cats = key_categories(ids, {101}, {102})[0]
    assert cats[1, 0] == PROFILE_NAMES.index("cls")
    assert cats[2, 3] == PROFILE_NAMES.index("sep")
    assert cats[1, 1] == PROFILE_NAMES.index("self")
    assert cats[2, 1] == PROFILE_NAMES.index("prev")
    assert cats[1, 2] == PROFILE_NAMES.index("next")
    assert cats[0, 2] == PROFILE_NAMES.index("other")
    assert cats[0, 0] == PROFILE_NAMES.index("cls")


def test_streaming_statistics_match_per_sample_maps(tiny_bert, sst2_small):
    lm = tiny_bert
    small = sst2_small.subset(range(6))
    stats = attention_statistics(lm, small, max_tokens=64)
    assert np.allclose(stats.profiles.sum(-1), 1, atol=1e-4)
    maps = attention_maps(lm, list(small.texts))
    for i, sample in enumerate(maps):
        rows = sample.attention
        entropy = -(rows * np.log(np.clip(rows, 1e-12, None))).sum(-1).mean(-1)
        assert np.allclose(stats.entropy[i], entropy, atol=1e-4)
        t = rows.shape[-1]
        gap = np.abs(np.arange(t)[None, :] - np.arange(t)[:, None])
        assert np.allclose(stats.distance[i], (rows * gap).sum(-1).mean(-1), atol=1e-4)
        assert np.allclose(stats.profiles[i, ..., 0], rows[..., 0].mean(-1), atol=1e-4)
    assert stats.entropy_hist.sum() == sum(len(m.tokens) for m in maps) * lm.num_layers * lm.num_heads
    again = attention_statistics(lm, small, max_tokens=64)
    assert np.array_equal(again.profiles, stats.profiles)


def test_statistics_of_pruned_model_mark_absent_heads(tiny_bert, sst2_small):
    keep = np.ones(tiny_bert.shape, dtype=bool)
    keep[1, :] = False
    keep[0, 0] = False
    pruned = prune_heads(tiny_bert, keep)
    stats = attention_statistics(pruned, sst2_small.subset(range(4)))
    assert np.isnan(stats.entropy[:, 1]).all() and np.isnan(stats.entropy[:, 0, 0]).all()
    assert not np.isnan(stats.entropy[:, 0, 1:]).any()
