"""Views that are plain functions: figure builders tested without a page."""

from __future__ import annotations


def test_labels_of_close_points_go_to_opposite_sides():
    import numpy as np

    from app.views.pareto import label_positions

    xs, ys = np.array([100.0, 98.0, 84.0]), np.array([0.8888, 0.8899, 0.8865])
    assert label_positions(xs, ys) == ["bottom center", "top center", "bottom center"]
    assert label_positions(np.array([1.0]), np.array([0.5])) == ["top center"]
    assert sorted(label_positions(np.array([1.0, 2.0]), np.array([0.5, 0.5]))) == ["bottom center", "top center"]


def test_pair_lines_join_the_paired_heads_on_the_map():
    import numpy as np
    import plotly.graph_objects as go

    from app.views.evidence import add_pair_lines

    coords = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 0.0], [3.0, 3.0]])
    pairs = [{"a": (0, 0), "b": (1, 1), "cka": 0.9, "mutual": True}, {"a": (0, 1), "b": (1, 0), "cka": 0.8, "mutual": False}]
    fig = add_pair_lines(go.Figure(go.Scatter(x=coords[:, 0], y=coords[:, 1], name="heads")), coords, pairs, num_heads=2)
    solid, dotted = fig.data[1], fig.data[2]
    assert list(solid.x) == [0.0, 3.0, None] and list(solid.y) == [0.0, 3.0, None]
    assert list(dotted.x) == [1.0, 2.0, None] and dotted.line.dash == "dot"
    assert fig.data[0].name == "heads"


def test_spread_and_error_bars_skip_missing_heads():
    import numpy as np

    from app.views.evidence import importance_errors_figure, spread_figure

    values = np.array([[0.3, np.nan], [0.1, 0.2]])
    fig = importance_errors_figure(values, np.array([[0.01, np.nan], [0.02, 0.03]]), num_heads=2)
    assert list(fig.data[0].y) == [0.1, 0.2, 0.3]
    assert list(fig.data[0].error_y.array) == [0.02, 0.03, 0.01]
    assert list(fig.data[0].hovertext) == ["1.0", "1.1", "0.0"]
    spread = spread_figure({"a": values, "empty": np.full((2, 2), np.nan)}, {"a": "A"})
    assert len(spread.data) == 1 and list(spread.data[0].y) == [0.3, 0.1, 0.2]
