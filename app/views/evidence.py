"""How trustworthy the head evidence is: redundant pairs drawn on the head map, each criterion's
spread over the heads, and importance with its standard error."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from app.views.style import PALETTE

PAIR_COLOR = "#e4572e"


def add_pair_lines(fig: go.Figure, coords: np.ndarray, pairs: list[dict], num_heads: int) -> go.Figure:
    """Draw a line between the two heads of every redundant pair on a head map (``coords``: one
    row per head in layer-major order), solid when each is the other's most similar head."""
    for mutual in (True, False):
        xs: list[float | None] = []
        ys: list[float | None] = []
        for pair in (p for p in pairs if p["mutual"] == mutual):
            for layer, head in (pair["a"], pair["b"]):
                xs.append(float(coords[layer * num_heads + head, 0]))
                ys.append(float(coords[layer * num_heads + head, 1]))
            xs.append(None)
            ys.append(None)
        if xs:
            fig.add_scatter(
                x=xs,
                y=ys,
                mode="lines",
                line={"color": PAIR_COLOR, "width": 1.5, "dash": "solid" if mutual else "dot"},
                hoverinfo="skip",
                name="redundant pairs" if mutual else "redundant pairs (one-sided)",
                showlegend=False,
            )
    return fig


def spread_figure(criteria: dict[str, np.ndarray], titles: dict[str, str], height: int = 300) -> go.Figure:
    """One box plot (every head a point) per criterion, each on its own axis."""
    names = [name for name in criteria if np.isfinite(criteria[name]).any()]
    fig = make_subplots(rows=1, cols=max(len(names), 1), subplot_titles=[titles.get(n, n) for n in names], horizontal_spacing=0.06)
    for index, name in enumerate(names):
        values = criteria[name].ravel()
        values = values[np.isfinite(values)]
        fig.add_trace(
            go.Box(
                y=values,
                name=titles.get(name, name),
                boxpoints="all",
                jitter=0.4,
                pointpos=0,
                marker={"size": 4, "color": PALETTE[index % len(PALETTE)]},
                line={"width": 1},
                showlegend=False,
            ),
            row=1,
            col=index + 1,
        )
    fig.update_xaxes(showticklabels=False)
    fig.update_annotations(font_size=12)
    fig.update_layout(height=height, margin={"l": 40, "r": 10, "t": 40, "b": 20})
    return fig


def importance_errors_figure(importance: np.ndarray, stderr: np.ndarray, num_heads: int, height: int = 300) -> go.Figure:
    """Importance of every head ± its standard error over the calibration examples, least important first."""
    flat, errors = importance.ravel(), stderr.ravel()
    present = np.flatnonzero(np.isfinite(flat))
    order = present[np.argsort(flat[present], kind="stable")]
    labels = [f"{i // num_heads}.{i % num_heads}" for i in order]
    fig = go.Figure(
        go.Scatter(
            x=list(range(len(order))),
            y=flat[order],
            mode="markers",
            marker={"size": 5, "color": PALETTE[0]},
            error_y={"type": "data", "array": np.nan_to_num(errors[order]), "visible": True, "thickness": 1, "width": 0},
            hovertext=labels,
            hovertemplate="head %{hovertext}<br>importance %{y:.4f} ± %{error_y.array:.4f}<extra></extra>",
            name="importance ± stderr",
            showlegend=False,
        )
    )
    fig.update_layout(height=height, margin={"l": 50, "r": 10, "t": 10, "b": 40})
    fig.update_xaxes(title_text="heads, least important first")
    fig.update_yaxes(title_text="importance (layer-normalised)")
    return fig
