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
        writes[key] += 1  # by key: leave-one-out writes one evaluation per head, each once
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
    assert {"attnstats", "importance", "syntax"} <= {key.split("-")[0] for key in writes}
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


def _oom_above(limit: int, real):
    """A stand-in for a device that cannot hold more than ``limit`` padded tokens at once."""

    def small_device(self, batch, *args, **kwargs):
        ids = batch["input_ids"]
        if ids.shape[0] * ids.shape[1] > limit:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(self, batch, *args, **kwargs)

    return small_device


def test_out_of_memory_on_the_incremental_path_halves_and_retries(tiny_bert, sst2_small, monkeypatch):
    """The app's path (``remember=True``): recording a prefix and starting from one both survive
    a device that is too small for the first batches, and give the same logits."""
    from pruning_core.batching import encode
    from pruning_core.evaluation import forward_logits
    from pruning_core.fastpath import CompactModel
    from pruning_core.incremental import run_with_prefix

    encoded = encode(tiny_bert, sst2_small)
    scheme = Scheme(3, 4, frozenset({(2, 1)}))
    expected_full = forward_logits(tiny_bert, encoded, None)
    expected_scheme = forward_logits(tiny_bert, encoded, scheme.keep_mask())
    monkeypatch.setattr(CompactModel, "forward_from", _oom_above(256, CompactModel.forward_from))
    full = run_with_prefix(tiny_bert, encoded, tiny_bert.present_mask(), max_tokens=2048)
    assert np.abs(full.logits - expected_full).max() <= 1e-5
    assert max(len(b) * int(encoded.lengths[b].max()) for b in full.batches) <= 256
    monkeypatch.undo()
    big_prefix = run_with_prefix(tiny_bert, encoded, tiny_bert.present_mask(), max_tokens=2048)
    monkeypatch.setattr(CompactModel, "forward_from", _oom_above(256, CompactModel.forward_from))
    toggled = run_with_prefix(tiny_bert, encoded, scheme.keep_mask(), big_prefix, max_tokens=2048)
    assert np.abs(toggled.logits - expected_scheme).max() <= 1e-5


def test_out_of_memory_that_never_fits_gives_a_message(tiny_bert, sst2_small, monkeypatch):
    from pruning_core.batching import encode
    from pruning_core.errors import OutOfMemory
    from pruning_core.fastpath import CompactModel
    from pruning_core.incremental import run_with_prefix

    monkeypatch.setattr(CompactModel, "forward_from", _oom_above(0, CompactModel.forward_from))
    try:
        run_with_prefix(tiny_bert, encode(tiny_bert, sst2_small), tiny_bert.present_mask())
    except OutOfMemory as exc:
        assert "ran out of memory during an incremental evaluation" in str(exc)
    else:
        raise AssertionError("expected OutOfMemory")


def test_out_of_memory_in_the_attention_statistics_of_an_analysis(tiny_bert, sst2_small, tmp_path, monkeypatch):
    """Attention maps are (batch, heads, T, T): the analysis halves their batch budget and retries;
    the statistics equal those computed with room to spare."""
    from pruning_core import attention
    from pruning_core.analysis import AnalysisParams, analyze

    reference = attention.attention_statistics(tiny_bert, sst2_small, cache=DiskCache(enabled=False))
    real = attention.batch_statistics
    seen: list[int] = []

    def small_device(weights, *args, **kwargs):
        seen.append(weights.shape[0] * weights.shape[-1])
        if weights.shape[0] * weights.shape[-1] > 200:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(weights, *args, **kwargs)

    monkeypatch.setattr(attention, "batch_statistics", small_device)
    params = AnalysisParams(similarity_tokens=200, role_sentences=10, alignment_sentences=10)
    bundle = analyze(tiny_bert, sst2_small, params, cache=DiskCache(tmp_path))
    assert max(seen) > 200 and bundle.attention.profiles.shape == reference.profiles.shape
    assert np.allclose(bundle.attention.profiles, reference.profiles, atol=1e-5, equal_nan=True)
    assert np.allclose(bundle.attention.entropy, reference.entropy, atol=1e-5, equal_nan=True)


def test_a_full_disk_while_uploading_keeps_nothing_half_written(tmp_path, monkeypatch):
    import pytest

    from pruning_core.errors import DataError
    from pruning_core.uploads import UploadSession

    session = UploadSession(tmp_path / "uploads")

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(DataError, match="the server's disk is full"):
        session.save(b"text,label\nfine,1\n", "reviews.csv")
    monkeypatch.undo()
    assert not [p for p in session.folder.rglob("*") if p.is_file()]
    assert session.save(b"text,label\nfine,1\n", "reviews.csv").read_bytes() == b"text,label\nfine,1\n"


def test_a_full_disk_while_the_cli_prunes_keeps_the_earlier_checkpoint(capsys, tiny_bert_dir, tmp_path, monkeypatch):
    import json

    import safetensors.torch

    from pruning_core.cli import main

    scheme = tmp_path / "scheme.json"
    scheme.write_text(json.dumps({"num_layers": 3, "num_heads": 4, "pruned": [[0, 1]]}))
    out = tmp_path / "out" / "pruned"
    assert main(["prune", "--model", str(tiny_bert_dir), "--scheme", str(scheme), "--out", str(out)]) == 0
    before = (out / "model.safetensors").read_bytes()

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(safetensors.torch, "save_file", full)
    capsys.readouterr()
    assert main(["prune", "--model", str(tiny_bert_dir), "--scheme", str(scheme), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "the disk is full" in err and "Traceback" not in err, err
    assert (out / "model.safetensors").read_bytes() == before
    assert [p.name for p in out.parent.iterdir()] == ["pruned"]


_KILLED_WRITER = """
import os, sys, time
import numpy as np
from pruning_core.cache import DiskCache
from pruning_core.outputs import atomic_folder

def stall(fd):
    print("writing", flush=True)
    time.sleep(600)

os.fsync = stall
if sys.argv[1] == "cache":
    DiskCache(sys.argv[2]).put("entry", {"x": np.arange(10)})
else:
    with atomic_folder(sys.argv[2]) as staging:
        (staging / "model.safetensors").write_bytes(b"partial")
        print("writing", flush=True)
        time.sleep(600)
"""


def _kill_mid_write(kind: str, target) -> None:
    import signal
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parent.parent
    child = subprocess.Popen([sys.executable, "-c", _KILLED_WRITER, kind, str(target)], cwd=repo, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "writing"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(60)
    assert child.returncode == -signal.SIGKILL


def test_a_writer_killed_mid_write_leaves_an_orphan_removed_at_the_next_start(tmp_path):
    from pruning_core.outputs import atomic_folder

    cache_dir = tmp_path / "cache"
    _kill_mid_write("cache", cache_dir)
    orphans = list(cache_dir.glob(".tmp-*"))
    assert len(orphans) == 1 and not list(cache_dir.glob("*.npz"))
    cache = DiskCache(cache_dir)
    assert not list(cache_dir.glob(".tmp-*")) and cache.get("entry") is None

    out = tmp_path / "outputs" / "pruned"
    _kill_mid_write("folder", out)
    assert len(list(out.parent.glob(".tmp-*"))) == 1 and not out.exists()
    with atomic_folder(out) as staging:
        (staging / "model.safetensors").write_bytes(b"complete")
    assert [p.name for p in out.parent.iterdir()] == ["pruned"]
    assert (out / "model.safetensors").read_bytes() == b"complete"
