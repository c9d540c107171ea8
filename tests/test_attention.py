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


def test_concurrent_attention_capture_equals_serial(tiny_bert, sst2_small):
    """Four threads mixing attention maps, gated evaluations and attention statistics on one shared model.

    Each caller's hooks record only its own forward passes, so no thread sees another's maps.
    """
    import threading

    from pruning_core.batching import encode
    from pruning_core.cache import DiskCache
    from pruning_core.evaluation import forward_logits

    lm = tiny_bert
    rng = np.random.default_rng(1)
    masks = [rng.random(lm.shape) > 0.3 for _ in range(4)]
    texts = [" ".join(["word"] * (3 + 4 * i)) + " ." for i in range(4)]
    subsets = [sst2_small.subset(range(4 * i, 4 * i + 6)) for i in range(4)]
    no_cache = DiskCache(enabled=False)
    encoded = encode(lm, sst2_small)

    def attention_map(i: int) -> np.ndarray:
        return attention_maps(lm, [texts[i]], scheme=masks[i])[0].attention

    def statistics(i: int) -> np.ndarray:
        return attention_statistics(lm, subsets[i], masks[i], cache=no_cache, max_tokens=64).profiles

    def evaluation(i: int) -> np.ndarray:
        return forward_logits(lm, encoded, masks[i], max_tokens=256, compact=False)

    operations = (attention_map, evaluation, statistics)
    serial = {(op.__name__, i): op(i) for op in operations for i in range(4)}
    rounds = 15
    results: list[tuple[str, int, np.ndarray]] = []
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def worker(i: int) -> None:
        try:
            start.wait()
            for r in range(rounds):
                op = operations[(i + r) % len(operations)]
                results.append((op.__name__, i, op(i)))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert len(results) == 4 * rounds
    wrong = [
        (name, i)
        for name, i, out in results
        if out.shape != serial[(name, i)].shape or not np.allclose(out, serial[(name, i)], atol=1e-6, equal_nan=True)
    ]
    assert not wrong, wrong
    assert sum(len(m._forward_pre_hooks) + len(m._forward_hooks) for m in lm.eager_model().modules()) == 0


def test_nested_captures_both_record_and_leave_no_hooks(tiny_bert):
    import torch

    from pruning_core.attention import capture_attention

    lm = tiny_bert
    model = lm.eager_model()
    enc = lm.tokenizer("a good film .", return_tensors="pt")
    with torch.inference_mode(), capture_attention(lm, model) as outer:
        with capture_attention(lm, model) as inner:
            model(**enc)
        assert all(torch.equal(a, b) for a, b in zip(outer, inner))
    assert all(w is not None and w.shape[-1] == enc["input_ids"].shape[1] for w in outer)
    assert sum(len(m._forward_hooks) for m in model.modules()) == 0
