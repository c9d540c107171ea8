"""Shared-server safety in the core (issue 13): one safe reader for user-named files, an injective
data fingerprint with shape-checked caches, per-run output folders, and bounded caches and queues."""

from __future__ import annotations

import os
import threading
import time
import zipfile
from io import BytesIO

import numpy as np
import pytest

from pruning_core import DiskCache, Scheme, evaluate, load_dataset
from pruning_core.batching import encode, mask_key, token_memo
from pruning_core.cache import cache_key, flights_in_use, single_flight
from pruning_core.data import TextDataset, columns_of_file
from pruning_core.errors import DataError, OutputError, SchemeError
from pruning_core.jobs import JobCancelled, JobGate
from pruning_core.outputs import folder_downloads, new_run_folder, sweep_runs
from pruning_core.policy import SourcePolicy
from pruning_core.safe_files import read_user_file

# Item 1: one safe reader for user-named files.


@pytest.fixture()
def roots(tmp_path, monkeypatch):
    inside, outside = tmp_path / "allowed", tmp_path / "elsewhere"
    inside.mkdir()
    outside.mkdir()
    (outside / "secret.csv").write_text("text,label\nSECRET-CONTENT,1\n")
    monkeypatch.setenv("BHPVAS_DATA_ROOTS", str(inside))
    return inside, outside


def test_a_file_outside_the_roots_is_refused_before_it_is_read(roots, monkeypatch):
    inside, outside = roots
    opened: list[str] = []
    real_open = os.open
    monkeypatch.setattr(os, "open", lambda path, *a, **k: opened.append(str(path)) or real_open(path, *a, **k))
    policy = SourcePolicy.from_env()
    for reader in (
        lambda: read_user_file(outside / "secret.csv", policy),
        lambda: columns_of_file(outside / "secret.csv", policy),
        lambda: load_dataset(str(outside / "secret.csv"), policy=policy),
    ):
        with pytest.raises(DataError, match="only reads data files under") as refused:
            reader()
        assert "SECRET" not in str(refused.value) and "text" not in str(refused.value).split(":")[0]
    assert not any("secret" in p for p in opened), "nothing outside the roots is even opened"


def test_a_symlink_inside_the_roots_pointing_outside_is_refused(roots):
    inside, outside = roots
    (inside / "link.csv").symlink_to(outside / "secret.csv")
    with pytest.raises(DataError, match="only reads data files under"):
        load_dataset(str(inside / "link.csv"), policy=SourcePolicy.from_env())


def test_devices_pipes_and_folders_are_refused_without_blocking(roots):
    inside, _ = roots
    fifo = inside / "pipe.csv"
    os.mkfifo(fifo)
    results: dict[str, str] = {}

    def read_all() -> None:
        for name, path, policy in (("fifo", fifo, SourcePolicy.from_env()), ("zero", "/dev/zero", None), ("folder", inside, None)):
            try:
                read_user_file(path, policy)
            except DataError as exc:
                results[name] = str(exc)

    reader = threading.Thread(target=read_all, daemon=True)
    reader.start()
    reader.join(60)
    assert not reader.is_alive(), "reading a FIFO must not block"
    assert "not a regular file" in results["fifo"] and "not a regular file" in results["zero"]
    assert "is a folder" in results["folder"]
    with pytest.raises(SchemeError, match="not a regular file"):
        Scheme.from_file(fifo)


def test_a_file_over_the_size_limit_is_refused(roots):
    inside, _ = roots
    big = inside / "big.csv"
    big.write_bytes(b"text,label\n" + b"x,1\n" * 1000)
    with pytest.raises(DataError, match="the limit is 1 KiB"):
        read_user_file(big, SourcePolicy.from_env(), max_bytes=1024)
    assert read_user_file(big, SourcePolicy.from_env()).startswith(b"text,label")
    assert columns_of_file(big, SourcePolicy.from_env()) == ["text", "label"]


