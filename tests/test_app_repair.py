"""Repair and recovery on the Scheme page, computed for real on a tiny model: the sidebar's repaired
accuracy, the recovery step's rows and compensation view, "A + repair" in the comparison and on the
Pareto chart, and real pruning that saves the repaired (and recovered) model and records it."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from app.recovery_panel import Interruption
from apptools import TINY_DATA
from apptools import app as _app
from apptools import button as _button
from apptools import show as _show
from pruning_core import load_dataset
from pruning_core.loading import PRUNING_FILE
from pruning_core.recovery import RecoveryParams, recover
from pruning_core.repair import repair_scheme, repaired_pruned
from pruning_core.schemes import Scheme

SCHEME = "0.0,1.1,2.2"


def _repaired(tiny_bert_dir) -> AppTest:
    at = _app(timeout=300, model=str(tiny_bert_dir), data=TINY_DATA, scheme=SCHEME).run()
    _show(at, "scheme")
    _button(at, "Repair the current scheme").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    return at


def _table(at: AppTest, column: str):
    return next(frame.value for frame in at.dataframe if column in frame.value.columns)


def _figures(at: AppTest) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def _values(data) -> list[float]:
    """A trace's array, whether Plotly wrote it as a list or as base64 binary (``{"dtype", "bdata"}``)."""
    if isinstance(data, dict):
        return np.frombuffer(base64.b64decode(data["bdata"]), dtype=data["dtype"]).tolist()
    return list(data)


def _titled(at: AppTest, title: str) -> list[dict]:
    return [fig for fig in _figures(at) if title in str(fig.get("layout", {}).get("title", {}).get("text", ""))]


def test_a_repaired_scheme_shows_in_the_sidebar_the_comparison_and_the_pareto_chart(tiny_bert_dir):
    at = _repaired(tiny_bert_dir)
    labels = [m.label for m in at.sidebar.get("metric")]
    assert "Accuracy after repair" in labels and "Accuracy after repair + recovery" not in labels
    sidebar_texts = [t.value for t in at.sidebar.get("text")]
    assert sum(t.startswith("Change ") and "95% interval" in t and "McNemar p" in t for t in sidebar_texts) == 2, sidebar_texts
    compared = _table(at, "heads kept")
    rows = {row["scheme"]: row for row in compared.to_dict("records")}
    assert "A + repair" in rows and "A + repair + recovery" not in rows
    assert rows["A + repair"]["heads kept"] == rows["A (current)"]["heads kept"] == 9
    assert rows["A + repair"]["MACs %"] == rows["A (current)"]["MACs %"]
    repaired_accuracy = float(_table(at, "change against the full model")["accuracy"].iloc[2].rstrip("%")) / 100
    assert rows["A + repair"]["accuracy"] == pytest.approx(repaired_accuracy, abs=5e-5)
    pareto = [trace for fig in _figures(at) for trace in fig["data"] if trace.get("name") == "A + repair"]
    assert pareto and _values(pareto[0]["x"]) == [rows["A (current)"]["MACs %"]]
    at.session_state["scheme"] = "0.0"
    at.run()
    assert "Accuracy after repair" not in [m.label for m in at.sidebar.get("metric")], "another scheme was not repaired"
    assert "A + repair" not in list(_table(at, "heads kept")["scheme"])


