"""Views that are plain functions: figure builders tested without a page."""

from __future__ import annotations


def test_labels_of_close_points_go_to_opposite_sides():
    import numpy as np

    from app.views.pareto import label_positions

    xs, ys = np.array([100.0, 98.0, 84.0]), np.array([0.8888, 0.8899, 0.8865])
    assert label_positions(xs, ys) == ["bottom center", "top center", "bottom center"]
    assert label_positions(np.array([1.0]), np.array([0.5])) == ["top center"]
    assert sorted(label_positions(np.array([1.0, 2.0]), np.array([0.5, 0.5]))) == ["bottom center", "top center"]
