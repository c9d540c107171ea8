"""The evidence views in a real browser, on a tiny random-init model and 24 SST-2 rows (cheap
analysis and curves): the Heads page draws the redundant pairs on the head map and each
criterion's spread; the Process page draws every curve's 95% band and the knee table with the
no-significant-drop knee and ties. Screenshots go to ``$BHPVAS_SHOTS`` (default ``test-artifacts/``).
"""

from __future__ import annotations

import os
import urllib.parse
from pathlib import Path

import pytest
from test_browser import ARTIFACTS, BROWSER_ARGS, CHROMIUM, WIDTH, running_app, sync_api, wait_idle

TRACE_NAMES = "() => [...document.querySelectorAll('.js-plotly-plot')].flatMap(p => (p.data || []).map(t => [t.name || '', t.type || 'scatter', t.fill || '']))"


def shot(tab, name: str) -> None:
    folder = Path(os.environ.get("BHPVAS_SHOTS") or ARTIFACTS)
    folder.mkdir(parents=True, exist_ok=True)
    height = tab.evaluate(
        "() => Math.max(...[...document.querySelectorAll('[data-testid=stMain], [data-testid=stMainBlockContainer]')].map(e => e.scrollHeight))"
    )
    tab.set_viewport_size({"width": WIDTH, "height": min(max(int(height) + 80, 1000), 6000)})
    tab.wait_for_timeout(1500)
    tab.screenshot(path=str(folder / f"{name}.png"))
    tab.set_viewport_size({"width": WIDTH, "height": 1400})


@pytest.fixture(scope="module")
def app_tab(tiny_bert_dir, tmp_path_factory):
    cache = str(tmp_path_factory.mktemp("evidence-cache"))
    with running_app(cache, tmp_path_factory.mktemp("evidence-server")) as url, sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        try:
            page = browser.new_page(viewport={"width": WIDTH, "height": 1400})
            page.set_default_timeout(600_000)
            query = urllib.parse.urlencode({"model": str(tiny_bert_dir), "data": "sst2|rows=24"})
            yield page, url, query
        finally:
            browser.close()


def traces(tab) -> list[tuple[str, str, str]]:
    return [tuple(t) for t in tab.evaluate(TRACE_NAMES)]


def test_heads_page_draws_the_pairs_and_the_spread(app_tab):
    tab, url, query = app_tab
    tab.goto(f"{url}/heads?{query}")
    tab.locator("h1").filter(has_text="Heads").first.wait_for(state="visible")
    tab.get_by_text("How much the evidence says").wait_for(state="visible")
    wait_idle(tab)
    drawn = traces(tab)
    assert any(name.startswith("redundant pairs") for name, _, _ in drawn), drawn
    assert sum(kind == "box" for _, kind, _ in drawn) >= 3, drawn
    assert any(name == "importance ± stderr" for name, _, _ in drawn)
    assert tab.get_by_text("scores: calibration set").count() >= 1
    shot(tab, "evidence-heads")


def test_process_page_draws_the_bands_and_the_knees(app_tab):
    tab, url, query = app_tab
    tab.goto(f"{url}/process?{query}")
    tab.locator("h1").filter(has_text="Pruning process").first.wait_for(state="visible")
    wait_idle(tab)
    tab.get_by_role("button", name="Compute the pruning curves").click()
    tab.get_by_text("Shaded: each strategy's 95% interval").wait_for(state="visible")
    wait_idle(tab)
    drawn = traces(tab)
    bands = [name for name, _, fill in drawn if fill == "tonexty" and name.endswith("95% interval")]
    assert len(bands) >= 4, drawn
    table = tab.locator("[data-testid='stDataFrame'], [data-testid='stTable']").last
    table.scroll_into_view_if_needed()
    assert tab.get_by_text("no significant drop").count() >= 1
    shot(tab, "evidence-process")
