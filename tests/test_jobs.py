"""The heavy-job gate (:mod:`pruning_core.jobs`): one queue for every heavy computation of a server."""

from __future__ import annotations

import threading
import time

import pytest

from pruning_core.jobs import JobGate, heavy_job, job_gate


def _wait_until(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.005)


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
