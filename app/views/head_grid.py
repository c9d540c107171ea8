"""The head grid: a layers x heads heatmap (layer 0 at the bottom), pruned heads crossed out,
selected heads outlined; every cell reports its head when clicked or box-selected."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from app.keys import Head
from app.views.figure import show_figure
from app.views.style import KEPT_COLORS, PRUNED_COLOR, ROLE_COLORS, ROLE_NAMES, SELECT_COLOR


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


def kept_figure(pruned: np.ndarray, selected: set[Head] | None = None) -> go.Figure:
    """The grid coloured kept / pruned."""
    return grid_figure(
        pruned.astype(float),
        categories=("kept", "pruned"),
        category_colors=KEPT_COLORS,
        value_name="state",
        pruned=pruned,
        selected=selected,
    )


def visualize_head_grid(fig: go.Figure, *, key: str, **options) -> None:
    """Draw a grid figure keyed by the view version (see :func:`show_figure` for ``options``: ``name``,
    ``on_heads``, ``selection_mode``); clicks and selections report heads through ``on_heads``."""
    show_figure(fig, key=key, linked=True, **options)
