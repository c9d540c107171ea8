"""Shared-server operation: the heavy-job gate, per-session uploads, the source policy in the app,
and four concurrent sessions evaluating on one shared model."""

from __future__ import annotations

import gc
import os
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from apptools import TINY_DATA, open_page
from apptools import app as _app
from apptools import button as _button
from pruning_core import DiskCache, evaluate
from pruning_core.jobs import JobGate, heavy_job, job_gate
from pruning_core.schemes import Scheme
from pruning_core.uploads import UploadSession, check_upload_exists, sweep_uploads


def _wait_until(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.005)


# --- the heavy-job gate --------------------------------------------------------------------------


def _run_queued(gate: JobGate, count: int, hold: float, events: list, lock: threading.Lock) -> None:
    """Start ``count`` jobs one after another (each queued before the next arrives) and join them."""

    def job(index: int) -> None:
        with gate.slot(f"job-{index}"):
            with lock:
                events.append(("start", index, time.monotonic()))
            time.sleep(hold)
            with lock:
                events.append(("end", index, time.monotonic()))

    threads = []
    for index in range(count):
        before = gate.running + gate.waiting
        thread = threading.Thread(target=job, args=(index,))
        thread.start()
        threads.append(thread)
        _wait_until(lambda before=before, index=index: gate.running + gate.waiting > before or any(e[1] == index for e in events))
    for thread in threads:
        thread.join(10)


def test_gate_with_limit_one_never_overlaps_and_keeps_arrival_order():
    gate = JobGate(limit=1, poll=0.01)
    events: list = []
    _run_queued(gate, 3, 0.05, events, threading.Lock())
    assert [(kind, index) for kind, index, _ in events] == [
        ("start", 0),
        ("end", 0),
        ("start", 1),
        ("end", 1),
        ("start", 2),
        ("end", 2),
    ]
    assert gate.running == 0 and gate.waiting == 0


