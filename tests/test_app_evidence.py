"""Evidence in the app: scores from the calibration set and accuracy from the evaluation set (each
page says which), percentile thresholds with their notes, the current scheme's change with its
interval, redundant pairs and spreads on the Heads page, bands and knee intervals on the Process page."""

from __future__ import annotations

import json

from streamlit.testing.v1 import AppTest

from app.sidebar import change_text
from apptools import TINY_DATA
from apptools import app as _app
from apptools import button as _button
from apptools import show as _show
from pages.process import change_cell, knee_cell
from pruning_core.stats import accuracy_change


def _texts(at: AppTest) -> list[str]:
    return [t.value for t in at.text]


def _traces(at: AppTest) -> list[dict]:
    return [trace for chart in at.get("plotly_chart") for trace in json.loads(chart.proto.spec).get("data", [])]


def _trace_names(at: AppTest) -> list[str]:
    return [trace.get("name", "") for trace in _traces(at)]


def test_heads_page_says_where_scores_come_from_and_draws_pairs_and_spread(tiny_bert_dir):
    at = _app(timeout=300, model=str(tiny_bert_dir), data=TINY_DATA).run()
    _show(at, "heads")
    texts = _texts(at)
    assert any(t.startswith("scores: calibration set — sst2:train: 24 of") for t in texts), texts
    names = _trace_names(at)
    assert any(name.startswith("redundant pairs") for name in names), names
    assert "importance ± stderr" in names
    assert any(t.startswith(("importance: signal", "importance: no signal")) for t in texts) or at.warning


def test_sidebar_shows_percentiles_notes_and_the_change_interval(tiny_bert_dir):
    at = _app(timeout=300, model=str(tiny_bert_dir), data=TINY_DATA).run()
    _show(at, "heads")
    labels = [s.label for s in at.sidebar.slider]
    assert "Importance percentile ≤ t_I" in labels and "Stability percentile ≥ t_S" in labels
    sidebar_texts = [t.value for t in at.sidebar.text]
    assert any(t.startswith("Cut-offs on this model: importance ≤") for t in sidebar_texts), sidebar_texts
    assert "accuracy: evaluation set — sst2:dev[:24] (24 rows); fp32" in sidebar_texts
    assert any(t.startswith("Stability carries no signal on this model") for t in sidebar_texts), sidebar_texts
    _button(at, "Adopt the proposal").click().run()
    assert not at.exception
    changes = [t.value for t in at.sidebar.text if t.value.startswith("Change ")]
    assert changes and "95% interval" in changes[0] and "McNemar p =" in changes[0], changes


def test_process_page_draws_bands_and_knee_intervals(tiny_bert_dir):
    at = _app(timeout=300, model=str(tiny_bert_dir), data=TINY_DATA).run()
    _show(at, "process")
    at.multiselect(key="process-compute-strategies").set_value(["importance", "random", "bhpvas"]).run()
    _button(at, "Compute the pruning curves").click().run()
    assert not at.exception and not at.error
    bands = [t["name"] for t in _traces(at) if t.get("fill") == "tonexty" and t.get("name", "").endswith("95% interval")]
    assert len(bands) == 3, bands
    assert any(t.startswith("Orders learned on the calibration set — sst2:train") for t in _texts(at))
    table = at.dataframe[-1].value
    assert {"≤1 pt", "≤3 pt", "no sig. drop", "Δ acc. no sig. drop"} <= set(table.columns)
    assert table["no sig. drop"].str.contains(r"\[\d+–\d+\]").all()
    assert table["no sig. drop"].str.contains("best").any()


def test_knee_cells_mark_intervals_best_and_ties():
    row = {"k_1pt": 41, "k_1pt_interval": [36, 44], "best_1pt": True, "tied_1pt": ["fisher", "michel"]}
    assert knee_cell(row, "1pt") == "41 [36–44] best = fisher, michel"
    assert knee_cell({"k_3pt": 50, "k_3pt_interval": [48, 52], "best_3pt": False, "tied_3pt": []}, "3pt") == "50 [48–52]"
    assert knee_cell({}, "nosig") == "—"
    many = {"k_1pt": 5, "best_1pt": False, "tied_1pt": ["a", "b", "c", "d", "e"]}
    assert knee_cell(many, "1pt") == "5 = a, b, c +2 more"
    assert change_cell({"delta_1pt": [-0.02, 0.004], "p_1pt": 0.3}, "1pt") == "[-2.0, +0.4] pp · p=0.300 (tie)"
    assert change_cell({"delta_1pt": [-0.05, -0.02], "p_1pt": 0.001}, "1pt").endswith("(significant)")


def test_change_text_says_tie_when_not_significant():
    full = [True] * 50 + [False] * 50
    same = accuracy_change(full, full)
    assert "tie: no significant change" in change_text(same)
    worse = accuracy_change(full, [False] * 100)
    assert "significant change" in change_text(worse) and "tie" not in change_text(worse)
    assert "50 lost, 0 gained" in change_text(worse)


def test_repair_shows_masked_and_repaired_accuracy_with_intervals(tiny_bert_dir):
    at = _app(timeout=300, model=str(tiny_bert_dir), data=TINY_DATA, scheme="0.0,1.1").run()
    _show(at, "scheme")
    _button(at, "Repair the current scheme").click().run()
    assert not at.exception and not at.error
    table = next(frame.value for frame in at.dataframe if "change against the full model" in frame.value.columns)
    assert list(table["model"]) == ["full", "masked", "masked + repair"]
    assert table["change against the full model"].iloc[2].startswith("Change ")
    assert "95% interval" in table["change against the full model"].iloc[2]
