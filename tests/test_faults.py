"""Faults: cache writes that fail, concurrent identical work, killed analyses that resume."""

from __future__ import annotations

import errno
import os
import threading
import time

import numpy as np

from pruning_core import DiskCache, evaluate
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
