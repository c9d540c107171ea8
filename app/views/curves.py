"""Pruning curves: the metric against heads pruned, one line per strategy (random as a mean with a
min-max band), accuracy with each strategy's 95% band (the paired-bootstrap interval of its change
against the full model, added to the full model's accuracy), knees starred, and optionally each
strategy's "+ repair" curve beside its plain one; and small grids of which heads each strategy has
removed at a step."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from app.views.style import KEPT_COLORS, PALETTE
from pruning_core.curves import Curves, StrategyCurve

METRICS = {"accuracy": "accuracy", "loss": "loss", "agreement": "agreement with the full model"}
KNEE_POINTS = 1
REPAIRED_LEGEND = "dashed ☆: plain · solid ★: + repair"


def rgba(colour: str, alpha: float) -> str:
    """``#rrggbb`` as a CSS rgba() with ``alpha``."""
    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def add_band(
    fig: go.Figure, x: list[int], low: np.ndarray, high: np.ndarray, fill: str, name: str, group: str, legend: bool = True
) -> None:
    """A filled band between ``low`` and ``high`` (two traces: the upper edge, then the lower edge filled up to it)."""
    fig.add_scatter(x=x, y=high, mode="lines", line={"width": 0}, showlegend=False, hoverinfo="skip", legendgroup=group, name=name)
    fig.add_scatter(
        x=x,
        y=low,
        mode="lines",
        line={"width": 0},
        fill="tonexty",
        fillcolor=fill,
        name=name,
        hoverinfo="skip",
        legendgroup=group,
        showlegend=legend,
    )


def add_curve(
    fig: go.Figure,
    curves: Curves,
    curve: StrategyCurve,
    metric: str,
    colour: str,
    group: str,
    dash: str,
    interval: bool = True,
    star: str = "star",
) -> None:
    """One strategy's line in ``colour``: on accuracy with its 95% band (when ``interval``), else a
    multi-run strategy with its min-max band; the 1-point knee as a ``star`` marker."""
    mean = curve.mean(metric)
    if interval and metric == "accuracy" and curve.delta_low is not None and curve.delta_high is not None:
        run = curve.representative
        low, high = curves.full_accuracy + curve.delta_low[run], curves.full_accuracy + curve.delta_high[run]
        add_band(fig, curve.ks, low, high, rgba(colour, 0.15), f"{curve.label} 95% interval", group, legend=False)
    elif len(curve.orders) > 1:
        low, high = curve.band(metric)
        add_band(fig, curve.ks, low, high, "rgba(120,120,120,0.2)", f"{curve.label} (min-max of {len(curve.orders)} seeds)", group)
    fig.add_scatter(
        x=curve.ks,
        y=mean,
        mode="lines+markers",
        marker={"size": 5},
        line={"color": colour, "width": 2, "dash": dash},
        name=curve.label,
        legendgroup=group,
        hovertemplate=f"{curve.label}<br>%{{x}} heads pruned<br>{metric}: %{{y:.4f}}<extra></extra>",
    )
    if metric == "accuracy":
        knee = curve.knee(curves.full_accuracy, KNEE_POINTS / 100)
        fig.add_scatter(
            x=[knee],
            y=[mean[curve.ks.index(knee)]],
            mode="markers",
            marker={
                "symbol": star,
                "size": 15,
                "color": colour,
                "line": {"width": 1, "color": colour if star.endswith("open") else "white"},
            },
            name=f"{curve.label} knee",
            showlegend=False,
            legendgroup=group,
            hovertemplate=f"{curve.label} knee: %{{x}} heads within {KNEE_POINTS} point<extra></extra>",
        )


def curves_figure(curves: Curves, names: list[str], metric: str, step: int, repaired: dict[str, StrategyCurve] | None = None) -> go.Figure:
    """Metric against heads pruned: one line per strategy, random as mean with a min-max band, knees starred.

    With ``repaired`` curves (plain strategy name -> its "+ repair" curve): every plain line dashed
    with an open star and no 95% band (random keeps its min-max seed band), each repaired line
    solid in the same colour with its 95% band and a filled star.
    """
    fig = go.Figure()
    total = curves.num_layers * curves.num_heads
    for index, name in enumerate(names):
        curve = curves.curves[name]
        colour = PALETTE[index % len(PALETTE)]
        if repaired is None:
            add_curve(fig, curves, curve, metric, colour, name, "dash" if len(curve.orders) > 1 else "solid")
            continue
        add_curve(fig, curves, curve, metric, colour, name, "dash", interval=False, star="star-open")
        if name in repaired:
            add_curve(fig, curves, repaired[name], metric, colour, f"{name}+repair", "solid")
    if metric == "accuracy":
        fig.add_hline(
            y=curves.full_accuracy, line={"color": "#333", "width": 1}, annotation_text="full model", annotation_position="top right"
        )
        fig.add_hline(
            y=curves.full_accuracy - KNEE_POINTS / 100,
            line={"color": "#999", "width": 1, "dash": "dot"},
            annotation_text=f"−{KNEE_POINTS} point",
            annotation_position="bottom right",
        )
    fig.add_vline(x=step, line={"color": "#ff0090", "width": 2}, annotation_text=f"step: {step} heads", annotation_position="top left")
    fig.update_layout(
        height=480,
        margin={"l": 50, "r": 10, "t": 30, "b": 40},
        xaxis={"title": "heads pruned", "range": [-0.5, total + 0.5]},
        yaxis={"title": METRICS[metric], "tickformat": ".0%" if metric != "loss" else None},
        legend={"orientation": "v", "x": 1.01, "y": 1, "title": {"text": REPAIRED_LEGEND if repaired is not None else ""}},
        hovermode="closest",
    )
    return fig


def step_grids(curves: Curves, names: list[str], step: int, columns: int = 4) -> go.Figure:
    """Small kept/pruned grids: which heads each strategy has removed after ``step`` heads."""
    rows = -(-len(names) // columns)
    titles = []
    for name in names:
        curve = curves.curves[name]
        value = f" · acc {curve.mean()[curve.ks.index(step)]:.1%}" if step in curve.ks else ""
        titles.append(f"{curve.label}{value}")
    fig = make_subplots(rows=rows, cols=columns, subplot_titles=titles, horizontal_spacing=0.03, vertical_spacing=0.12)
    layers, heads = curves.num_layers, curves.num_heads
    for index, name in enumerate(names):
        pruned = np.zeros((layers, heads))
        for layer, head in curves.curves[name].pruned_at(step):
            pruned[layer, head] = 1
        fig.add_trace(
            go.Heatmap(
                z=pruned,
                zmin=0,
                zmax=1,
                colorscale=[[0, KEPT_COLORS[0]], [1, KEPT_COLORS[1]]],
                showscale=False,
                xgap=1,
                ygap=1,
                hovertemplate="head %{y}.%{x}<extra></extra>",
            ),
            row=index // columns + 1,
            col=index % columns + 1,
        )
    fig.update_xaxes(showticklabels=False, fixedrange=True)
    fig.update_yaxes(showticklabels=False, fixedrange=True)
    fig.update_annotations(font_size=12)
    fig.update_layout(height=40 + rows * (60 + 16 * layers), margin={"l": 10, "r": 10, "t": 40, "b": 10})
    return fig
