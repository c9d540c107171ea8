"""Benchmark: click-to-updated-sidebar time of a one-head toggle, in a real browser.

Starts the dashboard on the demo (``streamlit run app/main.py``, a fresh result cache), opens the
Scheme page with a 21-head scheme, then clicks heads of layers 0, 3 and 5 on the scheme grid. Each
click adds a head (a masked evaluation that recomputes the layers from the toggled one up), each
second click removes it again (a remembered result). Three times from the click are printed and
written as JSON: to the sidebar first showing the new head count (the evaluation's progress bar,
"Evaluating the scheme (22 heads pruned)", or the metrics' caption: the click is acknowledged), to
the sidebar's metrics of the new scheme (their caption "22 of 72 heads pruned · …", drawn once the
evaluation is done: click-to-updated-sidebar), and to the page being idle.

    python bench/browser_toggle.py                    # default precision of this machine
    BHPVAS_PRECISION=fp32 python bench/browser_toggle.py --out /tmp/toggle-fp32.json

Needs Debian's chromium and the ``playwright`` package (``make install`` has both).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from playwright import sync_api

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
START = [
    "1.0",
    "1.4",
    "2.2",
    "2.5",
    "2.7",
    "3.1",
    "3.3",
    "3.8",
    "4.0",
    "4.2",
    "4.5",
    "4.6",
    "4.9",
    "5.0",
    "5.1",
    "5.3",
    "5.4",
    "5.6",
    "5.7",
    "5.8",
    "5.11",
]
CLICKS = {0: (3, 7, 10), 3: (0, 5, 11), 5: (2, 5, 9)}
HEADS_PER_LAYER = 12


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(cache: str, log: Path) -> tuple[str, subprocess.Popen]:
    port = free_port()
    env = {**os.environ, "BHPVAS_CACHE_DIR": cache, "TOKENIZERS_PARALLELISM": "false"}
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app/main.py", "--server.port", str(port), "--server.headless", "true"],
        cwd=ROOT,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(240):
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2):
                return url, process
        except OSError:
            time.sleep(0.5)
    process.kill()
    raise SystemExit("streamlit did not start within 120 s")


def open_tab(playwright, timeout_ms: int):
    """Headless Debian chromium and one 1500 x 1000 tab; returns (browser, tab)."""
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
    tab = browser.new_page(viewport={"width": 1500, "height": 1000})
    tab.set_default_timeout(timeout_ms)
    return browser, tab


def wait_idle(page, timeout: float = 900) -> float:
    """Wait until the app has shown no running indicator for 1.5 s; returns when that quiet began (perf_counter)."""
    started, quiet, since = time.time(), 0, 0.0
    while time.time() - started < timeout:
        busy = page.locator("[data-testid='stStatusWidget'], [data-testid='stSpinner'], [data-testid='stProgress']").count() > 0
        if not busy and page.locator("h1").count() > 0:
            since = since if quiet else time.perf_counter()
            quiet += 1
        else:
            quiet = 0
        if quiet >= 6:
            return since
        page.wait_for_timeout(250)
    raise SystemExit("the app did not settle")


WATCH = """([count, progress]) => {
  const sidebar = document.querySelector('[data-testid=stSidebar]');
  const captions = () => [...sidebar.querySelectorAll('[data-testid=stCaptionContainer]')].map(e => e.innerText);
  const times = window.__toggle = {start: performance.now(), acknowledged: null, metrics: null};
  const check = () => {
    const now = performance.now();
    if (times.acknowledged === null && (sidebar.innerText.includes(count) || sidebar.innerText.includes(progress))) times.acknowledged = now;
    if (times.metrics === null && captions().some(t => t.startsWith(count + ' ·'))) { times.metrics = now; observer.disconnect(); }
  };
  const observer = new MutationObserver(check);
  observer.observe(sidebar, {subtree: true, childList: true, characterData: true});
}"""
"""Records, in the page, when the sidebar first shows the new head count and when it shows the new
scheme's metrics: a MutationObserver runs as the DOM changes, so a busy page (charts redrawing after
the sidebar) cannot delay the reading, as polling from outside would."""


def click_and_time(page, layer: int, head: int, expected_pruned: int) -> tuple[float, float, float]:
    """Click one cell of the scheme grid; seconds until the sidebar shows ``expected_pruned`` heads
    (in the evaluation's progress bar or the metrics' caption), until it shows that scheme's
    metrics, and until the page is idle."""
    chart = page.locator("[data-testid='stPlotlyChart']").nth(0)
    chart.scroll_into_view_if_needed()
    point = chart.locator(".scatterlayer .trace").nth(0).locator("path.point").nth(layer * HEADS_PER_LAYER + head)
    box = point.bounding_box()
    assert box is not None
    count = f"{expected_pruned} of 72 heads pruned"
    page.evaluate(WATCH, [count, f"({expected_pruned} heads pruned)"])
    started = time.perf_counter()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    try:
        page.wait_for_function("() => window.__toggle.metrics !== null", polling=50, timeout=120_000)
    except sync_api.TimeoutError:
        page.screenshot(path="/tmp/bhpvas-browser-toggle-timeout.png")
        raise SystemExit(f"the sidebar never showed the metrics of {count!r} (screenshot in /tmp)") from None
    times = page.evaluate("() => window.__toggle")
    return (times["acknowledged"] - times["start"]) / 1000, (times["metrics"] - times["start"]) / 1000, wait_idle(page) - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="/tmp/bhpvas-browser-toggle.json")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bhpvas-toggle-"))
    url, server = start_server(str(work / "cache"), work / "streamlit.log")
    rows = []
    try:
        with sync_api.sync_playwright() as playwright:
            browser, page = open_tab(playwright, 600_000)
            page.goto(f"{url}/scheme?model=demo&scheme={','.join(START)}")
            page.get_by_text(f"{len(START)} of 72 heads pruned").wait_for(state="visible")
            wait_idle(page)
            page.wait_for_timeout(2000)
            for layer, heads in CLICKS.items():
                for head in heads:
                    add = click_and_time(page, layer, head, len(START) + 1)
                    back = click_and_time(page, layer, head, len(START))
                    rows.append(
                        {
                            "layer": layer,
                            "head": head,
                            "new_acknowledged_s": add[0],
                            "new_s": add[1],
                            "new_idle_s": add[2],
                            "known_acknowledged_s": back[0],
                            "known_s": back[1],
                            "known_idle_s": back[2],
                        }
                    )
                    print(
                        f"layer {layer} head {head}: new scheme {add[0]:.2f} s to the head count, {add[1]:.2f} s to the metrics "
                        f"({add[2]:.2f} s to idle); back {back[0]:.2f} / {back[1]:.2f} s",
                        flush=True,
                    )
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    precision = os.environ.get("BHPVAS_PRECISION") or "hardware default"
    summary = {
        layer: {
            f"median_{field}": round(statistics.median(r[field] for r in rows if r["layer"] == layer), 2)
            for field in ("new_acknowledged_s", "new_s", "known_acknowledged_s", "known_s")
        }
        for layer in CLICKS
    }
    result = {"machine": f"{platform.machine()} cores={os.cpu_count()}", "precision": precision, "rows": rows, "by_layer": summary}
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
