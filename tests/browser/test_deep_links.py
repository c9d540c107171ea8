"""Deep links in a real browser: a shared URL to any page (``/process?model=demo`` ...) as the very
first request after the server starts shows that page, its title once, and the sidebar.

Each page gets a freshly started server (the result cache is shared, so the demo's analysis is
computed once). Screenshots go to ``test-artifacts/deep-link-<page>.png``.
"""

from __future__ import annotations

import os

import pytest
from test_browser import ARTIFACTS, BROWSER_ARGS, CHROMIUM, WIDTH, running_app, sync_api

PAGES = {  # URL path: (title in the navigation, the page's title)
    "overview": ("Overview", "bhpvas: attention head pruning"),
    "heads": ("Heads", "Heads"),
    "process": ("Pruning process", "Pruning process"),
    "samples": ("Samples", "Samples"),
    "dependencies": ("Dependencies", "Dependencies"),
    "scheme": ("Scheme & export", "Scheme & export"),
}


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory) -> str:
    return os.environ.get("BHPVAS_CACHE_DIR") or str(tmp_path_factory.mktemp("deep-link-cache"))


@pytest.mark.parametrize("url_path", list(PAGES))
def test_a_deep_link_is_the_first_request(url_path, shared_cache, tmp_path):
    with running_app(shared_cache, tmp_path) as url, sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        try:
            tab = browser.new_page(viewport={"width": WIDTH, "height": 1000})
            tab.set_default_timeout(600_000)
            tab.goto(f"{url}/{url_path}?model=demo")
            nav_title, title = PAGES[url_path]
            tab.locator("h1").filter(has_text=title).first.wait_for(state="visible")
            sidebar = tab.locator("[data-testid='stSidebar']")
            sidebar.locator("[data-testid='stMetric']").filter(has_text="Accuracy").first.wait_for(state="visible")
            tab.wait_for_timeout(1500)
            assert tab.locator("h1").filter(has_text=title).count() == 1
            assert tab.locator("h1").count() == 1, tab.locator("h1").all_inner_texts()
            nav = sidebar.locator("[data-testid='stSidebarNav']")
            assert nav.get_by_text(nav_title, exact=True).count() == 1, "the navigation lists the page"
            assert f"/{url_path}" in tab.url or url_path == "overview"
            assert "model=demo" in tab.url
            ARTIFACTS.mkdir(exist_ok=True)
            tab.screenshot(path=str(ARTIFACTS / f"deep-link-{url_path}.png"))
        finally:
            browser.close()


def test_the_demo_process_page_opens_filled_on_an_empty_cache(tmp_path):
    """A fresh clone: empty result cache, the first request is ``/process?model=demo``; the shipped
    curves are drawn without a click (no compute button) with their knee table."""
    cache = tmp_path / "empty-cache"
    with running_app(str(cache), tmp_path) as url, sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        try:
            tab = browser.new_page(viewport={"width": WIDTH, "height": 1000})
            tab.set_default_timeout(300_000)
            tab.goto(f"{url}/process?model=demo")
            starting = tab.get_by_text("Starting bhpvas")
            starting.first.wait_for(state="visible")  # a server's first run says what happens in its blank seconds
            tab.get_by_text("Which heads are gone once").first.wait_for(state="visible")
            assert starting.count() == 0, "the starting notice goes once the page is drawn"
            main = tab.locator("[data-testid='stMain']")
            main.locator("[data-testid='stPlotlyChart'] .js-plotly-plot").nth(1).wait_for(state="visible")
            assert tab.get_by_role("button", name="Compute the pruning curves").count() == 0
            assert main.locator("[data-testid='stPlotlyChart']").count() >= 2, "the curves and the step grids"
            text = main.inner_text()
            assert "shipped with the demo" in text, "the page says where the curves come from"
            traces = main.locator("[data-testid='stPlotlyChart'] .js-plotly-plot").first.evaluate("e => e.data.map(t => t.name)")
            assert any("Importance" in str(name) for name in traces), traces
            ARTIFACTS.mkdir(exist_ok=True)
            tab.screenshot(path=str(ARTIFACTS / "process-first-request.png"), full_page=True)
        finally:
            browser.close()
