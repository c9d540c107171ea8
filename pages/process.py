"""Pruning process: how does accuracy fall as heads go?

Every strategy's curve on one chart (random as a mean line with a min-max band), knee markers, and
a step slider showing on small grids which heads each strategy has removed at that step.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from pages.common import (
    Head,
    known_curves,
    page_bundle,
    page_context,
    pruning_curves,
    run_from_app,
    set_scheme,
    set_scheme_b,
    show_error,
)
from pages.views import KEPT_COLORS, figure_download
from pruning_core import BhpvasError
from pruning_core.curves import DEFAULT_STRATEGIES, Curves
from pruning_core.strategies import REGISTRY

run_from_app()

METRICS = {"accuracy": "accuracy", "loss": "loss", "agreement": "agreement with the full model"}
PALETTE = ("#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2", "#ff9da6", "#9d755d", "#bab0ac", "#eeca3b", "#222222")
KNEE_POINTS = 1


def curves_figure(curves: Curves, names: list[str], metric: str, step: int) -> go.Figure:
    """Metric against heads pruned: one line per strategy, random as mean with a min-max band, knees starred."""
    fig = go.Figure()
    total = curves.num_layers * curves.num_heads
    for index, name in enumerate(names):
        curve = curves.curves[name]
        colour = PALETTE[index % len(PALETTE)]
        mean = curve.mean(metric)
        if len(curve.orders) > 1:
            low, high = curve.band(metric)
            fig.add_scatter(x=curve.ks, y=high, mode="lines", line={"width": 0}, showlegend=False, hoverinfo="skip", legendgroup=name)
            fig.add_scatter(
                x=curve.ks,
                y=low,
                mode="lines",
                line={"width": 0},
                fill="tonexty",
                fillcolor="rgba(120,120,120,0.2)",
                name=f"{curve.label} (min-max of {len(curve.orders)} seeds)",
                hoverinfo="skip",
                legendgroup=name,
            )
        fig.add_scatter(
            x=curve.ks,
            y=mean,
            mode="lines+markers",
            marker={"size": 5},
            line={"color": colour, "width": 2, "dash": "dash" if len(curve.orders) > 1 else "solid"},
            name=curve.label,
            legendgroup=name,
            hovertemplate=f"{curve.label}<br>%{{x}} heads pruned<br>{metric}: %{{y:.4f}}<extra></extra>",
        )
        if metric == "accuracy":
            knee = curve.knee(curves.full_accuracy, KNEE_POINTS / 100)
            fig.add_scatter(
                x=[knee],
                y=[mean[curve.ks.index(knee)]],
                mode="markers",
                marker={"symbol": "star", "size": 15, "color": colour, "line": {"width": 1, "color": "white"}},
                showlegend=False,
                legendgroup=name,
                hovertemplate=f"{curve.label} knee: %{{x}} heads within {KNEE_POINTS} point<extra></extra>",
            )
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
        legend={"orientation": "v", "x": 1.01, "y": 1},
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


def load_point(heads: list[Head], as_b: bool) -> None:
    if as_b:
        set_scheme_b(heads)
    else:
        set_scheme(heads)


st.title("Pruning process", anchor=False)
st.caption(
    "How does accuracy fall as heads go? Each strategy prunes heads in its own order; "
    "the curves show the metric after each step, the stars the most heads prunable within one accuracy point."
)
ctx = page_context()
bundle = page_bundle(ctx)
curves = known_curves(ctx.lm, ctx.dataset)
if curves is None:
    total = ctx.shape[0] * ctx.shape[1]
    st.info(
        f"The curves evaluate the model after every 10% of the {total} heads, for each strategy (random with 5 seeds). "
        "Michel iterative recomputes importance after every step and differentiable subset pruning trains first; "
        "on the demo all of them take several minutes on a CPU the first time, afterwards they are read from the cache."
    )
    chosen = st.multiselect(
        "Strategies to compute",
        list(DEFAULT_STRATEGIES),
        default=list(DEFAULT_STRATEGIES),
        format_func=lambda n: REGISTRY[n].label if n in REGISTRY else n,
        key="process-compute-strategies",
    )
    if st.button("Compute the pruning curves", type="primary", key="process-compute", icon=":material/play_arrow:", disabled=not chosen):
        try:
            pruning_curves(ctx.lm, ctx.dataset, bundle, chosen)
        except BhpvasError as exc:
            show_error(exc)
            st.stop()
        st.rerun()
    st.stop()

names_all = list(curves.curves)
controls = st.columns([2, 5])
metric = controls[0].segmented_control("Metric", list(METRICS), default="accuracy", key="process-metric") or "accuracy"
names = controls[1].multiselect(
    "Strategies",
    names_all,
    default=names_all,
    format_func=lambda n: curves.curves[n].label,
    key="process-strategies",
)
if not names:
    st.warning("Choose at least one strategy.")
    st.stop()
steps = sorted({k for name in names for k in curves.curves[name].ks})
shared = sorted(set.intersection(*(set(curves.curves[name].ks) for name in names)))
step = st.select_slider(
    "Step: heads pruned so far",
    options=steps,
    value=shared[len(shared) // 2],
    key="process-step",
    help="Steps every 10% of the heads are evaluated for every strategy; the extra steps refine a strategy's knee.",
)

fig = curves_figure(curves, names, metric, step)
st.plotly_chart(fig, key="process-curves", config={"displaylogo": False})
figure_download(fig, f"pruning-curves-{metric}", "process-curves-html")

st.subheader(f"Which heads are gone once {step} are pruned", anchor=False)
grids = step_grids(curves, names, step)
st.plotly_chart(grids, key="process-grids", config={"displaylogo": False})
st.caption("Blue: kept; grey: pruned. Layer 0 at the bottom of each grid. Random shows its first seed.")

left, right = st.columns([3, 2], gap="large")
with left:
    st.markdown("**Load a point**")
    chosen = st.selectbox("Strategy", names, format_func=lambda n: curves.curves[n].label, key="process-load-strategy")
    heads = curves.curves[chosen].pruned_at(step)
    st.caption(f"{curves.curves[chosen].description} At the step above it prunes {len(heads)} heads.")
    buttons = st.columns(2)
    buttons[0].button(
        "Make it the current scheme",
        key="process-load",
        type="primary",
        on_click=load_point,
        args=(heads, False),
        disabled=set(heads) == ctx.scheme.pruned,
    )
    buttons[1].button("…or scheme B on the Scheme page", key="process-load-b", on_click=load_point, args=(heads, True))
with right:
    st.markdown("**Knees**: most heads prunable within 1 and 3 accuracy points")
    table = [
        {
            "strategy": row["label"],
            "≤1 pt": row["k_1pt"],
            "acc.": 100 * row["accuracy_1pt"],
            "≤3 pt": row["k_3pt"],
            "acc. ": 100 * row["accuracy_3pt"],
        }
        for row in curves.knee_table()
        if row["strategy"] in names
    ]
    st.dataframe(
        table,
        hide_index=True,
        width="stretch",
        column_config={
            "acc.": st.column_config.NumberColumn(format="%.2f%%"),
            "acc. ": st.column_config.NumberColumn(format="%.2f%%"),
        },
    )
