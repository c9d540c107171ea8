"""Shared-server operation through the app: uploads in session folders, the source policy, heavy
work through the job gate, and four concurrent sessions evaluating on one shared model.

Unit tests of the parts live beside their modules: tests/test_jobs.py, test_uploads.py, test_policy.py.
"""

from __future__ import annotations

import gc
import os
import shutil
import threading
import time
from pathlib import Path

import numpy as np

from apptools import TINY_DATA, open_page
from apptools import app as _app
from apptools import button as _button
from pruning_core import DiskCache, evaluate
from pruning_core.jobs import JobGate, job_gate
from pruning_core.schemes import Scheme


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
    """Every heavy job the app starts, evaluations not in the cache included, passes the process-wide
    gate (a spy on the real gate records them)."""
    monkeypatch.setenv("BHPVAS_MAX_JOBS", "1")
    jobs: list[str] = []
    original = JobGate.slot

    def recording_slot(self, name="job", wait=None, owner=None):
        jobs.append(name)
        return original(self, name, wait, owner)

    monkeypatch.setattr(JobGate, "slot", recording_slot)
    at = _app(timeout=300, model=str(tiny_bert_dir), data="sst2|rows=20", scheme="0.1,2.2").run()
    assert not at.exception and not at.error
    assert jobs.count("Evaluation") == 2, "the full model's and the scheme's evaluations pass the gate"
    assert [job for job in jobs if job != "Evaluation"] == ["Head analysis"]
    open_page(at, "process").run()
    at.multiselect(key="process-compute-strategies").set_value(["importance"]).run()
    _button(at, "Compute the pruning curves").click().run()
    assert not at.exception and not at.error
    open_page(at, "scheme").run()
    _button(at, "Prune 2 heads, check and time it").click().run()
    assert not at.exception and not at.error
    assert [job for job in jobs if job != "Evaluation"] == ["Head analysis", "Pruning curves", "Pruning report"]
    assert job_gate().running == 0 and job_gate().waiting == 0
