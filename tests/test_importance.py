"""Exact per-example importance, Fisher and leave-one-out on a tiny model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pruning_core import DiskCache
from pruning_core.ablation import leave_one_out
from pruning_core.batching import encode
from pruning_core.evaluation import evaluate
from pruning_core.scores import head_importance


@pytest.fixture(scope="module")
def data(sst2_small):
    return sst2_small.subset(range(40))


def _one_by_one(lm, data) -> tuple[np.ndarray, np.ndarray]:
    """Reference: each example alone (batch size 1, as run_bertology), |gradient| and gradient^2."""
    encoded = encode(lm, data)
    absolute = np.zeros(lm.shape)
    squared = np.zeros(lm.shape)
    for i in range(len(encoded)):
        gates = torch.ones(lm.shape, requires_grad=True)
        ids = torch.as_tensor(encoded.input_ids[i])[None]
        batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
        if encoded.token_type_ids is not None:
            batch["token_type_ids"] = torch.as_tensor(encoded.token_type_ids[i])[None]
        with lm.gated(gates):
            loss = torch.nn.functional.cross_entropy(lm.model(**batch).logits, torch.as_tensor(encoded.labels[i : i + 1]))
        (grad,) = torch.autograd.grad(loss, gates)
        absolute += grad.abs().double().numpy()
        squared += grad.double().numpy() ** 2
    return absolute / encoded.lengths.sum(), squared / len(encoded)


def test_importance_does_not_depend_on_the_token_budget(tiny_bert, data, tmp_path):
    small = head_importance(tiny_bert, data, cache=DiskCache(tmp_path / "a"), max_tokens=256)
    large = head_importance(tiny_bert, data, cache=DiskCache(tmp_path / "b"), max_tokens=8192)
    np.testing.assert_allclose(small.raw, large.raw, rtol=1e-6)
    np.testing.assert_allclose(small.normalized, large.normalized, rtol=1e-6)
    np.testing.assert_allclose(small.fisher, large.fisher, rtol=1e-6)
    np.testing.assert_allclose(small.stderr, large.stderr, rtol=1e-5)


def test_per_example_importance_and_fisher_equal_a_batch_size_one_loop(tiny_bert, data, tmp_path):
    importance = head_importance(tiny_bert, data, cache=DiskCache(tmp_path), max_tokens=2048)
    raw, fisher = _one_by_one(tiny_bert, data)
    np.testing.assert_allclose(importance.raw, raw, rtol=1e-5)
    np.testing.assert_allclose(importance.fisher, fisher, rtol=1e-5)
    assert np.allclose(np.linalg.norm(importance.normalized, axis=1), 1.0)
    assert importance.per_example.shape == (len(data), *tiny_bert.shape)
    assert (importance.stderr > 0).all() and (importance.stderr < importance.normalized).any()


def test_importance_under_a_mask_is_zero_for_gated_heads_only_through_their_gate(tiny_bert, data, tmp_path):
    keep = np.ones(tiny_bert.shape, dtype=bool)
    keep[1, 2] = False
    masked = head_importance(tiny_bert, data, keep, cache=DiskCache(tmp_path))
    full = head_importance(tiny_bert, data, cache=DiskCache(tmp_path))
    assert np.isfinite(masked.raw).all()
    assert not np.allclose(masked.raw[keep], full.raw[keep])


def test_leave_one_out_matches_direct_evaluation(tiny_bert, data, tmp_path):
    cache = DiskCache(tmp_path)
    loo = leave_one_out(tiny_bert, data, cache=cache)
    full = evaluate(tiny_bert, data, None, cache=DiskCache(tmp_path / "other"), incremental=False)
    for head in [(0, 1), (2, 3)]:
        keep = np.ones(tiny_bert.shape, dtype=bool)
        keep[head] = False
        direct = evaluate(tiny_bert, data, keep, cache=DiskCache(tmp_path / "other"), incremental=False)
        assert loo.loss[head] == pytest.approx(direct.loss - full.loss, abs=1e-5)
        assert loo.accuracy[head] == pytest.approx(direct.accuracy - full.accuracy, abs=1e-12)
    assert loo.full_accuracy == pytest.approx(full.accuracy)


def test_importance_in_bf16_is_its_own_cache_entry_and_close_to_fp32(tiny_bert, data, tmp_path):
    cache = DiskCache(tmp_path)
    fp32 = head_importance(tiny_bert, data, cache=cache)
    bf16 = head_importance(tiny_bert, data, cache=cache, precision="bf16")
    assert not np.array_equal(fp32.raw, bf16.raw)  # computed under autocast, not read from the fp32 entry
    np.testing.assert_allclose(bf16.normalized, fp32.normalized, atol=0.05)
    again = head_importance(tiny_bert, data, cache=DiskCache(tmp_path / "fresh"))
    np.testing.assert_array_equal(again.raw, fp32.raw)
