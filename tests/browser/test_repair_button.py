"""Repair in a real browser: the demo's Scheme page opened by a link with a 20-head scheme, "Repair the
current scheme", the repaired accuracy in the sidebar, the repair table and the comparison, then real
pruning of the repaired model with the repair recorded in the report.

Screenshots go to ``$BHPVAS_SHOTS`` (default ``/tmp``): ``repair-repaired.png`` and ``repair-pruned.png``.
Set ``BHPVAS_CACHE_DIR`` to reuse a warm cache.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from test_browser import BROWSER_ARGS, CHROMIUM, WIDTH, running_app, sync_api, wait_idle

SCHEME = "0.8,0.11,1.1,1.5,2.4,2.5,2.7,2.9,2.11,3.3,3.4,3.5,3.7,3.11,4.0,4.5,4.7,4.9,5.7,5.11"  # the 20 least important demo heads
LONG = 900_000


def shot(tab, name: str) -> Path:
    folder = Path(os.environ.get("BHPVAS_SHOTS", "/tmp"))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"repair-{name}.png"
    height = tab.evaluate("() => Math.max(...[...document.querySelectorAll('[data-testid=stMain]')].map(e => e.scrollHeight))")
    tab.set_viewport_size({"width": WIDTH, "height": min(max(int(height) + 80, 1100), 8000)})
    tab.wait_for_timeout(1500)
    tab.screenshot(path=str(path))
    tab.set_viewport_size({"width": WIDTH, "height": 1100})
    tab.wait_for_timeout(500)
    return path


def grid_text(tab, column: str) -> str:
    """The text of the first data frame that has ``column`` (Streamlit draws frames on a canvas and
    keeps a hidden accessible copy of the cells in the page, so it is read with ``text_content``)."""
    frame = tab.locator("[data-testid='stDataFrame']").filter(has_text=column).first
    return frame.text_content() or ""


def test_repair_then_prune_for_real_with_the_repair(tmp_path):
    cache = os.environ.get("BHPVAS_CACHE_DIR") or str(tmp_path / "cache")
    with running_app(cache, tmp_path) as url, sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        try:
            tab = browser.new_page(viewport={"width": WIDTH, "height": 1100}, accept_downloads=True)
            tab.set_default_timeout(LONG)
            tab.goto(f"{url}/scheme?model=demo&scheme={SCHEME}")
            sidebar = tab.locator("[data-testid='stSidebar']")
            sidebar.get_by_text("20 of 72 heads pruned").wait_for(state="visible")
            wait_idle(tab, timeout=LONG / 1000)

            tab.get_by_role("button", name="Repair the current scheme").click()
            repaired = sidebar.locator("[data-testid='stMetric']").filter(has_text="Accuracy after repair").first
            repaired.wait_for(state="visible")
            wait_idle(tab, timeout=LONG / 1000)
            shot(tab, "repaired")
            value = repaired.locator("[data-testid='stMetricValue']").inner_text()
            assert value.endswith("%"), value
            assert sidebar.get_by_text("Change ").count() >= 2, "the masked and the repaired change, each with its interval"
            assert "masked + repair" in grid_text(tab, "change against the full model")
            assert "A + repair" in grid_text(tab, "heads kept")
            assert "scheme=" in tab.url

            tab.get_by_text("Repair before pruning").scroll_into_view_if_needed()
            assert tab.get_by_role("checkbox", name="Repair before pruning").is_checked()
            with tab.expect_download() as download:
                tab.get_by_role("button", name="Prune 20 heads, check and time it").click()
                tab.get_by_text("Repair: full (ridge").wait_for(state="visible")
                wait_idle(tab, timeout=LONG / 1000)
                tab.get_by_role("button", name="Report (JSON)").click()
            report = json.loads(Path(download.value.path()).read_text())
            assert report["repair"]["variant"] == "full" and report["repair"]["calibration_fingerprint"]
            assert report["saved_model"] == "pruned + repair" and report["accuracy"]["saved"]["precision"] == "fp32"
            assert report["masked_equals_pruned"]
            assert tab.get_by_text("Saved model accuracy (fp32)").count() == 1
            tab.get_by_text("Repair: full (ridge").scroll_into_view_if_needed()
            shot(tab, "pruned")
        finally:
            browser.close()
