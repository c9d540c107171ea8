"""Curves files: a file that is not one is refused with the command that rebuilds it.

The round trip (compute, save, :func:`load_curves`) is in tests/test_strategies.py.
"""

from __future__ import annotations

import pytest

from pruning_core import BhpvasError
from pruning_core.curves import load_curves


@pytest.mark.parametrize("content", [None, "not json", '{"model": "m"}'])
def test_a_file_that_is_not_curves_is_refused(content, tmp_path):
    path = tmp_path / "curves.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(BhpvasError, match="not a readable curves file.*pruning_core curves"):
        load_curves(path)
