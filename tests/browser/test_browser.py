"""The dashboard in a real browser (Playwright + Debian's Chromium) on the embedded demo.

Starts ``streamlit run app/main.py`` on a free port, opens every page, clicks a head on the grid and
sees it highlighted in the scatter, toggles heads in the scheme and sees the sidebar accuracy
change, downloads the scheme JSON, and saves a screenshot of every page under ``test-artifacts/``.
Skipped where Playwright or Chromium is missing. Set ``BHPVAS_CACHE_DIR`` to reuse a warm cache.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

sync_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = "/usr/bin/chromium"
if not Path(CHROMIUM).exists():
    pytest.skip(f"{CHROMIUM} is not installed", allow_module_level=True)

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
BROWSER_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
WIDTH = 1500


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def running_app(cache: str, log_dir: Path, *extra: str) -> Iterator[str]:
    """``streamlit run app/main.py`` on a free port with result cache ``cache``; yields its URL."""
    with running_server(cache, log_dir, *extra) as (url, _):
        yield url


@contextmanager
def running_server(cache: str, log_dir: Path, *extra: str) -> Iterator[tuple[str, subprocess.Popen]]:
    """:func:`running_app` that also yields the server process (to watch its memory)."""
    port = _free_port()
    env = {**os.environ, "BHPVAS_CACHE_DIR": cache, "TOKENIZERS_PARALLELISM": "false"}
    log = open(log_dir / "streamlit.log", "w")
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app/main.py", "--server.port", str(port), "--server.headless", "true", *extra],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as answer:
                if answer.status == 200:
                    break
        except OSError:
            time.sleep(0.5)
    else:
        process.kill()
        pytest.fail("streamlit did not start within 120 s")
    try:
        yield url, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The app on a free port, with the caller's BHPVAS_CACHE_DIR or a fresh one."""
    cache = os.environ.get("BHPVAS_CACHE_DIR") or str(tmp_path_factory.mktemp("browser-cache"))
    with running_app(cache, tmp_path_factory.mktemp("server")) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def page(server, browser):
    context = browser.new_context(viewport={"width": WIDTH, "height": 1000}, accept_downloads=True)
    tab = context.new_page()
    tab.set_default_timeout(60_000)
    yield tab
    context.close()


def wait_idle(page, timeout: float = 600) -> None:
    """Until the app has a title and has shown no running indicator for three seconds."""
    started, quiet = time.time(), 0
    while time.time() - started < timeout:
        busy = page.locator("[data-testid='stStatusWidget'], [data-testid='stSpinner'], [data-testid='stProgress']").count() > 0
        quiet = quiet + 1 if not busy and page.locator("h1").count() > 0 else 0
        if quiet >= 6:
            return
        page.wait_for_timeout(500)
    raise AssertionError("the app did not settle")


def screenshot(page, name: str) -> Path:
    """A full-page screenshot (Streamlit scrolls inside its main block, so the viewport is grown to fit)."""
    ARTIFACTS.mkdir(exist_ok=True)
    height = page.evaluate(
        "() => Math.max(...[...document.querySelectorAll('[data-testid=stMain], [data-testid=stMainBlockContainer]')].map(e => e.scrollHeight))"
    )
    page.set_viewport_size({"width": WIDTH, "height": min(max(int(height) + 80, 1000), 6000)})
    page.wait_for_timeout(1500)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    page.set_viewport_size({"width": WIDTH, "height": 1000})
    page.wait_for_timeout(500)
    return path


def quick_shot(page, name: str) -> Path:
    """A full-page screenshot as the page is now, into ``$BHPVAS_SHOTS`` (default ``test-artifacts/``)."""
    folder = Path(os.environ.get("BHPVAS_SHOTS", ARTIFACTS))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def go_to(page, title: str) -> None:
    page.locator("[data-testid='stSidebarNav']").get_by_text(title, exact=True).click()
    page.wait_for_timeout(800)
    wait_idle(page)


def sidebar_metric(page, label: str) -> str:
    metric = page.locator("[data-testid='stSidebar'] [data-testid='stMetric']").filter(has_text=label).first
    return metric.locator("[data-testid='stMetricValue']").inner_text()


def click_head(page, chart_index: int, layer: int, head: int, heads_per_layer: int = 12) -> None:
    """Click the centre of one grid cell (the transparent marker trace carries the heads)."""
    chart = page.locator("[data-testid='stPlotlyChart']").nth(chart_index)
    chart.wait_for(state="visible", timeout=600_000)
    chart.scroll_into_view_if_needed()
    point = chart.locator(".scatterlayer .trace").nth(0).locator("path.point").nth(layer * heads_per_layer + head)
    box = point.bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_timeout(800)
    wait_idle(page)


