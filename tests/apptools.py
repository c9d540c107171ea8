"""Helpers shared by the AppTest modules: start the app with URL parameters, open a page, find widgets."""

from __future__ import annotations

import json
from pathlib import Path

from streamlit.testing.v1 import AppTest
from streamlit.util import calc_hash

APP = str(Path(__file__).resolve().parent.parent / "app" / "main.py")
PAGES = ("overview", "heads", "process", "samples", "dependencies", "scheme")
TINY_DATA = "sst2|rows=24"


def app(timeout: float = 120, **params: str) -> AppTest:
    """The dashboard with ``params`` in its URL (not run yet)."""
    at = AppTest.from_file(APP, default_timeout=timeout)
    for name, value in params.items():
        at.query_params[name] = value
    return at


def open_page(at: AppTest, url_path: str) -> AppTest:
    """Ask for the page at ``/url_path`` on the next run (not run yet).

    ``AppTest.switch_page`` only finds pages defined by files; the dashboard's pages are callables,
    which Streamlit identifies by the hash of their URL path, so the request names that hash.
    """
    at._page_hash = calc_hash(url_path)
    return at


def button(at: AppTest, label_start: str):
    return next(b for b in at.button if b.label.startswith(label_start))


def sidebar_metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.sidebar.get("metric") if m.label == label)


def shown_text(markdown: str) -> str:
    """The text of a message the app wraps in a code span (user-supplied text is shown literally)."""
    text = markdown.strip()
    fence = len(text) - len(text.lstrip("`"))
    if fence and text.endswith("`" * fence):
        return text[fence:-fence].strip()
    return markdown


def metric(at: AppTest, label_start: str) -> str:
    """The value of the first metric whose label starts with ``label_start``."""
    return next(m.value for m in at.metric if m.label.startswith(label_start))


def show(at: AppTest, page: str) -> AppTest:
    """Open ``page`` and run it; it must render without an exception or an error message."""
    open_page(at, page).run()
    assert not at.exception, f"{page}: {at.exception}"
    assert not at.error, f"{page}: {[e.value for e in at.error]}"
    return at


def by_label(elements, label: str):
    return next(e for e in elements if e.label == label)


def traces(at: AppTest) -> list[dict]:
    """Every trace of every Plotly chart on the page, as the figure JSON has it."""
    return [trace for chart in at.get("plotly_chart") for trace in json.loads(chart.proto.spec).get("data", [])]
