"""Benchmark: how long a fresh server takes to show each page of the demo, filled, on an empty cache.

For every page, a new ``streamlit run app/main.py`` on an empty result cache (a fresh clone's first
visitor), then the page's deep link ``/<page>?model=demo`` as the first request in headless
Chromium. The times are printed and written as JSON: server start to healthy, and from the first
request to the page's title, to its charts drawn, to the page filled (charts and the sidebar's
accuracy) and, for the Pruning process page, to the page complete (its last knee table drawn).
The demo's analysis and curves ship with it, so nothing is computed but the full model's
evaluation for the sidebar.

    python bench/first_open.py [--pages process ...] [--out /tmp/bhpvas-first-open.json]

Needs Debian's chromium and the ``playwright`` package (``make install`` has both).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

from browser_toggle import open_tab, start_server
from playwright import sync_api

PAGES = {  # URL path: (the page's title, charts drawn when filled, tables drawn when complete)
    "overview": ("bhpvas: attention head pruning", 1, 0),
    "heads": ("Heads", 3, 0),
    "process": ("Pruning process", 2, 3),
    "samples": ("Samples", 1, 0),
    "dependencies": ("Dependencies", 1, 0),
    "scheme": ("Scheme & export", 2, 0),
}


def open_page(path: str, title: str, charts: int, tables: int = 0) -> dict:
    """One fresh server and empty cache; seconds to healthy, to the title, to the filled page and
    (with ``tables``) to the page complete: its last table drawn (the Pruning process page's knee tables)."""
    work = Path(tempfile.mkdtemp(prefix="bhpvas-first-open-"))
    started = time.perf_counter()
    url, server = start_server(str(work / "cache"), work / "streamlit.log")
    healthy = time.perf_counter() - started
    try:
        with sync_api.sync_playwright() as playwright:
            browser, page = open_tab(playwright, 180_000)
            requested = time.perf_counter()
            page.goto(f"{url}/{path}?model=demo")
            page.locator("h1").filter(has_text=title).first.wait_for(state="visible")
            titled = time.perf_counter() - requested
            main = page.locator("[data-testid='stMain']")
            main.locator("[data-testid='stPlotlyChart'] .js-plotly-plot").nth(charts - 1).wait_for(state="visible")
            drawn = time.perf_counter() - requested
            sidebar = page.locator("[data-testid='stSidebar'] [data-testid='stMetric']").filter(has_text="Accuracy")
            sidebar.first.wait_for(state="visible")
            filled = time.perf_counter() - requested
            complete = None
            if tables:
                main.locator("[data-testid='stDataFrame']").nth(tables - 1).wait_for(state="visible")
                complete = time.perf_counter() - requested
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    return {
        "page": path,
        "healthy_s": round(healthy, 2),
        "title_s": round(titled, 2),
        "charts_s": round(drawn, 2),
        "filled_s": round(filled, 2),
        "complete_s": None if complete is None else round(complete, 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="/tmp/bhpvas-first-open.json")
    parser.add_argument("--pages", nargs="+", choices=list(PAGES), default=list(PAGES), help="pages to open (default: all)")
    args = parser.parse_args()
    rows = []
    for path in args.pages:
        row = open_page(path, *PAGES[path])
        rows.append(row)
        complete = "" if row["complete_s"] is None else f", complete (every table) {row['complete_s']:.1f} s"
        print(
            f"{path}: server healthy {row['healthy_s']:.1f} s; after the request: title {row['title_s']:.1f} s, "
            f"charts {row['charts_s']:.1f} s, filled (charts and the sidebar's accuracy) {row['filled_s']:.1f} s{complete}"
        )
    precision = os.environ.get("BHPVAS_PRECISION") or "hardware default"
    result = {"machine": f"{platform.machine()} cores={os.cpu_count()}", "precision": precision, "rows": rows}
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
