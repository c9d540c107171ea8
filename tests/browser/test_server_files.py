""" "File on the server" in a real browser with ``BHPVAS_DATA_ROOTS`` set (issue 13, item 1).

A user types ``/etc/passwd``, then a file outside the roots whose header is recognisable, then a FIFO
inside the roots: each time the page shows the refusal, never a byte of the file (no line of it in
the message, no header as column choices), and the session stays usable (the sidebar still shows
the demo's accuracy). Screenshots go to ``BHPVAS_SHOTS`` (default ``test-artifacts/``).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from test_browser import BROWSER_ARGS, CHROMIUM, WIDTH, quick_shot, running_app, sync_api, wait_idle

SECRET_HEADER = ("zq_secret_text_column", "zq_secret_label_column")
PATH_FIELD = "Path to a CSV, TSV or JSONL file"


def _type_path(tab, path: str) -> None:
    field = tab.get_by_label(PATH_FIELD)
    field.fill(path)
    field.press("Enter")
    tab.wait_for_timeout(800)
    wait_idle(tab)


def _main_text(tab) -> str:
    return tab.locator("[data-testid='stMain']").inner_text()


def _accuracy_shown(tab) -> bool:
    metric = tab.locator("[data-testid='stSidebar'] [data-testid='stMetric']").filter(has_text="Accuracy").first
    return metric.is_visible() and "%" in metric.locator("[data-testid='stMetricValue']").inner_text()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_file_on_the_server_reads_nothing_outside_the_roots(tmp_path, monkeypatch):
    roots = tmp_path / "data"
    roots.mkdir()
    fifo = roots / "reviews.csv"
    os.mkfifo(fifo)
    private = tmp_path / "private"
    private.mkdir()
    secret = private / "secret.csv"
    secret.write_text(f"{SECRET_HEADER[0]},{SECRET_HEADER[1]}\nzq private sentence,positive\n")
    passwd_first_line = Path("/etc/passwd").read_text().splitlines()[0]
    monkeypatch.setenv("BHPVAS_DATA_ROOTS", str(roots))
    cache = os.environ.get("BHPVAS_CACHE_DIR") or str(tmp_path / "cache")

    with running_app(cache, tmp_path) as url, sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        try:
            tab = browser.new_page(viewport={"width": WIDTH, "height": 1400})
            tab.set_default_timeout(600_000)
            tab.goto(url)
            wait_idle(tab)
            assert _accuracy_shown(tab)
            tab.get_by_text("Model and dataset", exact=True).click()
            tab.get_by_text("File on the server", exact=True).click()
            wait_idle(tab)

            attempts = {
                "passwd": ("/etc/passwd", "only reads data files under"),
                "outside": (str(secret), "only reads data files under"),
                "fifo": (str(fifo), "is not a regular file"),
            }
            for name, (path, refusal) in attempts.items():
                _type_path(tab, path)
                quick_shot(tab, f"server-file-{name}")
                text = _main_text(tab)
                alerts = tab.locator("[data-testid='stAlert']").all_inner_texts()
                assert any(refusal in alert for alert in alerts), (name, alerts)
                assert passwd_first_line not in text and "root:x:" not in text, name
                assert not any(column in text for column in SECRET_HEADER), name
                assert "zq private sentence" not in text, name
                assert tab.get_by_text("Text column", exact=True).count() == 0, f"{name}: no column choices for a refused file"
                assert tab.locator("[data-testid='stException']").count() == 0, name
                assert _accuracy_shown(tab), f"{name}: the session stays usable"

            tab.get_by_text("Bundled SST-2", exact=True).click()
            wait_idle(tab)
            assert _accuracy_shown(tab)
            quick_shot(tab, "server-file-after")
        finally:
            browser.close()