# Item 2: an injective fingerprint, and caches that check what they return.


def test_different_datasets_never_share_a_fingerprint():
    single = TextDataset("a", ("good film", "bad film"), (1, 0))
    pairs = TextDataset("b", ("good film", "bad film"), (1, 0), text_pairs=("", ""))
    merged = TextDataset("c", ("good film\x1f\x1e1\x1dbad film",), (0,))
    string_labels = TextDataset("d", ("good film", "bad film"), ("1", "0"))
    other_columns = TextDataset("e", ("good film", "bad film"), (1, 0), text_columns=("review",))
    prints = {d.fingerprint for d in (single, pairs, merged, string_labels, other_columns)}
    assert len(prints) == 5
    assert TextDataset("f", ("good film", "bad film"), (1, 0)).fingerprint == single.fingerprint


def test_datasets_that_collided_get_their_own_cached_results(tiny_bert, tmp_path):
    """On the old fingerprint these three shared one key: later ones got the first one's logits
    (and tokenisation), with the wrong number of samples."""
    from pruning_core.incremental import prefix_store

    cache = DiskCache(tmp_path / "cache")
    texts, labels = ("a fine film", "a dull film"), (1, 0)
    datasets = (
        TextDataset("merged", ("a fine film\x1f\x1e1\x1da dull film",), (0,)),
        TextDataset("rows", texts, labels),
        TextDataset("pairs", texts, labels, text_pairs=("", "")),
    )
    cached = [evaluate(tiny_bert, dataset, cache=cache) for dataset in datasets]
    for dataset, result in zip(datasets, cached, strict=True):
        token_memo(tiny_bert).clear()
        prefix_store(tiny_bert).clear()
        fresh = evaluate(tiny_bert, dataset, cache=DiskCache(enabled=False), incremental=False)
        assert result.n == len(dataset) and np.allclose(result.probs, fresh.probs, atol=1e-6), dataset.name
    assert not np.allclose(cached[1].probs, cached[2].probs), "an empty second text changes the input"


def test_a_cache_entry_of_another_shape_is_discarded_and_recomputed(tiny_bert, sst2_small, tmp_path):
    cache = DiskCache(tmp_path)
    keep = tiny_bert.present_mask()
    encoded = encode(tiny_bert, sst2_small)
    key = cache_key(
        "eval",
        model=tiny_bert.fingerprint,
        data=sst2_small.fingerprint,
        mask=mask_key(keep),
        max_length=encoded.max_length,
        precision=tiny_bert.precision,
    )
    cache.put(key, {"logits": np.zeros((3, 2), np.float32), "full_preds": np.zeros(3, np.int64)})
    result = evaluate(tiny_bert, sst2_small, cache=cache)
    assert not result.from_cache and result.n == len(sst2_small)
    assert cache.get(key)[0]["logits"].shape == (len(sst2_small), 2)
    assert evaluate(tiny_bert, sst2_small, cache=cache).from_cache
    assert cache.get(key, shapes={"logits": (5, None)}) is None and not cache.path(key).exists()


def test_the_tokenisation_memo_and_prefix_store_check_the_sample_count(tiny_bert, sst2_small):
    from pruning_core.incremental import prefix_store

    small = sst2_small.subset(range(5))
    wrong = encode(tiny_bert, small)
    key = (sst2_small.fingerprint, wrong.max_length)
    token_memo(tiny_bert).put(key, wrong)
    assert len(encode(tiny_bert, sst2_small)) == len(sst2_small)
    evaluate(tiny_bert, small, cache=DiskCache(enabled=False), remember=True)
    store = prefix_store(tiny_bert)
    states, _ = store.best(f"{small.fingerprint}:{wrong.max_length}", tiny_bert.present_mask())
    store.put(f"{sst2_small.fingerprint}:{wrong.max_length}", "planted", states)
    scheme = Scheme(3, 4, frozenset({(2, 1)}))
    result = evaluate(tiny_bert, sst2_small, scheme, cache=DiskCache(enabled=False), remember=True)
    fresh = evaluate(tiny_bert, sst2_small, scheme, cache=DiskCache(enabled=False), incremental=False)
    assert result.n == len(sst2_small) and np.allclose(result.probs, fresh.probs, atol=1e-5)


