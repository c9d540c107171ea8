"""The real-pruning report carries what was done: the repaired and the recovered model are what is
saved, the report and the checkpoint's map record repair, recovery and the calibration set, and every
accuracy says its precision and split (the saved checkpoint measured in fp32 after loading it back)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from pruning_core import BhpvasError, load_dataset, load_model
from pruning_core.loading import PRUNING_FILE
from pruning_core.recovery import RecoveryParams, recover
from pruning_core.repair import repair_scheme, repaired_pruned
from pruning_core.report import pruning_report
from pruning_core.schemes import Scheme

SCHEME = Scheme(3, 4, frozenset({(0, 1), (1, 2), (2, 0)}))


def _out_proj_weights(lm) -> list[torch.Tensor]:
    return [lm.adapter.out_proj(layer).weight.detach().clone() for layer in lm.adapter.layers(lm.model)]


def test_a_repaired_and_recovered_report_records_both_and_saves_those_weights(tiny_bert, tmp_path):
    evaluation = load_dataset("sst2", max_rows=24)
    calibration = load_dataset("sst2", max_rows=40)
    repair = repair_scheme(tiny_bert, SCHEME, calibration)
    options = {"batch_sizes": (1,), "seq_lens": (8,), "repeats": 1, "calibration": calibration}

    repaired = pruning_report(tiny_bert, evaluation, SCHEME, tmp_path / "repaired", repair=repair, **options)
    assert repaired["repair"]["variant"] == "full" and repaired["repair"]["ridge"] == repair.ridge
    assert repaired["repair"]["calibration_fingerprint"] == calibration.fingerprint and repaired["recovery"] is None
    assert repaired["calibration"] == {"name": calibration.name, "fingerprint": calibration.fingerprint, "rows": 40}
    assert repaired["masked_equals_pruned"], "masked + repair and pruned + repair agree"
    assert repaired["saved_model"] == "pruned + repair"
    for entry in repaired["accuracy"].values():
        assert entry["split"] == "evaluation" and entry["precision"] == "fp32" and entry["data"] == evaluation.name
    assert repaired["accuracy"]["saved"]["model"].endswith("loaded back from the saved checkpoint")
    saved = load_model(repaired["checkpoint"])
    for got, want in zip(_out_proj_weights(saved), _out_proj_weights(repaired_pruned(tiny_bert, repair)), strict=True):
        torch.testing.assert_close(got, want)
    beside = json.loads((tmp_path / "repaired" / "model" / PRUNING_FILE).read_text())
    assert beside["repair"]["variant"] == "full" and beside["calibration"]["fingerprint"] == calibration.fingerprint
    on_disk = json.loads((tmp_path / "repaired" / "report.json").read_text())
    assert on_disk["repair"]["seconds"] == round(repair.seconds, 2) and "saved" in on_disk["accuracy"]
    assert "Repair" in (tmp_path / "repaired" / "report.html").read_text()

    recovered = recover(repaired_pruned(tiny_bert, repair), tiny_bert, calibration, RecoveryParams(steps=3, batch_size=8))
    both = pruning_report(tiny_bert, evaluation, SCHEME, tmp_path / "recovered", repair=repair, recovery=recovered, **options)
    assert both["recovery"]["steps_done"] == 3 and both["recovery"]["last_loss"] is not None and both["recovery"]["seconds"] >= 0
    assert both["recovery"]["calibration_fingerprint"] == calibration.fingerprint
    assert both["saved_model"] == "pruned + repair + recovery" and "before_recovery" in both["accuracy"]
    assert "(before recovery)" in both["masked_check"]["compares"]
    saved = load_model(both["checkpoint"])
    for got, want in zip(_out_proj_weights(saved), _out_proj_weights(recovered.model), strict=True):
        torch.testing.assert_close(got, want)
    beside = json.loads((tmp_path / "recovered" / "model" / PRUNING_FILE).read_text())
    assert beside["recovery"]["steps"] == 3 and beside["repair"]["variant"] == "full"


def test_a_repair_of_another_scheme_or_calibration_set_is_refused(tiny_bert, tmp_path):
    evaluation = load_dataset("sst2", max_rows=24)
    calibration = load_dataset("sst2", max_rows=40)
    repair = repair_scheme(tiny_bert, SCHEME, calibration)
    other = Scheme(3, 4, frozenset({(0, 0)}))
    with pytest.raises(BhpvasError, match="another scheme"):
        pruning_report(tiny_bert, evaluation, other, tmp_path / "a", repeats=1, repair=repair)
    with pytest.raises(BhpvasError, match="calibration set"):
        pruning_report(tiny_bert, evaluation, SCHEME, tmp_path / "b", repeats=1, repair=repair, calibration=evaluation)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    assert np.array_equal(repair.keep, SCHEME.keep_mask())
