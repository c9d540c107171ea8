"""Masked evaluation and its disk cache."""

from __future__ import annotations

import numpy as np
import torch

from pruning_core import DiskCache, Scheme, evaluate
from pruning_core.batching import encode


def _reference_logits(lm, dataset) -> np.ndarray:
    """One sample at a time, no padding, no gating: an independent reference."""
    rows = []
    with torch.no_grad():
        for text in dataset.texts:
            enc = lm.tokenizer(text, return_tensors="pt")
            rows.append(lm.model(**enc).logits[0].numpy())
    return np.stack(rows)


def test_full_evaluation_matches_reference(tiny_bert, sst2_small):
    result = evaluate(tiny_bert, sst2_small)
    logits = _reference_logits(tiny_bert, sst2_small)
    labels = np.asarray(sst2_small.labels)
    assert result.n == len(sst2_small)
    assert np.array_equal(result.preds, logits.argmax(1))
    assert result.accuracy == float((logits.argmax(1) == labels).mean())
    expected_loss = torch.nn.functional.cross_entropy(torch.from_numpy(logits), torch.from_numpy(labels)).item()
    assert abs(result.loss - expected_loss) < 1e-5
    assert result.agreement == 1.0 and len(result.flipped) == 0
    assert np.allclose(result.probs.sum(1), 1, atol=1e-5)


def test_masked_evaluation_agreement_and_flips(tiny_bert, sst2_small):
    scheme = Scheme(3, 4, frozenset({(0, 0), (0, 1), (1, 2), (2, 0), (2, 1), (2, 2)}))
    result = evaluate(tiny_bert, sst2_small, scheme)
    full = evaluate(tiny_bert, sst2_small)
    assert result.heads_pruned == 6
    assert result.agreement == float((result.preds == full.preds).mean())
    assert set(result.flipped) == set(np.nonzero(result.preds != full.preds)[0])


def test_cache_hit_equals_fresh_result(tiny_bert, sst2_small, isolated_cache):
    scheme = Scheme(3, 4, frozenset({(1, 1)}))
    fresh = evaluate(tiny_bert, sst2_small, scheme)
    again = evaluate(tiny_bert, sst2_small, scheme)
    assert not fresh.from_cache and again.from_cache
    assert np.array_equal(fresh.probs, again.probs) and fresh.loss == again.loss
    uncached = evaluate(tiny_bert, sst2_small, scheme, cache=DiskCache(enabled=False))
    assert not uncached.from_cache and np.allclose(uncached.probs, fresh.probs)


def test_corrupt_cache_entry_is_recomputed(tiny_bert, sst2_small, isolated_cache):
    scheme = Scheme(3, 4, frozenset({(2, 3)}))
    first = evaluate(tiny_bert, sst2_small, scheme)
    entries = sorted(isolated_cache.glob("*.npz"))
    assert entries
    for entry in entries:
        data = bytearray(entry.read_bytes())
        data[len(data) // 2 : len(data) // 2 + 64] = b"\x00" * 64
        entry.write_bytes(bytes(data))
    second = evaluate(tiny_bert, sst2_small, scheme)
    assert not second.from_cache
    assert np.allclose(first.probs, second.probs)
    truncated = sorted(isolated_cache.glob("*.npz"))[0]
    truncated.write_bytes(truncated.read_bytes()[:100])
    assert DiskCache().get(truncated.stem) is None
    assert not truncated.exists(), "an unreadable entry is deleted"


def test_long_text_is_truncated_with_notice(tiny_bert):
    from pruning_core.data import TextDataset

    ds = TextDataset(name="long", texts=("word " * 1000, "short"), labels=(1, 0))
    result = evaluate(tiny_bert, ds)
    assert any("truncated" in n for n in result.notices)
    encoded = encode(tiny_bert, ds)
    assert encoded.max_length == tiny_bert.config.max_position_embeddings == encoded.lengths.max()


def test_progress_callback_reaches_one(tiny_bert, sst2_small):
    seen = []
    evaluate(tiny_bert, sst2_small, Scheme(3, 4, frozenset({(0, 3)})), progress=lambda f, m: seen.append(f))
    assert seen and seen[-1] == 1.0 and seen == sorted(seen)
