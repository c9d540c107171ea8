"""Compensation after recovery: each kept head's importance before and after the fine-tune on the
head grid (pruned heads crossed out, one colour scale for both), and a histogram of the change."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from app.views.figure import show_figure
from app.views.head_grid import grid_figure
from pruning_core.recovery import Compensation


def importance_grids(compensation: Compensation) -> tuple[go.Figure, go.Figure]:
    """The raw importance (comparable across the two models) before and after recovery, on one colour scale."""
    before, after = compensation.raw_before, compensation.raw_after
    finite = np.concatenate([before[np.isfinite(before)], after[np.isfinite(after)]])
    top = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
    pruned = ~np.isfinite(before)
    change = np.vectorize(lambda v: "" if not np.isfinite(v) else f"change: {v:+.4f}")(compensation.change)
    return tuple(
        grid_figure(values, title=title, value_name="importance", pruned=pruned, hover=change, zrange=(0.0, top))
        for values, title in ((before, "Importance before recovery"), (after, "Importance after recovery"))
    )


def change_histogram(compensation: Compensation) -> go.Figure:
    """How many kept heads gained or lost importance, and by how much."""
    change = compensation.change
    values = change[np.isfinite(change)]
    fig = go.Figure(go.Histogram(x=values, nbinsx=20, marker={"color": "#4c78a8"}, name="kept heads"))
    fig.add_vline(x=0, line={"dash": "dot", "color": "#666"})
    fig.update_layout(
        title={"text": "Change of importance (after − before)", "font": {"size": 14}},
        xaxis_title="importance after − before",
        yaxis_title="kept heads",
        height=300,
        margin={"l": 50, "r": 10, "t": 40, "b": 40},
        bargap=0.05,
    )
    tallest = int(np.histogram(values, bins=20)[0].max()) if values.size else 1
    fig.update_yaxes(tick0=0, dtick=max(1, -(-tallest // 5)), rangemode="tozero")
    return fig


def visualize_compensation(compensation: Compensation, *, key: str) -> None:
    """Draw the kept heads' importance before and after recovery, and the histogram of the change."""
    before, after = importance_grids(compensation)
    left, middle, right = st.columns(3, gap="medium")
    with left:
        show_figure(before, key=f"{key}-before")
    with middle:
        show_figure(after, key=f"{key}-after")
    with right:
        show_figure(change_histogram(compensation), key=f"{key}-change", name="compensation")
    summary = compensation.to_dict()["summary"]
    if summary["kept_heads"]:
        st.text(
            f"{summary['kept_heads']} kept heads: mean change {summary['mean_change']:+.4f} (std {summary['std_change']:.4f}); "
            f"{summary['share_increased']:.0%} gained importance. Importance on the calibration set — {compensation.data}."
        )
