"""Faults: cache writes that fail, corrupt or stale entries, out-of-memory batches, concurrent identical
work, killed analyses that resume."""

from __future__ import annotations

import errno
import os
import threading
import time

import numpy as np
import torch

from pruning_core import DiskCache, Scheme, evaluate
from pruning_core.cache import single_flight


def test_unwritable_cache_still_returns_the_result_with_a_notice(tiny_bert, sst2_small, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    result = evaluate(tiny_bert, sst2_small, cache=DiskCache(blocker / "cache"))
    reference = evaluate(tiny_bert, sst2_small, cache=DiskCache(enabled=False))
    assert np.array_equal(result.preds, reference.preds)
    assert any("Could not write to the cache" in n for n in result.notices)


def test_disk_full_keeps_the_previous_entry(tmp_path, monkeypatch):
    cache = DiskCache(tmp_path)
    assert cache.put("entry", {"x": np.arange(3)})

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", full_disk)
    assert not cache.put("entry", {"x": np.arange(5)})
    assert "the disk is full" in cache.last_error
    monkeypatch.undo()
    arrays, _ = cache.get("entry")
    assert arrays["x"].tolist() == [0, 1, 2]
    assert not list(tmp_path.glob(".tmp-*")), "no temporary file is left behind"


def test_single_flight_runs_identical_work_once():
    runs = []

    def work():
        with single_flight("same-key"):
            if not runs:
                time.sleep(0.2)
                runs.append("computed")

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert runs == ["computed"]


def test_killed_analysis_resumes_from_cached_parts(tiny_bert, sst2_small, tmp_path):
    from pruning_core.analysis import AnalysisParams, analyze
    from pruning_core.progress import ProgressFn

    params = AnalysisParams(similarity_tokens=300, role_sentences=20, alignment_sentences=20)
    cache = DiskCache(tmp_path / "cache")

    class Killed(Exception):
        pass

    def kill_half_way(fraction: float, message: str) -> None:
        if fraction >= 0.6:
            raise Killed

    progress: ProgressFn = kill_half_way
    try:
        analyze(tiny_bert, sst2_small, params, progress=progress, cache=cache)
    except Killed:
        pass
    parts = {p.name.split("-")[0] for p in (tmp_path / "cache").glob("*.npz")}
    assert {"attnstats", "importance"} <= parts and "syntax" not in parts
    bundle = analyze(tiny_bert, sst2_small, params, cache=cache)
    assert bundle.timings["attention_statistics"] < 0.5 and bundle.timings["importance"] < 0.5
    assert bundle.stability.shape == (3, 4)


def test_two_sessions_asking_for_the_same_analysis_compute_it_once(tiny_bert, monkeypatch):
    """The app's path (``analyze`` with the default disk cache) from two threads at once: one computes,
    the other waits for it and reopens its result; every expensive part is written exactly once."""
    from collections import Counter

    from pruning_core import load_dataset
    from pruning_core.analysis import AnalysisParams, analyze

    data = load_dataset("sst2", max_rows=20)
    params = AnalysisParams(similarity_tokens=200, role_sentences=10, alignment_sentences=10)
    writes: Counter[str] = Counter()
    original_put = DiskCache.put

    def counting_put(self, key, arrays, meta=None, strict=False):
        writes[key.split("-")[0]] += 1
        return original_put(self, key, arrays, meta, strict)

    monkeypatch.setattr(DiskCache, "put", counting_put)
    bundles = {}
    start = threading.Barrier(2, timeout=30)

    def session(name: str) -> None:
        start.wait()
        bundles[name] = analyze(tiny_bert, data, params)

    threads = [threading.Thread(target=session, args=(name,)) for name in ("first", "second")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert set(bundles) == {"first", "second"}
    assert {"attnstats", "importance", "syntax"} <= set(writes)
    assert all(count == 1 for count in writes.values()), writes
    assert np.array_equal(bundles["first"].importance.display(), bundles["second"].importance.display())
    assert np.allclose(bundles["first"].stability, bundles["second"].stability, equal_nan=True)


def test_entry_of_another_code_version_is_recomputed(tiny_bert, sst2_small, tmp_path):
    import json

    from pruning_core.cache import _checksum

    cache = DiskCache(tmp_path)
    scheme = Scheme(3, 4, frozenset({(1, 2)}))
    first = evaluate(tiny_bert, sst2_small, scheme, cache=cache)
    for entry in tmp_path.glob("*.npz"):
        with np.load(entry, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files if name not in ("__meta__", "__checksum__")}
            meta = json.loads(str(data["__meta__"]))
        meta["__code__"] = "0"
        meta_json = json.dumps(meta)
        np.savez(entry, **arrays, __meta__=np.asarray(meta_json), __checksum__=np.asarray(_checksum(arrays, meta_json)))
    again = evaluate(tiny_bert, sst2_small, scheme, cache=cache)
    assert not again.from_cache
    assert np.array_equal(again.preds, first.preds)
    assert evaluate(tiny_bert, sst2_small, scheme, cache=cache).from_cache


def test_out_of_memory_halves_the_batch_and_retries(tiny_bert, sst2_small, monkeypatch):
    """A device that cannot hold more than 256 padded tokens: batches shrink until they fit."""
    from pruning_core.batching import encode
    from pruning_core.evaluation import forward_logits
    from pruning_core.fastpath import CompactModel

    encoded = encode(tiny_bert, sst2_small)
    expected = forward_logits(tiny_bert, encoded, None, max_tokens=2048)
    real = CompactModel.logits
    sizes: list[int] = []

    def small_device(self, batch):
        sizes.append(batch["input_ids"].numel())
        if batch["input_ids"].numel() > 256:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(self, batch)

    monkeypatch.setattr(CompactModel, "logits", small_device)
    logits = forward_logits(tiny_bert, encoded, None, max_tokens=2048)
    assert max(sizes) > 256 and any(s <= 256 for s in sizes)
    assert np.abs(logits - expected).max() <= 1e-5
