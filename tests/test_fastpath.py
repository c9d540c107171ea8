"""Compact evaluation (gated heads sliced out, last layer for the first token only) equals the
plain gated forward pass, for every architecture, and is safe to share between threads."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from pruning_core import load_model
from pruning_core.batching import encode
from pruning_core.evaluation import forward_logits
from pruning_core.fastpath import compact_model, supports_compact
from pruning_core.incremental import run_with_prefix
from pruning_core.pruning import prune_heads
from tiny import ARCHITECTURES


def _masks(lm, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    full = np.ones(lm.shape, dtype=bool)
    random = rng.random(lm.shape) > 0.5
    random[1, 0] = True
    empty_ends = random.copy()
    empty_ends[0] = False
    empty_ends[-1] = False
    one_head = np.zeros(lm.shape, dtype=bool)
    one_head[-1, 2] = True
    return [full, random, empty_ends, one_head]


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_compact_equals_the_gated_forward(arch, tiny_dirs, sst2_small):
    lm = load_model(tiny_dirs[arch])
    encoded = encode(lm, sst2_small)
    for keep in _masks(lm):
        plain = forward_logits(lm, encoded, keep, max_tokens=256, compact=False)
        fast = forward_logits(lm, encoded, keep, max_tokens=256)
        assert np.abs(fast - plain).max() <= 1e-5, keep.astype(int)
        assert np.array_equal(fast.argmax(axis=1), plain.argmax(axis=1))


def test_compact_model_shares_weights_and_leaves_the_model_alone(tiny_bert):
    lm = tiny_bert
    before = {name: p.detach().clone() for name, p in lm.model.named_parameters()}
    keep = _masks(lm)[2]
    compact = compact_model(lm, keep)
    assert compact_model(lm, keep) is compact
    shared = {p.data_ptr() for p in lm.model.parameters()}
    assert any(p.data_ptr() in shared for p in compact.body.parameters())
    assert len(lm.adapter.layers(lm.model)) == lm.num_layers
    for name, p in lm.model.named_parameters():
        assert torch.equal(p, before[name]), name
    q, _, _ = lm.adapter.qkv(compact.layers[1])
    assert q.out_features == int(keep[1].sum()) * lm.head_dim


def test_compact_on_an_already_pruned_model(tiny_bert, sst2_small):
    keep = _masks(tiny_bert)[1]
    pruned = prune_heads(tiny_bert, keep)
    encoded = encode(pruned, sst2_small)
    further = keep.copy()
    further[1, 0] = False
    plain = forward_logits(pruned, encoded, further, compact=False)
    assert np.abs(forward_logits(pruned, encoded, further) - plain).max() <= 1e-5


def test_fractional_and_all_pruned_gates_use_the_plain_path(tiny_bert):
    assert supports_compact(tiny_bert, None)
    assert supports_compact(tiny_bert, np.ones(tiny_bert.shape, dtype=bool))
    assert not supports_compact(tiny_bert, np.full(tiny_bert.shape, 0.5))
    assert not supports_compact(tiny_bert, np.zeros(tiny_bert.shape, dtype=bool))


def test_prefix_states_mix_compact_and_plain_runs(tiny_bert, sst2_small):
    lm = tiny_bert
    encoded = encode(lm, sst2_small)
    half = np.ones(lm.shape)
    half[0, 1] = 0.5
    plain_states = run_with_prefix(lm, encoded, half, max_tokens=256)
    keep = np.ones(lm.shape, dtype=bool)
    keep[0, 1] = False
    keep[2, 3] = False
    replayed = run_with_prefix(lm, encoded, keep, plain_states)
    assert np.abs(replayed.logits - forward_logits(lm, encoded, keep, compact=False)).max() <= 1e-5
    back = run_with_prefix(lm, encoded, half, replayed)
    assert np.abs(back.logits - plain_states.logits).max() <= 1e-5


def test_threads_sharing_compact_models_and_prefix_recording(tiny_bert, sst2_small):
    lm = tiny_bert
    encoded = encode(lm, sst2_small)
    masks = _masks(lm, seed=3)
    serial = [run_with_prefix(lm, encoded, m, max_tokens=256).logits for m in masks]
    results: dict[int, list[np.ndarray]] = {i: [] for i in range(len(masks))}
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(masks))

    def worker(i: int) -> None:
        try:
            barrier.wait()
            for _ in range(4):
                results[i].append(run_with_prefix(lm, encoded, masks[i % 2], max_tokens=256).logits)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(masks))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    for i, runs in results.items():
        for logits in runs:
            assert np.abs(logits - serial[i % 2]).max() <= 1e-6


def test_bf16_autocast_evaluates_close_to_fp32_and_is_cached_apart(tiny_bert_dir, sst2_small, tmp_path):
    from pruning_core import DiskCache, evaluate

    exact = load_model(tiny_bert_dir)
    mixed = load_model(tiny_bert_dir, precision="bf16")
    assert exact.precision == "fp32" and mixed.precision == "bf16" and mixed.describe()["precision"] == "bf16"
    keep = _masks(exact)[1]
    cache = DiskCache(tmp_path)
    a = evaluate(exact, sst2_small, keep, cache=cache)
    b = evaluate(mixed, sst2_small, keep, cache=cache)
    assert not b.from_cache
    assert 0 < np.abs(a.probs - b.probs).max() <= 0.05
    assert evaluate(mixed, sst2_small, keep, cache=cache).from_cache


def test_precision_from_the_environment_and_bad_values(tiny_bert_dir, monkeypatch):
    from pruning_core.errors import ModelLoadError
    from pruning_core.hardware import cpu_has_native_bf16
    from pruning_core.loading import resolve_precision

    cpu = torch.device("cpu")
    monkeypatch.delenv("BHPVAS_PRECISION", raising=False)
    assert resolve_precision(cpu) == ("bf16" if cpu_has_native_bf16() else "fp32")
    monkeypatch.setenv("BHPVAS_PRECISION", "fp32")
    assert resolve_precision(cpu) == "fp32"
    monkeypatch.setenv("BHPVAS_PRECISION", "bf16")
    assert resolve_precision(cpu) == "bf16"
    with pytest.raises(ModelLoadError, match="not one of"):
        resolve_precision(cpu, "fp8")
    with pytest.raises(ModelLoadError, match="needs a GPU"):
        resolve_precision(cpu, "fp16")


def test_the_first_layer_is_computed_once_per_batch_for_every_mask(tiny_bert_dir, sst2_small, monkeypatch):
    from pruning_core.fastpath import SharedStart, shared_start

    lm = load_model(tiny_bert_dir)
    encoded = encode(lm, sst2_small)
    store = shared_start(lm).store
    embedded = []
    real = SharedStart.embed
    monkeypatch.setattr(SharedStart, "embed", lambda self, batch, packing: embedded.append(1) or real(self, batch, packing))
    masks = _masks(lm)
    first = forward_logits(lm, encoded, masks[1], max_tokens=256)
    batches = len(store)
    assert batches > 1 and len(embedded) == batches
    for keep in masks[1:]:
        fast = forward_logits(lm, encoded, keep, max_tokens=256)
        plain = forward_logits(lm, encoded, keep, max_tokens=256, compact=False)
        assert np.abs(fast - plain).max() <= 1e-5, keep.astype(int)
    assert len(store) == batches and len(embedded) == batches, "the other masks read the first layer from the store"
    assert np.array_equal(forward_logits(lm, encoded, masks[1], max_tokens=256), first)


def test_the_first_layer_store_can_be_switched_off(tiny_bert_dir, sst2_small, monkeypatch):
    from pruning_core.fastpath import shared_start

    monkeypatch.setenv("BHPVAS_FIRST_LAYER_CACHE_MB", "0")
    lm = load_model(tiny_bert_dir)
    encoded = encode(lm, sst2_small)
    keep = _masks(lm)[1]
    fast = forward_logits(lm, encoded, keep, max_tokens=256)
    assert len(shared_start(lm).store) == 0
    assert np.abs(fast - forward_logits(lm, encoded, keep, max_tokens=256, compact=False)).max() <= 1e-5
