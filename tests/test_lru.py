"""The shared bounded LRU: eviction by entries and by bytes, recency, oversize values."""

import numpy as np

from pruning_core.lru import LRUCache, nbytes_of


def test_entries_bound_evicts_least_recently_used():
    cache = LRUCache(max_entries=2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # a is now the most recent
    cache.put("c", 3)
    assert "b" not in cache and "a" in cache and "c" in cache


def test_bytes_bound_counts_sizes_and_refuses_oversize():
    cache = LRUCache(max_bytes=1000)
    assert cache.put("x", np.zeros(100, dtype=np.float32))  # 400 bytes
    assert cache.put("y", np.zeros(100, dtype=np.float32))
    assert cache.nbytes == 800
    cache.put("z", np.zeros(100, dtype=np.float32))
    assert "x" not in cache and cache.nbytes == 800
    assert not cache.put("huge", np.zeros(1000, dtype=np.float32))
    assert "huge" not in cache and len(cache) == 2


def test_replacing_a_key_updates_bytes_and_pop_clear():
    cache = LRUCache(max_bytes=10_000)
    cache.put("k", np.zeros(10, dtype=np.int64))
    cache.put("k", np.zeros(20, dtype=np.int64))
    assert cache.nbytes == 160 and len(cache) == 1
    assert cache.pop("k").shape == (20,) and cache.nbytes == 0
    cache.put("k", b"abc")
    cache.clear()
    assert len(cache) == 0 and cache.nbytes == 0


def test_nbytes_of_containers():
    assert nbytes_of({"a": np.zeros(4, dtype=np.int8), "b": [np.zeros(2, dtype=np.int16), "xy"]}) == 4 + 4 + 2