def test_gate_with_limit_two_runs_two_at_once():
    gate = JobGate(limit=2, poll=0.01)
    both_inside = threading.Barrier(2, timeout=5)
    peak = []
    inside = [0]
    lock = threading.Lock()

    def job() -> None:
        with gate.slot():
            with lock:
                inside[0] += 1
                peak.append(inside[0])
            both_inside.wait()
            time.sleep(0.02)
            with lock:
                inside[0] -= 1

    threads = [threading.Thread(target=job) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert max(peak) == 2, "two jobs ran together, never three"


def test_gate_reports_queue_positions_to_the_wait_callback():
    gate = JobGate(limit=1, poll=0.01)
    release_first = threading.Event()
    seen: dict[str, list[int]] = {"b": [], "c": []}

    def first() -> None:
        with gate.slot("a"):
            release_first.wait(5)

    def waiting(name: str) -> None:
        def wait(ahead: int) -> None:
            if not seen[name] or seen[name][-1] != ahead:
                seen[name].append(ahead)

        with gate.slot(name, wait=wait):
            time.sleep(0.03)

    a = threading.Thread(target=first)
    a.start()
    _wait_until(lambda: gate.running == 1)
    b = threading.Thread(target=waiting, args=("b",))
    b.start()
    _wait_until(lambda: gate.waiting == 1)
    c = threading.Thread(target=waiting, args=("c",))
    c.start()
    _wait_until(lambda: gate.waiting == 2 and seen["c"])
    release_first.set()
    for thread in (a, b, c):
        thread.join(10)
    assert seen["b"] == [1]
    assert seen["c"] == [2, 1], "c waited behind a and b, then behind b only"


def test_an_exception_in_a_job_releases_its_slot():
    gate = JobGate(limit=1, poll=0.01)
    with pytest.raises(RuntimeError):
        with gate.slot():
            raise RuntimeError("the job failed")
    assert gate.running == 0
    done = threading.Event()

    def next_job() -> None:
        with gate.slot():
            done.set()

    thread = threading.Thread(target=next_job)
    thread.start()
    thread.join(5)
    assert done.is_set()


def test_a_waiter_that_gives_up_leaves_the_queue():
    gate = JobGate(limit=1, poll=0.01)
    release = threading.Event()
    holder = threading.Thread(target=_hold, args=(gate, release))
    holder.start()
    _wait_until(lambda: gate.running == 1)

    class GaveUp(Exception):
        pass

    def impatient(ahead: int) -> None:
        raise GaveUp

    with pytest.raises(GaveUp):
        with gate.slot(wait=impatient):
            pass
    assert gate.waiting == 0
    release.set()
    holder.join(5)
    with gate.slot():
        assert gate.running == 1


def _hold(gate: JobGate, release: threading.Event) -> None:
    with gate.slot():
        release.wait(5)


def test_nested_heavy_jobs_in_one_thread_do_not_deadlock(monkeypatch):
    monkeypatch.setenv("BHPVAS_MAX_JOBS", "1")
    with heavy_job("outer"):
        with heavy_job("inner"):
            assert job_gate().running == 1
    assert job_gate().running == 0


def test_max_jobs_comes_from_the_environment(monkeypatch):
    from pruning_core import BhpvasError

    monkeypatch.setenv("BHPVAS_MAX_JOBS", "3")
    assert job_gate().limit == 3
    monkeypatch.setenv("BHPVAS_MAX_JOBS", "none")
    with pytest.raises(BhpvasError, match="BHPVAS_MAX_JOBS"):
        job_gate()
    monkeypatch.delenv("BHPVAS_MAX_JOBS")
    assert job_gate().limit == 1


# --- per-session uploads -------------------------------------------------------------------------


def test_an_upload_folder_is_removed_when_its_session_owner_is_collected(tmp_path):
    owner = UploadSession(tmp_path / "uploads")
    path = owner.save(b"text,label\nfine,1\n", "reviews.csv")
    assert path.read_bytes() == b"text,label\nfine,1\n"
    assert path.parent.parent == owner.folder and path.name == "reviews.csv"
    assert owner.save(b"text,label\nfine,1\n", "reviews.csv") == path, "the same bytes are stored once"
    folder = owner.folder
    del owner
    gc.collect()
    assert not folder.exists()
    assert (tmp_path / "uploads").exists(), "only the session's own folder goes"


def test_two_sessions_do_not_share_upload_folders(tmp_path):
    first, second = UploadSession(tmp_path), UploadSession(tmp_path)
    a = first.save(b"text,label\nx,1\n", "d.csv")
    b = second.save(b"text,label\nx,1\n", "d.csv")
    assert a != b
    first.close()
    assert not a.exists() and b.exists()


def test_sweep_removes_old_upload_folders_and_keeps_fresh_ones(tmp_path, monkeypatch):
    root = tmp_path / "uploads"
    old, fresh, legacy = UploadSession(root), UploadSession(root), root / "0123456789abcdef"
    old_path = old.save(b"a,b\n1,2\n", "old.csv")
    fresh.save(b"a,b\n1,2\n", "fresh.csv")
    legacy.mkdir(parents=True)
    (legacy / "legacy.csv").write_text("a,b\n1,2\n")
    day_and_more = time.time() - 25 * 3600
    for path in [old.folder, *old.folder.rglob("*"), legacy, *legacy.rglob("*")]:
        os.utime(path, (day_and_more, day_and_more))
    assert sorted(sweep_uploads(root, ttl_hours=24)) == sorted([old.folder, legacy])
    assert not old_path.exists() and fresh.folder.exists()
    monkeypatch.setenv("BHPVAS_UPLOAD_TTL_HOURS", "0")
    assert sweep_uploads(root, now=time.time() + 1) == [fresh.folder]


def test_a_vanished_upload_gets_a_clear_message(tmp_path):
    from pruning_core import DataError

    owner = UploadSession(tmp_path / "uploads")
    path = owner.save(b"text,label\nx,1\n", "reviews.csv")
    check_upload_exists(path, tmp_path / "uploads")
    owner.close()
    with pytest.raises(DataError, match="belonged to a session that ended; upload it again"):
        check_upload_exists(path, tmp_path / "uploads")
    check_upload_exists(tmp_path / "elsewhere.csv", tmp_path / "uploads")


def _reviews_csv(rows: int = 12) -> bytes:
    body = "\n".join(f"{'great' if i % 2 else 'awful'} film number {i},{'positive' if i % 2 else 'negative'}" for i in range(rows))
    return ("review,stars\n" + body).encode()


def test_app_upload_lives_in_the_session_folder_and_goes_with_the_session(tiny_bert_dir, isolated_cache):
    at = _app(model=str(tiny_bert_dir), data=TINY_DATA).run()
    at.radio(key="pick-data-kind").set_value("Upload a file").run()
    at.file_uploader(key="pick-data-upload").set_value(("reviews.csv", _reviews_csv(), "text/csv")).run()
    _button(at, "Use this dataset").click().run()
    assert not at.exception and not at.error
    path = Path(at.session_state["data"].split("|")[0])
    token = at.session_state["_bhpvas_uploads"].token
    assert path.parent.parent == isolated_cache / "uploads" / token and path.exists()
    del at
    gc.collect()
    assert not path.exists() and not path.parent.parent.exists(), "the session's uploads go when the session does"


def test_a_url_pointing_at_an_ended_sessions_upload_says_so(tiny_bert_dir, isolated_cache):
    gone = isolated_cache / "uploads" / ("0" * 24) / "abcdef0123456789" / "reviews.csv"
    at = _app(timeout=60, model=str(tiny_bert_dir), data=f"{gone}|text=review|label=stars", scheme="0.1").run()
    assert not at.exception
    assert any("this uploaded file belonged to a session that ended; upload it again" in e.value for e in at.error)
    assert at.session_state["scheme"] == "0.1"


def test_startup_sweep_removes_left_over_uploads(tiny_bert_dir, isolated_cache, monkeypatch):
    import app.uploads as uploads

    stale = isolated_cache / "uploads" / ("f" * 24)
    stale.mkdir(parents=True)
    (stale / "left.csv").write_text("a,b\n1,2\n")
    long_ago = time.time() - 48 * 3600
    for path in (stale, stale / "left.csv"):
        os.utime(path, (long_ago, long_ago))
    uploads.startup_sweep.clear()
    at = _app(model=str(tiny_bert_dir), data=TINY_DATA).run()
    assert not at.exception
    assert not stale.exists()


# --- the source policy in the app -----------------------------------------------------------------


def test_policy_refuses_a_model_folder_outside_the_allowed_roots(tiny_bert_dir, tmp_path, monkeypatch):
    outside = shutil.copytree(tiny_bert_dir, tmp_path / "outside" / "model")
    monkeypatch.setenv("BHPVAS_MODEL_ROOTS", str(tiny_bert_dir.parent))
    at = _app(model=str(tiny_bert_dir), data=TINY_DATA, scheme="0.1,1.2").run()
    assert not at.exception and not at.error, "a model under the allowed roots opens"
    at.radio(key="pick-model-kind").set_value("Local folder").run()
    at.text_input(key="pick-model-folder").input(str(outside)).run()
    _button(at, "Load model").click().run()
    assert not at.exception
    messages = [e.value for e in at.error]
    assert any("This server only opens model folders under" in m and str(tiny_bert_dir.parent) in m for m in messages), messages
    assert at.session_state["model"] == str(tiny_bert_dir) and at.session_state["scheme"] == "0.1,1.2"
    direct = _app(timeout=60, model=str(outside), data=TINY_DATA).run()
    assert not direct.exception
    assert any("This server only opens model folders under" in e.value for e in direct.error)


def test_policy_refuses_hub_ids_when_the_hub_is_off(tiny_bert_dir, monkeypatch):
    monkeypatch.setenv("BHPVAS_ALLOW_HUB", "0")
    at = _app(model=str(tiny_bert_dir), data=TINY_DATA, scheme="2.3").run()
    at.radio(key="pick-model-kind").set_value("Hub id").run()
    at.text_input(key="pick-model-hub").input("someone/some-model").run()
    _button(at, "Load model").click().run()
    assert not at.exception
    assert any("this server does not download models from the hub" in e.value for e in at.error)
    assert at.session_state["model"] == str(tiny_bert_dir) and at.session_state["scheme"] == "2.3"


def test_data_policy_allows_bundled_data_uploads_and_files_under_the_roots(tmp_path, monkeypatch):
    from pruning_core.errors import DataError
    from pruning_core.policy import SourcePolicy

    allowed, elsewhere, uploads = tmp_path / "data", tmp_path / "private", tmp_path / "uploads"
    for folder in (allowed, elsewhere, uploads):
        folder.mkdir()
    monkeypatch.setenv("BHPVAS_DATA_ROOTS", str(allowed))
    policy = SourcePolicy.from_env()
    policy.check_data("sst2")
    policy.check_data(str(allowed / "reviews.csv"))
    policy.check_data(str(uploads / "token" / "sha" / "reviews.csv"), always_allowed=(uploads,))
    for refused in (str(elsewhere / "secret.csv"), str(allowed / ".." / "private" / "secret.csv"), "/etc/passwd"):
        with pytest.raises(DataError, match="only reads data files under"):
            policy.check_data(refused, always_allowed=(uploads,))
    monkeypatch.delenv("BHPVAS_DATA_ROOTS")
    SourcePolicy.from_env().check_data(str(elsewhere / "secret.csv"))


def test_app_refuses_a_data_file_outside_the_data_roots(tiny_bert_dir, tmp_path, monkeypatch):
    private = tmp_path / "private"
    private.mkdir()
    secret = private / "secret.csv"
    secret.write_text("text,label\nsecret words,positive\n")
    monkeypatch.setenv("BHPVAS_DATA_ROOTS", str(tmp_path / "data"))
    at = _app(model=str(tiny_bert_dir), data=str(secret), scheme="2.3").run()
    assert not at.exception
    assert any("only reads data files under" in e.value for e in at.error)
    assert not any("secret words" in str(getattr(e, "value", "")) for e in at.main)


# --- four sessions at once on one shared model ----------------------------------------------------


def test_four_concurrent_sessions_on_one_model_match_the_serial_results(tiny_bert):
    """Four threads (as four app sessions) evaluate four schemes on the same shared LoadedModel."""
    from pruning_core import load_dataset

    sst2_small = load_dataset("sst2", max_rows=160)
    schemes = [
        None,
        Scheme(3, 4, frozenset({(0, 1), (2, 3)})),
        Scheme(3, 4, frozenset({(1, 0), (1, 1), (1, 2)})),
        Scheme(3, 4, frozenset({(0, 0), (0, 2), (2, 0), (2, 1), (2, 2)})),
    ]
    serial = [evaluate(tiny_bert, sst2_small, s, cache=DiskCache(enabled=False)) for s in schemes]
    rounds = 4
    results: dict[tuple[int, int], object] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(len(schemes), timeout=30)

    def session(index: int) -> None:
        try:
            start.wait()
            for round_ in range(rounds):
                # rounds 0 and 3: the app's default path (disk cache + incremental); 1 and 2 force the computation
                cache = None if round_ in (0, 3) else DiskCache(enabled=False)
                results[index, round_] = evaluate(tiny_bert, sst2_small, schemes[index], cache=cache)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=session, args=(i,)) for i in range(len(schemes))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors
    assert len(results) == len(schemes) * rounds
    for (index, _), result in results.items():
        assert np.array_equal(result.preds, serial[index].preds)
        assert np.abs(result.probs - serial[index].probs).max() < 1e-6
        assert result.accuracy == serial[index].accuracy


