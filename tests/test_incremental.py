"""Incremental evaluation equals a full forward pass, for every architecture and any mask."""

from __future__ import annotations

import numpy as np
import pytest

from pruning_core import load_model
from pruning_core.batching import encode
from pruning_core.evaluation import evaluate, forward_logits
from pruning_core.incremental import first_changed_layer, prefix_store, run_with_prefix
from tiny import ARCHITECTURES


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_prefix_reuse_equals_full_forward(arch, tiny_dirs, sst2_small):
    lm = load_model(tiny_dirs[arch])
    encoded = encode(lm, sst2_small)
    full = np.ones(lm.shape, dtype=bool)
    reference = run_with_prefix(lm, encoded, full, max_tokens=256)
    assert np.abs(reference.logits - forward_logits(lm, encoded, max_tokens=256, compact=False)).max() <= 1e-5
    rng = np.random.default_rng(1)
    for first in range(lm.num_layers):
        keep = full.copy()
        keep[first:] = rng.random((lm.num_layers - first, lm.num_heads)) > 0.5
        keep[first, 0] = False
        assert first_changed_layer(full, keep) == first
        states = run_with_prefix(lm, encoded, keep, reference)
        assert np.abs(states.logits - forward_logits(lm, encoded, keep, max_tokens=256, compact=False)).max() <= 1e-5
        chained = run_with_prefix(lm, encoded, full, states)
        assert np.abs(chained.logits - reference.logits).max() <= 1e-6


def test_evaluate_uses_remembered_states_and_matches_the_slow_path(tiny_bert, sst2_small):
    from pruning_core import DiskCache, Scheme

    no_cache = DiskCache(enabled=False)
    prefix_store(tiny_bert).clear()
    current = Scheme(3, 4, frozenset({(1, 1)}))
    evaluate(tiny_bert, sst2_small, current, cache=no_cache, remember=True)
    toggled = current.toggled(2, 3)
    prefix, start = prefix_store(tiny_bert).best(
        f"{sst2_small.fingerprint}:{encode(tiny_bert, sst2_small).max_length}", toggled.keep_mask()
    )
    assert prefix is not None and start == 2
    fast = evaluate(tiny_bert, sst2_small, toggled, cache=no_cache)
    slow = evaluate(tiny_bert, sst2_small, toggled, cache=no_cache, incremental=False)
    assert np.abs(fast.probs - slow.probs).max() <= 1e-6
    assert fast.accuracy == slow.accuracy and abs(fast.loss - slow.loss) <= 1e-6
    plain = forward_logits(tiny_bert, encode(tiny_bert, sst2_small), toggled.keep_mask(), compact=False)
    assert np.array_equal(fast.preds, plain.argmax(axis=1))


def test_compact_runs_remember_only_real_tokens(tiny_bert, sst2_small):
    encoded = encode(tiny_bert, sst2_small)
    keep = np.ones(tiny_bert.shape, dtype=bool)
    keep[1, 2] = False
    states = run_with_prefix(tiny_bert, encoded, keep, max_tokens=256)
    padding = 0
    for indices, inputs in zip(states.batches, states.inputs):
        assert len(inputs) == tiny_bert.num_layers
        tokens = int(encoded.lengths[indices].sum())
        padding += len(indices) * int(encoded.lengths[indices].max()) - tokens
        assert all(hidden.shape == (tokens, tiny_bert.config.hidden_size) for hidden in inputs), "packed: no padding rows"
    assert padding > 0, "the batches do have padding to leave out"


def _states(keep: np.ndarray, floats: int):
    import torch

    from pruning_core.incremental import PrefixStates

    return PrefixStates(keep, [np.arange(2)], [[torch.zeros(floats)]], [((), {})], np.zeros((2, 2), dtype=np.float32))


def test_prefix_store_keeps_within_its_byte_bound_and_finds_the_longest_shared_prefix():
    from pruning_core.incremental import PrefixStore

    full = np.ones((3, 4), dtype=bool)
    second = full.copy()
    second[2, 0] = False
    first = full.copy()
    first[0, 0] = False
    store = PrefixStore(max_bytes=1000)
    store.put("data", "first", _states(first, 100))
    store.put("data", "second", _states(second, 100))
    assert store.best("data", full)[1] == 2, "the mask differing only in the last layer shares two layers"
    assert store.best("other", full) == (None, 0)
    store.put("data", "third", _states(full, 100))
    assert [mask for _, mask in store._entries] == ["second", "third"], "the oldest entry made room"
    assert store._entries.nbytes <= 1000
    assert store.best("data", first)[1] == 0 and store.best("data", full)[1] == 3
    store.put("data", "huge", _states(full, 1000))
    assert "huge" not in {mask for _, mask in store._entries}, "an entry over the bound alone is not kept"
    empty = PrefixStore(max_bytes=0)
    empty.put("data", "first", _states(first, 1))
    assert empty.best("data", first) == (None, 0)


def test_prefix_store_bound_comes_from_the_environment(monkeypatch):
    from pruning_core.incremental import PrefixStore

    monkeypatch.setenv("BHPVAS_PREFIX_CACHE_MB", "2")
    assert PrefixStore().max_bytes == 2 * 2**20


def _layers_computed(masks: list[np.ndarray], remembered: int | None = None) -> int:
    """Layers run when each mask starts from the earlier mask sharing the most leading layers,
    among all earlier ones or only the last ``remembered``."""
    total = 0
    for i, keep in enumerate(masks):
        earlier = masks[:i] if remembered is None else masks[max(0, i - remembered) : i]
        total += len(keep) - max((first_changed_layer(other, keep) for other in earlier), default=0)
    return total


def test_the_prefix_sharing_order_computes_each_distinct_prefix_once():
    """Each mask shares the most layers with the one just before it, so remembering that one mask
    computes every distinct layer prefix once: the least any order can compute."""
    from pruning_core.incremental import prefix_sharing_order

    rng = np.random.default_rng(7)
    masks = [rng.random((4, 3)) > 0.3 for _ in range(40)]
    masks += [np.vstack([masks[i][:2], rng.random((2, 3)) > 0.5]) for i in range(10)]  # shared first layers
    ordered = [masks[i] for i in prefix_sharing_order(masks)]
    assert sorted(prefix_sharing_order(masks)) == list(range(len(masks)))
    for i in range(1, len(ordered)):
        best = max(first_changed_layer(earlier, ordered[i]) for earlier in ordered[:i])
        assert first_changed_layer(ordered[i - 1], ordered[i]) == best
    distinct_prefixes = len({m[:depth].tobytes() for m in masks for depth in range(1, 5)})
    assert _layers_computed(ordered, remembered=1) == _layers_computed(masks) == distinct_prefixes
    assert _layers_computed(masks, remembered=1) > distinct_prefixes
