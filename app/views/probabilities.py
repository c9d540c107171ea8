"""One sample's class probabilities under the full model and under the current scheme."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go


def probability_figure(names: Sequence[str], full: np.ndarray, current: np.ndarray) -> go.Figure:
    """Grouped horizontal bars: ``full`` and ``current`` probabilities per class name."""
    fig = go.Figure()
    fig.add_bar(y=list(names), x=full, name="full model", orientation="h", marker_color="#4c78a8")
    fig.add_bar(y=list(names), x=current, name="current scheme", orientation="h", marker_color="#e45756")
    fig.update_layout(
        barmode="group",
        height=110 + 45 * len(names),
        margin={"l": 10, "r": 10, "t": 30, "b": 30},
        xaxis={"range": [0, 1], "title": "probability"},
        legend={"orientation": "h", "y": 1.15},
    )
    return fig
