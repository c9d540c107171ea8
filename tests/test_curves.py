"""Curves files: a file that is not one is refused with the command that rebuilds it; where a
curve is refined around its knees.

The round trip (compute, save, :func:`load_curves`) is in tests/test_strategies.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from pruning_core import BhpvasError
from pruning_core.curves import _refine_ranges, load_curves


@pytest.mark.parametrize("content", [None, "not json", '{"model": "m"}'])
def test_a_file_that_is_not_curves_is_refused(content, tmp_path):
    path = tmp_path / "curves.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(BhpvasError, match="not a readable curves file.*pruning_core curves"):
        load_curves(path)


def _point(accuracy: float, samples: int = 1000) -> tuple[float, float, float, np.ndarray]:
    """A curve point whose first (1 - accuracy) x samples answers are wrong (the full model gets all right)."""
    return accuracy, 0.0, 1.0, np.arange(samples) >= int(round((1 - accuracy) * samples))


def test_refinement_covers_the_first_crossing_and_the_knee_after_a_dip():
    """A noisy curve dips below -1 point at K=20, comes back at K=30 and leaves for good at K=40:
    the 1-point knee can be anywhere in 30..39, so that interval is refined as well as 10..20."""
    full = np.ones(1000, dtype=bool)
    grid = [0, 10, 20, 30, 40, 50]
    points = [_point(acc) for acc in (1.0, 0.995, 0.985, 0.995, 0.95, 0.9)]
    ranges = _refine_ranges(grid, points, 1.0, full)
    assert (10, 20) in ranges and (30, 40) in ranges


def test_refinement_of_a_monotone_curve_is_one_interval_per_threshold():
    full = np.ones(1000, dtype=bool)
    grid = [0, 10, 20, 30]
    points = [_point(acc) for acc in (1.0, 0.999, 0.98, 0.9)]
    assert _refine_ranges(grid, points, 1.0, full) == [(10, 20)]