def plot_data(page, chart_index: int) -> list:
    return (
        page.locator("[data-testid='stPlotlyChart'] .js-plotly-plot")
        .nth(chart_index)
        .evaluate("e => e.data.map(t => t.selectedpoints || null)")
    )


def test_dashboard_in_a_browser(server, page):
    page.goto(server)
    wait_idle(page)
    assert "6 × 12" in page.locator("[data-testid='stMain']").inner_text()
    screenshot(page, "overview")

    go_to(page, "Heads")
    click_head(page, 0, 2, 3)
    assert "sel=2.3" in page.url
    selected = plot_data(page, 1)[0]
    assert selected == [2 * 12 + 3], selected
    screenshot(page, "heads")

    go_to(page, "Samples")
    screenshot(page, "samples")
    go_to(page, "Dependencies")
    assert "2.3" in page.locator("[data-testid='stMain']").inner_text()
    screenshot(page, "dependencies")

    go_to(page, "Scheme & export")
    before = sidebar_metric(page, "Accuracy")
    toggled = []
    for layer, head in ((4, 11), (3, 9), (5, 10), (2, 1)):
        click_head(page, 0, layer, head)
        toggled.append(f"{layer}.{head}")
        if sidebar_metric(page, "Accuracy") != before:
            break
    assert sidebar_metric(page, "Accuracy") != before
    assert "scheme=" + "%2C".join(sorted(toggled)) in page.url or "scheme=" + ",".join(sorted(toggled)) in page.url
    with page.expect_download() as download:
        page.get_by_role("button", name="Export scheme JSON").click()
    exported = json.loads(Path(download.value.path()).read_text())
    assert sorted(f"{a}.{b}" for a, b in exported["pruned"]) == sorted(toggled)
    assert exported["num_layers"] == 6 and exported["num_heads"] == 12
    screenshot(page, "scheme")

    go_to(page, "Pruning process")
    if page.get_by_text("Strategies to compute").count():
        field = page.locator("[data-testid='stMultiSelect']").filter(has_text="Strategies to compute").locator("input")
        field.click()
        for _ in range(12):
            page.keyboard.press("Backspace")
        page.keyboard.type("Importance (one-shot)")
        page.keyboard.press("Enter")
        page.wait_for_timeout(500)
        page.keyboard.press("Escape")
        wait_idle(page)
        page.get_by_role("button", name="Compute the pruning curves").click()
        page.wait_for_timeout(1000)
        wait_idle(page, timeout=900)
    assert page.get_by_text("Which heads are gone once").count() == 1
    screenshot(page, "process")
    page.get_by_role("button", name="Make it the current scheme").click()
    page.wait_for_timeout(800)
    wait_idle(page)
    pruned = page.locator("[data-testid='stSidebar']").get_by_text(" of 72 heads pruned").inner_text()
    assert not pruned.startswith("1 of 72"), pruned


def test_an_upload_is_removed_after_its_session_ends(browser, tmp_path):
    """Upload a CSV, close the tab; once the session is older than the reconnect window, the next
    page load of another session removes the upload's folder."""
    cache = tmp_path / "cache"
    csv = tmp_path / "reviews.csv"
    csv.write_text("text,label\nnice film,positive\nbad film,negative\nawful mess,negative\ngreat fun,positive\n")
    uploads = cache / "uploads"
    with running_app(str(cache), tmp_path, "--server.disconnectedSessionTTL", "5") as url:
        tab = browser.new_page(viewport={"width": WIDTH, "height": 1000})
        tab.set_default_timeout(60_000)
        tab.goto(url)
        wait_idle(tab)
        tab.get_by_text("Model and dataset", exact=True).click()
        tab.get_by_text("Upload a file", exact=True).click()
        tab.get_by_text("CSV, TSV or JSONL with a header").wait_for(state="visible")
        wait_idle(tab)
        data_picker = tab.locator("[data-testid='stExpander']").filter(has_text="Model and dataset")
        uploader = data_picker.locator("[data-testid='stFileUploader']").filter(has_text="CSV, TSV or JSONL")
        uploader.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(str(csv))
        tab.get_by_role("button", name="Use this dataset").click()
        wait_idle(tab)
        assert "upload" in tab.url and "reviews.csv" in tab.url
        assert [p.name for p in uploads.rglob("*.csv")] == ["reviews.csv"]
        tab.close()
        time.sleep(10)
        other = browser.new_page()
        other.goto(url)
        wait_idle(other)
        assert not list(uploads.rglob("*.csv")), "the ended session's upload is gone"
        other.close()
