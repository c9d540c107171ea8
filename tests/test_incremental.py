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
