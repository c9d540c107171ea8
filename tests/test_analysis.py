"""Analysis bundles: a saved bundle opens again unchanged; a folder that is not one says so."""

from __future__ import annotations

import numpy as np
import pytest

from pruning_core import BhpvasError
from pruning_core.analysis import load_bundle


def test_saved_bundle_opens_with_the_same_arrays_and_metadata(tiny_bundle, tmp_path):
    _, bundle = tiny_bundle
    again = load_bundle(bundle.save(tmp_path / "bundle"))
    assert again.meta() == bundle.meta()
    saved, loaded = bundle.arrays(), again.arrays()
    assert saved.keys() == loaded.keys()
    for name in saved:
        assert np.array_equal(np.asarray(saved[name]), np.asarray(loaded[name]), equal_nan=True), name
    assert again.scores_table() == bundle.scores_table()


def test_a_folder_that_is_not_a_bundle_is_refused_with_the_command_to_rebuild_it(tmp_path):
    with pytest.raises(BhpvasError, match="not a readable analysis bundle.*pruning_core analyze"):
        load_bundle(tmp_path)
    (tmp_path / "bundle.json").write_text("{}")
    with pytest.raises(BhpvasError, match="not a readable analysis bundle"):
        load_bundle(tmp_path)
