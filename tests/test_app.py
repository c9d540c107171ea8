"""The dashboard, driven by Streamlit's AppTest."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parent.parent / "app.py")


def _metric(at: AppTest, label_start: str) -> str:
    return next(m.value for m in at.metric if m.label.startswith(label_start))


def test_overview_on_the_demo_shows_its_accuracy():
    at = AppTest.from_file(APP, default_timeout=120).run()
    assert not at.exception
    assert _metric(at, "Heads") == "6 × 12"
    assert _metric(at, "Accuracy on sst2:dev").endswith("%")


def test_overview_on_a_tiny_model_from_the_url(tiny_bert_dir):
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params["model"] = str(tiny_bert_dir)
    at.run()
    assert not at.exception
    assert _metric(at, "Heads") == "3 × 4"


def test_bad_model_gets_a_message_not_a_traceback(tmp_path):
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["model"] = str(tmp_path / "missing")
    at.run()
    assert not at.exception
    assert any("does not exist" in e.value for e in at.error)