# Item 4: one output folder per run, written whole, downloads kept in memory, old runs swept.


def test_two_runs_get_their_own_report_folders(tiny_bert, sst2_small, isolated_cache):
    from pruning_core.report import pruning_report

    scheme = Scheme(3, 4, frozenset({(0, 1)}))
    first_data, second_data = sst2_small.subset(range(8), "first"), sst2_small.subset(range(8, 20), "second")
    first, second = new_run_folder(), new_run_folder()
    assert first != second and first.parent == second.parent == isolated_cache / "pruned"
    pruning_report(tiny_bert, first_data, scheme, first, batch_sizes=(1,), seq_lens=(8,), repeats=1)
    pruning_report(tiny_bert, second_data, scheme, second, batch_sizes=(1,), seq_lens=(8,), repeats=1)
    import json

    assert json.loads((first / "report.json").read_text())["data"] == "first"
    assert json.loads((second / "report.json").read_text())["data"] == "second"
    assert not [p for p in first.parent.iterdir() if p.name.startswith(".tmp-")]
    files = folder_downloads(first)
    assert set(files) == {"model.zip", "report.html", "report.json"}
    sweep_runs(ttl_hours=0, now=time.time() + 10)
    assert not first.exists() and not second.exists()
    names = zipfile.ZipFile(BytesIO(files["model.zip"])).namelist()
    assert "model/model.safetensors" in names and b'"first"' in files["report.json"], "downloads outlive the folder"


@pytest.mark.parametrize("failure", ["crash", "disk full"])
def test_a_failed_report_keeps_the_earlier_one(failure, tiny_bert, sst2_small, tmp_path, monkeypatch):
    import errno

    import safetensors.torch

    from pruning_core.report import pruning_report

    scheme = Scheme(3, 4, frozenset({(0, 1)}))
    out = tmp_path / "outputs" / "report"
    pruning_report(tiny_bert, sst2_small.subset(range(6), "earlier"), scheme, out, batch_sizes=(1,), seq_lens=(8,), repeats=1)
    before = (out / "report.json").read_bytes()

    def broken(*args, **kwargs):
        if failure == "crash":
            raise RuntimeError("crash while saving")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(safetensors.torch, "save_file", broken)
    expected = (
        (RuntimeError, "crash while saving") if failure == "crash" else (OutputError, "the disk is full.*what was there before is kept")
    )
    with pytest.raises(expected[0], match=expected[1]):
        pruning_report(tiny_bert, sst2_small.subset(range(6), "later"), scheme, out, batch_sizes=(1,), seq_lens=(8,), repeats=1)
    assert (out / "report.json").read_bytes() == before and (out / "model" / "model.safetensors").exists()
    assert sorted(p.name for p in out.parent.iterdir()) == ["report"]


def test_sweep_keeps_runs_under_the_size_bound_newest_first(tmp_path):
    root = tmp_path / "pruned"
    runs = []
    for age in (3, 2, 1):
        folder = new_run_folder(root)
        folder.mkdir(parents=True)
        (folder / "weights").write_bytes(b"x" * 1000)
        os.utime(folder, (time.time() - age * 60, time.time() - age * 60))
        runs.append(folder)
    (root / "someone-elses").mkdir()
    legacy = root / "0123456789abcdef"
    legacy.mkdir()
    os.utime(legacy, (time.time() - 7200, time.time() - 7200))
    removed = sweep_runs(root, ttl_hours=1, max_bytes=2500)
    assert removed == [legacy, runs[0]] and runs[1].exists() and runs[2].exists() and (root / "someone-elses").exists()
    assert sorted(sweep_runs(root, ttl_hours=1 / 120)) == sorted(runs[1:])


