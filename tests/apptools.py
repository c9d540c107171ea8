"""Helpers shared by the AppTest modules: start the app with URL parameters, find widgets."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parent.parent / "app.py")
PAGES = ("overview", "heads", "process", "samples", "dependencies", "scheme")
TINY_DATA = "sst2|rows=24"


def app(timeout: float = 120, **params: str) -> AppTest:
    """The dashboard with ``params`` in its URL (not run yet)."""
    at = AppTest.from_file(APP, default_timeout=timeout)
    for name, value in params.items():
        at.query_params[name] = value
    return at


def button(at: AppTest, label_start: str):
    return next(b for b in at.button if b.label.startswith(label_start))


def sidebar_metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.sidebar.get("metric") if m.label == label)
