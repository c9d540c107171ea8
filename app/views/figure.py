"""Putting a Plotly figure on the page: selectable charts that report heads, and download buttons.

Streamlit picks the drag mode of selectable charts: clicking selects a point; box and lasso
selection are in each chart's toolbar (while one of them is active, clicks do not select).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable

import plotly.graph_objects as go
import streamlit as st

from app.keys import Head
from app.state import view_key
from app.views.style import CHART_CONFIG, PLAIN_CONFIG

ALL_SELECTIONS = ("points", "box", "lasso")


def heads_from_event(event) -> list[Head] | None:
    """Heads picked in a Plotly selection event (points carry ``customdata`` = [layer, head]; the browser
    may send an array as ``{"0": layer, "1": head}``)."""
    if not event:
        return None
    selection = event.get("selection") if isinstance(event, dict) else getattr(event, "selection", None)
    if selection is None:
        return None
    heads = []
    for point in selection.get("points", []):
        data = point.get("customdata")
        if isinstance(data, dict):
            data = [data[k] for k in sorted(data, key=int)]
        if isinstance(data, (list, tuple)) and len(data) >= 2:
            heads.append((int(data[0]), int(data[1])))
    return sorted(set(heads))


def show_figure(
    fig: go.Figure,
    *,
    key: str,
    name: str | None = None,
    on_heads: Callable[[list[Head]], None] | None = None,
    selection_mode: str | tuple[str, ...] = ALL_SELECTIONS,
    linked: bool = False,
) -> None:
    """Show ``fig`` under ``key``; with ``name``, download buttons below it (keys ``<key>-html`` ...).

    A chart with ``on_heads`` calls it with the heads a user clicks or selects; selectable and
    ``linked`` charts are keyed by the view version, so they redraw from the state after a change.
    """
    if on_heads is None:
        st.plotly_chart(fig, key=view_key(key) if linked else key, config=CHART_CONFIG if linked else PLAIN_CONFIG)
    else:
        chart_key = view_key(key)

        def changed() -> None:
            if chart_key != view_key(key):
                return  # an event of a chart drawn before the last change (a fragment rerun can leave it registered)
            heads = heads_from_event(st.session_state.get(chart_key))
            if heads is not None:
                on_heads(heads)

        st.plotly_chart(fig, key=chart_key, on_select=changed, selection_mode=selection_mode, config=CHART_CONFIG)
    if name is not None:
        figure_download(fig, name, f"{key}-html")


def image_export_available() -> bool:
    """Whether Plotly can write PNG/SVG here (needs the ``kaleido`` package and a Chrome/Chromium)."""
    return importlib.util.find_spec("kaleido") is not None


def figure_download(fig: go.Figure, name: str, key: str) -> None:
    """Buttons downloading ``fig`` as standalone HTML (plotly.js embedded, works offline), and PNG/SVG when kaleido is installed."""
    with st.container(horizontal=True, gap="small"):
        st.download_button(
            "HTML",
            data=lambda: fig.to_html(include_plotlyjs=True, full_html=True),
            file_name=f"{name}.html",
            mime="text/html",
            key=key,
            on_click="ignore",
            icon=":material/download:",
            type="tertiary",
            help="The interactive figure as one HTML file",
        )
        if image_export_available():
            for fmt, mime in (("png", "image/png"), ("svg", "image/svg+xml")):
                st.download_button(
                    fmt.upper(),
                    data=lambda fmt=fmt: fig.to_image(
                        format=fmt, width=1200, height=fig.layout.height or 500, scale=2 if fmt == "png" else 1
                    ),
                    file_name=f"{name}.{fmt}",
                    mime=mime,
                    key=f"{key}-{fmt}",
                    on_click="ignore",
                    icon=":material/image:",
                    type="tertiary",
                )