# Item 5: bounded disk cache, lock table, one waiting job per session.


def test_disk_cache_evicts_the_least_recently_used_entries(tmp_path, monkeypatch):
    monkeypatch.setenv("BHPVAS_CACHE_MAX_GB", str(30_000 / 2**30))
    cache = DiskCache(tmp_path)
    assert cache.max_bytes == 30_000
    payload = {"x": np.zeros(1000, dtype=np.float64)}
    for index, key in enumerate(("a", "b", "c")):
        assert cache.put(key, payload)
        stamp = time.time() - 100 + index
        os.utime(cache.path(key), (stamp, stamp))
    assert cache.get("a") is not None
    assert cache.put("d", payload)
    assert cache.size() <= 30_000
    present = {key for key in "abcd" if cache.path(key).exists()}
    assert "a" in present and "d" in present and "b" not in present, present


def test_an_entry_larger_than_the_limit_is_not_written(tmp_path):
    cache = DiskCache(tmp_path, max_bytes=1000)
    assert not cache.put("big", {"x": np.zeros(1000)})
    assert "larger than the cache limit" in cache.last_error and not cache.path("big").exists()


def test_the_single_flight_table_does_not_grow():
    for index in range(50):
        with single_flight(f"key-{index}"):
            assert flights_in_use() >= 1
    assert flights_in_use() == 0


def _waiting_thread(gate: JobGate, owner: str, outcome: dict, name: str, entered: threading.Event | None = None) -> threading.Thread:
    def run() -> None:
        try:
            with gate.slot(name, owner=owner):
                outcome[name] = "ran"
        except JobCancelled as exc:
            outcome[name] = f"cancelled: {exc}"

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _until(condition, limit: float = 30.0) -> None:
    deadline = time.monotonic() + limit
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert condition()


def test_one_waiting_job_per_session_and_cancel(tmp_path):
    gate = JobGate(limit=1, poll=0.02)
    release = threading.Event()
    outcome: dict[str, str] = {}

    def hold() -> None:
        with gate.slot("other session's job", owner="other"):
            release.wait(30)

    holder = threading.Thread(target=hold, daemon=True)
    holder.start()
    _until(lambda: gate.running == 1)
    first = _waiting_thread(gate, "me", outcome, "first")
    _until(lambda: gate.is_waiting("me"))
    second = _waiting_thread(gate, "me", outcome, "second")
    first.join(30)
    assert outcome["first"].startswith("cancelled: Replaced by a newer request")
    assert gate.waiting == 1 and gate.is_waiting("me")
    third = _waiting_thread(gate, "you", outcome, "third")
    _until(lambda: gate.waiting == 2)
    assert gate.cancel("you") and not gate.cancel("you")
    third.join(30)
    assert outcome["third"].startswith("cancelled: Cancelled while waiting")
    release.set()
    second.join(30)
    holder.join(30)
    assert outcome["second"] == "ran" and gate.waiting == 0 and not gate.is_waiting("me")


def test_a_full_disk_while_pruning_keeps_the_earlier_output(tiny_bert, tmp_path, monkeypatch):
    import errno

    import safetensors.torch

    from pruning_core.outputs import atomic_folder
    from pruning_core.pruning import prune_heads, save_pruned

    out = tmp_path / "outputs" / "pruned"
    pruned = prune_heads(tiny_bert, Scheme(3, 4, frozenset({(0, 1)})))
    with atomic_folder(out) as staging:
        save_pruned(pruned, staging)
    before = (out / "model.safetensors").read_bytes()

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(safetensors.torch, "save_file", full)
    with pytest.raises(OutputError, match="the disk is full.*what was there before is kept"):
        with atomic_folder(out) as staging:
            save_pruned(pruned, staging)
    assert (out / "model.safetensors").read_bytes() == before
    assert sorted(p.name for p in out.parent.iterdir()) == ["pruned"]
