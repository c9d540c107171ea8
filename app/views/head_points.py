"""One marker per head on two criteria (the score scatter, the 2-D head map); selected heads
highlighted, pruned ones as crosses."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from app.keys import Head
from app.views.style import SELECT_COLOR


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
