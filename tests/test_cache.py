"""The cached-part helper of the disk cache: open a stored part, or compute and store it."""

from __future__ import annotations

import numpy as np

from pruning_core.cache import DiskCache, cache_key, cached_part


def _part(cache: DiskCache, calls: list, value: float = 1.5):
    def compute():
        calls.append(value)
        return np.full(3, value), f"made {value}"

    return cached_part(
        cache,
        cache_key("test-part", value=value),
        compute,
        lambda result: ({"values": result[0]}, {"note": result[1]}),
        lambda arrays, meta: (arrays["values"], meta["note"]),
    )


def test_cached_part_computes_once_and_then_opens_the_stored_part(tmp_path):
    cache, calls = DiskCache(tmp_path), []
    first = _part(cache, calls)
    again = _part(cache, calls)
    assert calls == [1.5]
    assert np.array_equal(first[0], again[0]) and again[1] == "made 1.5"
    _part(cache, calls, value=2.5)
    assert calls == [1.5, 2.5], "another key is another part"


def test_cached_part_recomputes_a_damaged_entry(tmp_path):
    cache, calls = DiskCache(tmp_path), []
    _part(cache, calls)
    next(tmp_path.glob("*.npz")).write_bytes(b"not a zip file")
    values, note = _part(cache, calls)
    assert calls == [1.5, 1.5] and note == "made 1.5" and np.array_equal(values, np.full(3, 1.5))


def test_cached_part_returns_the_result_when_the_cache_cannot_be_written(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder should be")
    cache, calls = DiskCache(blocker / "cache"), []
    values, _ = _part(cache, calls)
    assert np.array_equal(values, np.full(3, 1.5)) and cache.last_error
    _part(cache, calls)
    assert calls == [1.5, 1.5]