def test_the_app_runs_analysis_curves_and_pruning_reports_through_the_job_gate(tiny_bert_dir, monkeypatch):
    """Every heavy job the app starts passes the process-wide gate (a spy on the real gate records them)."""
    monkeypatch.setenv("BHPVAS_MAX_JOBS", "1")
    jobs: list[str] = []
    original = JobGate.slot

    def recording_slot(self, name="job", wait=None):
        jobs.append(name)
        return original(self, name, wait)

    monkeypatch.setattr(JobGate, "slot", recording_slot)
    at = _app(timeout=300, model=str(tiny_bert_dir), data="sst2|rows=20", scheme="0.1,2.2").run()
    assert not at.exception and not at.error
    assert jobs == ["Head analysis"]
    open_page(at, "process").run()
    at.multiselect(key="process-compute-strategies").set_value(["importance"]).run()
    _button(at, "Compute the pruning curves").click().run()
    assert not at.exception and not at.error
    open_page(at, "scheme").run()
    _button(at, "Prune 2 heads, check and time it").click().run()
    assert not at.exception and not at.error
    assert jobs == ["Head analysis", "Pruning curves", "Pruning report"]
    assert job_gate().running == 0 and job_gate().waiting == 0


def test_sweeper_removes_folders_of_sessions_gone_longer_than_the_grace(tmp_path):
    from pruning_core.uploads import EndedSessionSweeper

    sweeper = EndedSessionSweeper(tmp_path)
    gone, alive, recent = (UploadSession(tmp_path) for _ in range(3))
    for owner in (gone, alive, recent):
        owner.save(b"text,label\nok,positive\n", "data.csv")
    sweeper.track(gone.token, "session-gone", now=1000.0)
    sweeper.track(alive.token, "session-alive", now=1000.0)
    sweeper.track(recent.token, "session-recent", now=1100.0)
    active = {"session-alive"}
    removed = sweeper.sweep(active.__contains__, grace_seconds=120, now=1150.0)
    assert removed == [tmp_path / gone.token]
    assert not gone.folder.exists() and alive.folder.exists() and recent.folder.exists()
    assert sweeper.sweep(active.__contains__, grace_seconds=120, now=1300.0) == [tmp_path / recent.token]
    assert alive.folder.exists() and sweeper.tracked == {alive.token}
    untracked = tmp_path / "from-another-process"
    untracked.mkdir()
    sweeper.sweep(lambda _: False, grace_seconds=0, now=10_000.0)
    assert untracked.exists() and not alive.folder.exists()
