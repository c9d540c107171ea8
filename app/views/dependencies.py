"""One head on one sentence: dependency arcs above the words mirrored against the head's attention
arcs below; its per-relation dependency alignment; its attention-weight distribution."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from app.keys import Head, head_label
from app.plain import escape_html
from app.views.style import SELECT_COLOR
from pruning_core.analysis import AnalysisBundle
from pruning_core.roles import DIRECTIONS, RELATIONS

DEP_COLOR = "#6c6c6c"
ATTN_COLOR = "#1f77b4"
MATCH_COLOR = "#2ca02c"


def _arc(x0: float, x1: float, up: bool, points: int = 24) -> tuple[np.ndarray, np.ndarray]:
    """A half-ellipse from x0 to x1 whose height grows with the distance."""
    t = np.linspace(0, np.pi, points)
    centre, radius = (x0 + x1) / 2, (x1 - x0) / 2
    height = 0.35 + 0.22 * abs(x1 - x0)
    y = np.sin(t) * height * (1 if up else -1)
    return centre - radius * np.cos(t), y


def arcs_figure(words: list[str], dep_pairs: list[tuple[int, int, str]], weights: np.ndarray, threshold: float, head: Head) -> go.Figure:
    """Dependency arcs above the words (arrow at the dependent), attention arcs below (arrow at the attended word)."""
    fig = go.Figure()
    words = [escape_html(word) for word in words]
    n = len(words)
    linked = {(d, g) for d, g, _ in dep_pairs} | {(g, d) for d, g, _ in dep_pairs}
    top = 0.5
    for dep, gov, rel in dep_pairs:
        xs, ys = _arc(gov, dep, up=True)
        top = max(top, ys.max())
        fig.add_scatter(x=xs, y=ys, mode="lines", line={"color": DEP_COLOR, "width": 1.5}, hoverinfo="skip", showlegend=False)
        fig.add_scatter(
            x=[dep],
            y=[0.12],
            mode="markers",
            marker={"symbol": "triangle-down", "size": 8, "color": DEP_COLOR},
            hovertext=f"{words[gov]} → {words[dep]}: {rel}",
            hoverinfo="text",
            showlegend=False,
        )
        fig.add_annotation(x=(dep + gov) / 2, y=ys.max(), text=rel, showarrow=False, yshift=7, font={"size": 11, "color": "#444"})
    bottom = -0.5
    shown = 0
    buckets: dict[tuple[int, bool], tuple[list, list, list]] = {}
    for source in range(n):
        for target in range(n):
            w = float(weights[source, target])
            if source == target or w < threshold:
                continue
            xs, ys = _arc(source, target, up=False)
            bottom = min(bottom, ys.min())
            key = (min(int(w * 10), 9), (source, target) in linked)
            bx, by, bt = buckets.setdefault(key, ([], [], []))
            bx += [*xs, None]
            by += [*ys, None]
            bt += [f"{words[source]} → {words[target]}: {w:.2f}"] * len(xs) + [""]
            fig.add_scatter(
                x=[target],
                y=[-0.12],
                mode="markers",
                marker={
                    "symbol": "triangle-up",
                    "size": 4 + 8 * w,
                    "color": MATCH_COLOR if key[1] else ATTN_COLOR,
                    "opacity": 0.3 + 0.7 * w,
                },
                hoverinfo="skip",
                showlegend=False,
            )
            shown += 1
    for (level, match), (bx, by, bt) in sorted(buckets.items()):
        w = (level + 0.5) / 10
        fig.add_scatter(
            x=bx,
            y=by,
            mode="lines",
            line={"color": MATCH_COLOR if match else ATTN_COLOR, "width": 1 + 7 * w},
            opacity=0.25 + 0.75 * w,
            hovertext=bt,
            hoverinfo="text",
            showlegend=False,
        )
    for i, word in enumerate(words):
        fig.add_annotation(x=i, y=0, text=f"<b>{word}</b>", showarrow=False, font={"size": 13}, bgcolor="white")
    fig.add_annotation(x=-0.5, y=top + 0.3, text="spaCy dependencies", showarrow=False, xanchor="left", font={"color": DEP_COLOR})
    fig.add_annotation(
        x=-0.5,
        y=bottom - 0.2,
        text=f"attention of head {head_label(head)} ≥ {threshold:.2f}: {shown} arcs, ▲ at the attended word, green = along a dependency",
        showarrow=False,
        xanchor="left",
        font={"color": ATTN_COLOR},
    )
    fig.update_xaxes(visible=False, range=[-0.7, n - 0.3])
    fig.update_yaxes(visible=False, range=[bottom - 0.45, top + 0.55])
    fig.update_layout(
        height=int(260 + 55 * (top - bottom)), margin={"l": 5, "r": 5, "t": 5, "b": 5}, plot_bgcolor="white", hovermode="closest"
    )
    return fig


def alignment_figure(bundle: AnalysisBundle, head: Head) -> go.Figure:
    """Per relation: the head's alignment in both directions against the best fixed-offset baseline."""
    layer, index = head
    acc = bundle.alignment.accuracy[:, :, layer, index]
    base = bundle.alignment.baseline
    pairs = bundle.alignment.pairs
    keep = [i for i, _ in enumerate(RELATIONS) if pairs[i] > 0 and np.isfinite(acc[i]).any()]
    names = [f"{RELATIONS[i]} ({int(pairs[i])})" for i in keep]
    fig = go.Figure()
    colours = ("#4c78a8", "#f58518")
    for d, direction in enumerate(DIRECTIONS):
        fig.add_bar(x=names, y=acc[keep, d], name=f"head {direction}", marker_color=colours[d], offsetgroup=d)
        fig.add_scatter(
            x=names,
            y=base[keep, d],
            mode="markers",
            name=f"best offset {direction}",
            marker={"symbol": "line-ew", "size": 22, "line": {"width": 3, "color": "#222" if d == 0 else "#888"}},
            offsetgroup=d,
        )
    fig.update_layout(
        barmode="group",
        height=340,
        margin={"l": 40, "r": 10, "t": 40, "b": 60},
        yaxis={"range": [0, 1], "title": "share of pairs"},
        title={"text": f"Dependency alignment of head {head_label(head)} (pairs per relation in brackets)", "font": {"size": 14}},
        legend={"orientation": "h", "y": -0.3},
    )
    return fig


def distribution_figure(token_attention: np.ndarray, head: Head) -> go.Figure:
    """Histogram of the head's token attention weights on this input."""
    weights = token_attention[np.isfinite(token_attention)]
    fig = go.Figure(go.Histogram(x=weights, nbinsx=30, marker_color=SELECT_COLOR))
    fig.update_layout(
        height=340,
        margin={"l": 40, "r": 10, "t": 40, "b": 40},
        title={"text": f"Attention weights of head {head_label(head)} on this input", "font": {"size": 14}},
        xaxis_title="weight (token to token)",
        yaxis_title="count",
    )
    return fig
