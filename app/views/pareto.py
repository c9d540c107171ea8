"""Accuracy against size: the compared schemes (A repaired and recovered at A's size, when done),
the frontier of those not beaten on both axes, and the strategies' curves in grey."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

Line = tuple[str, list[float], list[float]]


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


def pareto_figure(rows: list[dict], x_name: str, lines: list[Line] = ()) -> go.Figure:
    """Accuracy against size: the listed schemes, the frontier of those not beaten on both axes, and strategy curves."""
    xs = np.asarray([r[x_name] for r in rows], dtype=float)
    ys = np.asarray([r["accuracy"] for r in rows], dtype=float)
    frontier = [
        i
        for i in range(len(rows))
        if not any(xs[j] <= xs[i] and ys[j] >= ys[i] and (xs[j], ys[j]) != (xs[i], ys[i]) for j in range(len(rows)))
    ]
    frontier.sort(key=lambda i: xs[i])
    fig = go.Figure()
    for label, line_x, line_y in lines:
        fig.add_scatter(
            x=line_x,
            y=line_y,
            mode="lines",
            line={"width": 1, "color": "#9aa4b1"},
            opacity=0.6,
            name=label,
            hovertemplate=f"{label}<br>{x_name}: %{{x:.1f}}<br>accuracy: %{{y:.2%}}<extra></extra>",
        )
    fig.add_scatter(
        x=xs[frontier], y=ys[frontier], mode="lines", line={"dash": "dot", "color": "#999"}, name="Pareto frontier", hoverinfo="skip"
    )
    colours = {
        "full model": "#333",
        "A (current)": "#e45756",
        "A + repair": "#f58518",
        "A + repair + recovery": "#b279a2",
        "B": "#4c78a8",
        "proposal": "#54a24b",
    }
    positions = label_positions(xs, ys)
    for row, x, y, position in zip(rows, xs, ys, positions):
        fig.add_scatter(
            x=[x],
            y=[y],
            mode="markers+text",
            text=[row["scheme"]],
            textposition=position,
            marker={"size": 14, "color": colours.get(row["scheme"], "#888")},
            name=row["scheme"],
            hovertemplate=f"{row['scheme']}<br>{x_name}: %{{x:.1f}}<br>accuracy: %{{y:.2%}}<extra></extra>",
        )
    span = max(xs.max() - xs.min(), 1.0)
    low_y = min(ys.min(), min((min(y) for _, _, y in lines), default=ys.min()))
    fig.update_layout(
        height=380,
        margin={"l": 50, "r": 10, "t": 30, "b": 40},
        xaxis={
            "title": x_name + (" (of the full model)" if x_name == "MACs %" else ""),
            "range": [xs.min() - 0.15 * span, xs.max() + 0.15 * span],
        },
        yaxis={"title": "accuracy", "tickformat": ".1%", "range": [max(low_y, ys.min() - 0.05) - 0.003, ys.max() + 0.004]},
        showlegend=False,
        title={
            "text": "Accuracy vs size: up-left is better" + (" (grey: strategies)" if lines else ""),
            "font": {"size": 14},
        },
    )
    return fig
