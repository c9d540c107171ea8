"""Plotly views shared by the pages: the head grid, the score scatter and the head map.

Streamlit picks the drag mode of selectable charts: clicking selects a point; box and lasso
selection are in each chart's toolbar (while one of them is active, clicks do not select).

Figure builders are pure (arrays in, ``go.Figure`` out). ``draw_*`` functions put a figure on the
page with a ``key`` prefix (so a view can appear twice) and report the heads a user clicked or
selected through a callback.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from pages.common import Head, view_key

SELECT_COLOR = "#ff0090"
PRUNED_COLOR = "#262730"
ROLE_NAMES = ("none", "local", "delimiter", "syntactic", "block", "several")
ROLE_COLORS = ("#e8e8e8", "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b")
KEPT_COLORS = ("#3a7dc9", "#e3e3e3")
CHART_CONFIG = {"displaylogo": False, "modeBarButtonsToRemove": ["autoScale2d", "toImage"]}


def flat_to_head(flat: int, num_heads: int) -> Head:
    return int(flat) // num_heads, int(flat) % num_heads


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


def role_categories(assigned: np.ndarray) -> np.ndarray:
    """Category index per head in :data:`ROLE_NAMES`: its one role, 'none' or 'several'."""
    count = assigned.sum(-1)
    first = assigned.argmax(-1) + 1
    return np.where(count == 0, 0, np.where(count == 1, first, len(ROLE_NAMES) - 1)).astype(float)


def _cell_px(num_layers: int) -> int:
    return 34 if num_layers <= 12 else max(16, 400 // num_layers)


def grid_height(num_layers: int) -> int:
    return 90 + _cell_px(num_layers) * num_layers


def grid_figure(
    values: np.ndarray,
    *,
    title: str = "",
    colorscale: str | list = "Viridis",
    value_name: str = "value",
    categories: Sequence[str] | None = None,
    category_colors: Sequence[str] | None = None,
    pruned: np.ndarray | None = None,
    selected: set[Head] | None = None,
    hover: np.ndarray | None = None,
    zrange: tuple[float, float] | None = None,
    reverse: bool = False,
) -> go.Figure:
    """Layers x heads heatmap (layer 0 at the bottom), pruned heads crossed out, selected heads outlined.

    A transparent marker over every cell carries ``customdata`` = [layer, head] so that clicks and
    box/lasso selections report heads.
    """
    layers, heads = values.shape
    cell = _cell_px(layers)
    z = values.astype(float)
    heatmap: dict = {"z": z, "x": list(range(heads)), "y": list(range(layers)), "hoverinfo": "skip", "xgap": 2, "ygap": 2}
    if categories is not None:
        colors = category_colors or ROLE_COLORS
        n = len(categories)
        scale = []
        for i, color in enumerate(colors[:n]):
            scale += [[i / n, color], [(i + 1) / n, color]]
        heatmap.update(
            colorscale=scale,
            zmin=-0.5,
            zmax=n - 0.5,
            colorbar={"tickvals": list(range(n)), "ticktext": list(categories), "thickness": 12, "len": 1.0},
        )
        shown = np.asarray(categories, dtype=object)[np.nan_to_num(z, nan=0).astype(int)]
    else:
        heatmap.update(
            colorscale=colorscale, reversescale=reverse, colorbar={"title": {"text": value_name, "side": "right"}, "thickness": 12}
        )
        if zrange is not None:
            heatmap.update(zmin=zrange[0], zmax=zrange[1])
        shown = np.vectorize(lambda v: "n/a" if not np.isfinite(v) else f"{v:.3f}")(z)
    fig = go.Figure(go.Heatmap(**heatmap))
    ys, xs = np.meshgrid(range(layers), range(heads), indexing="ij")
    text = [f"head {ly}.{hd}<br>{value_name}: {shown[ly, hd]}" for ly, hd in zip(ys.ravel(), xs.ravel())]
    if pruned is not None:
        text = [t + ("<br><b>pruned</b>" if pruned[ly, hd] else "") for t, ly, hd in zip(text, ys.ravel(), xs.ravel())]
    if hover is not None:
        text = [t + f"<br>{extra}" for t, extra in zip(text, np.asarray(hover).ravel())]
    fig.add_trace(
        go.Scatter(
            x=xs.ravel(),
            y=ys.ravel(),
            mode="markers",
            marker={"symbol": "square", "size": cell, "color": "rgba(0,0,0,0)"},
            customdata=np.column_stack([ys.ravel(), xs.ravel()]),
            hovertext=text,
            hovertemplate="%{hovertext}<extra></extra>",
            selected={"marker": {"opacity": 1}},
            unselected={"marker": {"opacity": 1}},
            showlegend=False,
            name="heads",
        )
    )
    if pruned is not None and pruned.any():
        py, px_ = np.nonzero(pruned)
        fig.add_trace(
            go.Scatter(
                x=px_,
                y=py,
                mode="markers",
                marker={"symbol": "x-thin", "size": cell * 0.55, "line": {"width": 2.5, "color": PRUNED_COLOR}},
                hoverinfo="skip",
                showlegend=False,
                selected={"marker": {"opacity": 1}},
                unselected={"marker": {"opacity": 1}},
                name="pruned",
            )
        )
    if selected:
        sy, sx = zip(*sorted(selected))
        fig.add_trace(
            go.Scatter(
                x=sx,
                y=sy,
                mode="markers",
                marker={"symbol": "square-open", "size": cell - 2, "color": SELECT_COLOR, "line": {"width": 4, "color": SELECT_COLOR}},
                hoverinfo="skip",
                showlegend=False,
                selected={"marker": {"opacity": 1}},
                unselected={"marker": {"opacity": 1}},
                name="selected",
            )
        )
    fig.update_layout(
        title={"text": title, "font": {"size": 14}} if title else None,
        height=grid_height(layers),
        margin={"l": 50, "r": 10, "t": 30 if title else 10, "b": 40},
        hovermode="closest",
        plot_bgcolor="white",
    )
    fig.update_xaxes(title_text="head", dtick=1, range=[-0.5, heads - 0.5], showgrid=False, zeroline=False, fixedrange=True)
    fig.update_yaxes(title_text="layer", dtick=1, range=[-0.5, layers - 0.5], showgrid=False, zeroline=False, fixedrange=True)
    return fig


def points_figure(
    x: np.ndarray,
    y: np.ndarray,
    *,
    x_title: str,
    y_title: str,
    color: np.ndarray,
    color_title: str,
    num_heads: int,
    pruned: np.ndarray | None = None,
    selected: set[Head] | None = None,
    title: str = "",
    colorscale: str = "Viridis",
    height: int = 380,
) -> go.Figure:
    """One marker per head (flat layer-major order), selected heads shown as selected, pruned ones as crosses."""
    flat = np.arange(len(x))
    layers, heads = flat // num_heads, flat % num_heads
    ok = np.isfinite(x) & np.isfinite(y)
    pruned_flat = pruned.ravel() if pruned is not None else np.zeros(len(x), dtype=bool)
    symbols = np.where(pruned_flat, "x", "circle")[ok]
    labels = [f"{ly}.{hd}" for ly, hd in zip(layers, heads)]
    text = [
        f"head {labels[i]}<br>{x_title}: {x[i]:.3f}<br>{y_title}: {y[i]:.3f}<br>{color_title}: {color[i]:.3f}"
        + ("<br><b>pruned</b>" if pruned_flat[i] else "")
        for i in flat[ok]
    ]
    index = {int(f): position for position, f in enumerate(flat[ok])}
    chosen = [index[h[0] * num_heads + h[1]] for h in (selected or set()) if h[0] * num_heads + h[1] in index]
    fig = go.Figure(
        go.Scatter(
            x=x[ok],
            y=y[ok],
            mode="markers",
            marker={
                "color": color[ok],
                "colorscale": colorscale,
                "size": 11,
                "symbol": symbols,
                "line": {"width": 1, "color": "white"},
                "colorbar": {"title": {"text": color_title, "side": "right"}, "thickness": 12},
            },
            customdata=np.column_stack([layers[ok], heads[ok]]),
            hovertext=text,
            hovertemplate="%{hovertext}<extra></extra>",
            selectedpoints=sorted(chosen) if selected else None,
            selected={"marker": {"size": 15, "opacity": 1, "color": SELECT_COLOR}},
            unselected={"marker": {"opacity": 0.35}},
            showlegend=False,
            name="heads",
        )
    )
    fig.update_layout(
        title={"text": title, "font": {"size": 14}} if title else None,
        height=height,
        margin={"l": 50, "r": 10, "t": 30 if title else 10, "b": 40},
        hovermode="closest",
    )
    fig.update_xaxes(title_text=x_title)
    fig.update_yaxes(title_text=y_title)
    return fig


def draw_chart(
    fig: go.Figure,
    key: str,
    on_heads: Callable[[list[Head]], None] | None = None,
    selection_mode: str | tuple[str, ...] = ("points", "box", "lasso"),
) -> None:
    """Show ``fig``; when ``on_heads`` is given, call it with the heads a user clicks or selects."""
    chart_key = view_key(key)
    if on_heads is None:
        st.plotly_chart(fig, key=chart_key, config=CHART_CONFIG)
        return

    def changed() -> None:
        heads = heads_from_event(st.session_state.get(chart_key))
        if heads is not None:
            on_heads(heads)

    st.plotly_chart(fig, key=chart_key, on_select=changed, selection_mode=selection_mode, config=CHART_CONFIG)


def image_export_available() -> bool:
    """Whether Plotly can write PNG/SVG here (needs the ``kaleido`` package and a Chrome/Chromium)."""
    import importlib.util

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


def label_positions(xs: np.ndarray, ys: np.ndarray) -> list[str]:
    """Above or below each point: of two nearest neighbours the higher one is labelled above and
    the lower one below, so labels of close points do not overlap."""
    if len(xs) < 2:
        return ["top center"] * len(xs)
    nx = (xs - xs.min()) / max(float(np.ptp(xs)), 1e-12)
    ny = (ys - ys.min()) / max(float(np.ptp(ys)), 1e-12)
    positions = []
    for i in range(len(xs)):
        distance = np.hypot(nx - nx[i], ny - ny[i])
        distance[i] = np.inf
        j = int(np.argmin(distance))
        above = ys[i] > ys[j] or (ys[i] == ys[j] and i < j)
        positions.append("top center" if above else "bottom center")
    return positions
