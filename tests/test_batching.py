"""Batching: tokenisation memo (bounded), length batches, padding, keep-masks and their keys."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pruning_core import Scheme, SchemeError, batching, load_model
from pruning_core.bucketing import bucketed_batches
from pruning_core.data import TextDataset


def test_length_batches_cover_every_sample_once():
    lengths = np.array([5, 60, 12, 12, 3, 128, 7, 40])
    batches = batching.length_batches(lengths, max_tokens=128)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(len(lengths)))
    for batch in batches:
        assert len(batch) * lengths[batch].max() <= 128 or len(batch) == 1


def test_length_batches_subset_returns_dataset_indices():
    lengths = np.array([5, 60, 12, 12, 3, 128, 7, 40])
    subset = np.array([1, 3, 6])
    batches = batching.length_batches_subset(lengths, subset, max_tokens=64)
    assert sorted(np.concatenate(batches).tolist()) == [1, 3, 6]
    assert batches[0].tolist() == [1], "longest first"


def test_bucketed_batches_cover_every_row_once_with_little_padding():
    rng = np.random.default_rng(0)
    lengths = rng.geometric(0.08, size=2000) + 2  # short phrases with a long tail, like SST-2 train
    batches = bucketed_batches(lengths, 32, np.random.default_rng(1))
    assert sorted(np.concatenate(batches).tolist()) == list(range(len(lengths)))
    assert max(len(b) for b in batches) == 32
    padded = sum(len(b) * lengths[b].max() for b in batches)
    shuffled = np.array_split(rng.permutation(len(lengths)), len(batches))
    padded_plain = sum(len(b) * lengths[b].max() for b in shuffled)
    assert padded < 0.6 * padded_plain
    again = bucketed_batches(lengths, 32, np.random.default_rng(1))
    assert all(np.array_equal(a, b) for a, b in zip(batches, again)), "reproducible from the generator"
    other = bucketed_batches(lengths, 32, np.random.default_rng(2))
    assert not all(np.array_equal(a, b) for a, b in zip(batches, other)), "another seed, other batches"


def test_collate_pads_to_the_longest_sample_of_the_batch(tiny_bert, sst2_small):
    encoded = batching.encode(tiny_bert, sst2_small)
    indices = np.array([0, 1, 2])
    batch = batching.collate(encoded, indices, pad_id=tiny_bert.pad_id, device=torch.device("cpu"))
    width = int(encoded.lengths[indices].max())
    assert batch["input_ids"].shape == (3, width) == batch["attention_mask"].shape
    for row, i in enumerate(indices):
        n = int(encoded.lengths[i])
        assert batch["input_ids"][row, :n].tolist() == encoded.input_ids[i].tolist()
        assert batch["attention_mask"][row].sum() == n
        assert (batch["input_ids"][row, n:] == tiny_bert.pad_id).all()


def test_encode_is_memoised_per_dataset_and_length(tiny_bert, sst2_small):
    first = batching.encode(tiny_bert, sst2_small)
    assert batching.encode(tiny_bert, sst2_small) is first
    shorter = batching.encode(tiny_bert, sst2_small, max_length=8)
    assert shorter is not first and shorter.lengths.max() <= 8
    assert len(first) == len(sst2_small) and first.nbytes > 0


def test_token_memo_stays_within_its_byte_bound_after_many_datasets(tiny_bert_dir, monkeypatch):
    monkeypatch.setenv("BHPVAS_TOKEN_CACHE_MB", "0.002")  # about 2 KB: room for a few small datasets
    lm = load_model(tiny_bert_dir)
    memo = batching.token_memo(lm)
    bound = memo.max_bytes
    assert bound == int(0.002 * 2**20)
    datasets = [
        TextDataset(name=f"d{i}", texts=tuple(f"sentence {i} number {j} is here" for j in range(6)), labels=(0, 1) * 3) for i in range(40)
    ]
    encodings = [batching.encode(lm, data) for data in datasets]
    assert memo.nbytes <= bound
    assert 0 < len(memo) < len(datasets)
    assert batching.encode(lm, datasets[-1]) is encodings[-1], "the most recent dataset stays memoised"
    again = batching.encode(lm, datasets[0])
    assert again is not encodings[0] and all(np.array_equal(a, b) for a, b in zip(again.input_ids, encodings[0].input_ids))
    assert memo.nbytes <= bound


def test_token_memo_default_bound(tiny_bert_dir, monkeypatch):
    monkeypatch.delenv("BHPVAS_TOKEN_CACHE_MB", raising=False)
    assert batching.token_memo(load_model(tiny_bert_dir)).max_bytes == 256 * 2**20


def test_resolve_keep_mask_counts_absent_heads_as_pruned(tiny_bert):
    from pruning_core.pruning import prune_heads

    pruned = prune_heads(tiny_bert, Scheme(3, 4, frozenset({(0, 1)})))
    assert not batching.resolve_keep_mask(pruned, None)[0, 1]
    keep = batching.resolve_keep_mask(pruned, Scheme(3, 4, frozenset({(2, 0)})))
    assert not keep[0, 1] and not keep[2, 0] and keep.sum() == 10
    assert batching.resolve_keep_mask(pruned, np.ones((3, 4), dtype=bool)).sum() == 11
    with pytest.raises(SchemeError, match="does not match"):
        batching.resolve_keep_mask(pruned, np.ones((2, 4), dtype=bool))


def test_mask_key_and_out_of_memory_check():
    assert batching.mask_key(np.array([[True, False], [False, True]])) == "1001"
    assert batching.is_oom(RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    assert not batching.is_oom(RuntimeError("shape mismatch"))
