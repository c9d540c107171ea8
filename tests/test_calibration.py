"""Calibration and evaluation sets."""

from __future__ import annotations

import pytest

from pruning_core import load_dataset
from pruning_core.calibration import calibration_split, data_sets
from pruning_core.errors import DataError


def test_bundled_sst2_calibrates_on_2000_sampled_train_sentences():
    dev = load_dataset("sst2")
    sets = data_sets("sst2", dev)
    assert sets.evaluation is dev and len(sets.calibration) == 2000
    train = set(load_dataset("sst2:train").texts)
    assert set(sets.calibration.texts) <= train
    again, description = calibration_split("sst2", dev)
    assert again.fingerprint == sets.calibration.fingerprint, "fixed seed"
    assert "2000 of 67349" in description and "seed 0" in description
    assert calibration_split("sst2", dev, seed=1)[0].fingerprint != again.fingerprint


def test_a_user_file_calibrates_on_itself_unless_told(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("text,label\n" + "".join(f"sentence number {i},{i % 2}\n" for i in range(50)))
    data = load_dataset(str(path))
    sets = data_sets(str(path), data)
    assert sets.calibration is data and sets.evaluation is data and "itself" in sets.calibration_description
    held = data_sets(str(path), data, fraction=0.2)
    assert len(held.calibration) == 10 and len(held.evaluation) == 40
    assert not set(held.calibration.texts) & set(held.evaluation.texts)
    other = tmp_path / "c.csv"
    other.write_text("text,label\nanother one,0\nand more,1\n")
    given = data_sets(str(path), data, calibration=str(other))
    assert len(given.calibration) == 2 and given.evaluation is data
    with pytest.raises(DataError):
        data_sets(str(path), data, calibration=str(other), fraction=0.2)
    with pytest.raises(DataError):
        data_sets(str(path), data, fraction=1.5)
