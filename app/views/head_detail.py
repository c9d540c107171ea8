"""One head in detail: where its attention goes (profile against the mean of all heads), and the
distribution of its rows' normalised entropy."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from app.views.style import SELECT_COLOR


def profile_figure(categories: Sequence[str], profile: np.ndarray, mean_profile: np.ndarray, head_name: str) -> go.Figure:
    """Bars: the head's share of attention per key category; markers: the mean over all heads."""
    fig = go.Figure()
    fig.add_bar(x=list(categories), y=profile, name=f"head {head_name}", marker_color=SELECT_COLOR)
    fig.add_scatter(
        x=list(categories),
        y=mean_profile,
        mode="markers",
        marker={"symbol": "line-ew", "size": 30, "line": {"width": 3, "color": "#333"}},
        name="mean of all heads",
    )
    fig.update_layout(
        title={"text": "Attention profile: where its attention goes", "font": {"size": 14}},
        height=300,
        margin={"l": 40, "r": 10, "t": 40, "b": 30},
        yaxis_title="share of attention",
        legend={"orientation": "h", "y": -0.2},
    )
    return fig


def entropy_figure(hist: np.ndarray) -> go.Figure:
    """Share of attention rows per bin of entropy / ln n over [0, 1]."""
    bins = len(hist)
    edges = np.linspace(0, 1, bins + 1)
    fig = go.Figure(go.Bar(x=(edges[:-1] + edges[1:]) / 2, y=hist / max(hist.sum(), 1), width=1 / bins, marker_color="#4c78a8"))
    fig.update_layout(
        title={"text": "Row entropy / ln n: 0 = one token, 1 = uniform", "font": {"size": 14}},
        height=300,
        margin={"l": 40, "r": 10, "t": 40, "b": 30},
        xaxis={"range": [0, 1], "title": "normalised entropy"},
        yaxis_title="share of rows",
    )
    return fig