def test_recovery_adds_its_rows_and_the_compensation_view_and_real_pruning_carries_it(tiny_bert_dir):
    at = _repaired(tiny_bert_dir)
    at.number_input(key="scheme-recover-steps").set_value(3).run()
    _button(at, "Recover (fine-tune)").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    table = _table(at, "change against the full model")
    assert list(table["model"]) == ["full", "masked", "masked + repair", "masked + repair + recovery"]
    assert all("95% interval" in cell and "McNemar p" in cell for cell in table["change against the full model"].iloc[1:])
    assert any(t.value.startswith("Recovered: 3 steps") for t in at.text)
    assert _titled(at, "Importance before recovery") and _titled(at, "Importance after recovery")
    histogram = _titled(at, "Change of importance")
    assert histogram and histogram[0]["data"][0]["type"] == "histogram" and len(_values(histogram[0]["data"][0]["x"])) == 9
    assert "Accuracy after repair + recovery" in [m.label for m in at.sidebar.get("metric")]
    assert "A + repair + recovery" in list(_table(at, "heads kept")["scheme"])

    assert at.checkbox(key="scheme-prune-repair-True").value, "repair before pruning is on once A was repaired"
    assert at.checkbox(key="scheme-prune-recovered").value
    _button(at, "Prune 3 heads, check and time it").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    _, result, folder, downloads = at.session_state["prune_result"]
    report = json.loads(downloads["report.json"])
    assert report["repair"]["variant"] == "full" and report["repair"]["calibration_fingerprint"]
    assert report["recovery"]["steps"] == 3 and report["recovery"]["completed"]
    assert report["calibration"]["fingerprint"] == report["repair"]["calibration_fingerprint"]
    assert report["saved_model"] == "pruned + repair + recovery"
    assert report["accuracy"]["saved"]["precision"] == "fp32"
    assert all({"precision", "split", "data"} <= set(entry) for entry in report["accuracy"].values())
    beside = json.loads((Path(folder) / "model" / PRUNING_FILE).read_text())
    assert beside["repair"]["variant"] == "full" and beside["recovery"]["steps"] == 3
    shown = [t.value for t in at.text]
    assert any(t.startswith("Repair: full (ridge") for t in shown) and any(t.startswith("Recovery: 3 of 3 steps") for t in shown)
    assert any(m.label == "Saved model accuracy (fp32)" for m in at.metric)


def test_pruning_for_real_records_the_repair_and_not_without_it(tiny_bert_dir):
    at = _repaired(tiny_bert_dir)
    _button(at, "Prune 3 heads, check and time it").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    report = json.loads(at.session_state["prune_result"][3]["report.json"])
    assert report["repair"] is not None, "the report must record the repair it pruned with"
    assert report["repair"]["variant"] == "full" and report["repair"]["ridge"] > 0 and report["repair"]["seconds"] >= 0
    assert report["saved_model"] == "pruned + repair" and report["masked_equals_pruned"] and report["recovery"] is None
    at.checkbox(key="scheme-prune-repair-True").uncheck().run()
    _button(at, "Prune 3 heads, check and time it").click().run()
    plain = json.loads(at.session_state["prune_result"][3]["report.json"])
    assert plain["repair"] is None and plain["saved_model"] == "pruned" and plain["calibration"] is None


def test_an_interruption_stops_recovery_with_a_checkpoint_and_is_passed_on(tiny_bert):
    """What the Stop button does: Streamlit raises its rerun request at a progress update; recovery
    ends after that step with a checkpoint, the request is raised again, and Recover resumes."""
    from streamlit.runtime.scriptrunner import RerunException
    from streamlit.runtime.scriptrunner_utils.script_requests import RerunData

    calibration = load_dataset("sst2", max_rows=24)
    repair = repair_scheme(tiny_bert, Scheme.from_key(SCHEME, 3, 4), calibration)
    student = repaired_pruned(tiny_bert, repair)
    calls: list[str] = []

    def page_update(fraction: float, message: str) -> None:
        calls.append(message)
        if message.startswith("recovery step 2/"):
            raise RerunException(RerunData())

    watch = Interruption(page_update)
    params = RecoveryParams(steps=5, batch_size=8)
    partial = recover(student, tiny_bert, calibration, params, progress=watch.report, cancel=watch.cancelled)
    assert not partial.completed and partial.steps_done == 2 and watch.cancelled()
    with pytest.raises(RerunException):
        watch.pass_on()
    resumed = recover(student, tiny_bert, calibration, params)
    assert resumed.completed and resumed.resumed_from == 2 and resumed.steps_done == 5
