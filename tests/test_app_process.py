"""The Pruning process page: computing curves, loading a point as the scheme, and the "+ repair" curves."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from apptools import app as _app
from apptools import button as _button
from apptools import by_label as _by_label
from apptools import show as _show
from apptools import sidebar_metric as _sidebar_metric
from apptools import traces as _traces
from pruning_core import load_dataset, load_model
from pruning_core.analysis import AnalysisParams, analyze
from pruning_core.calibration import data_sets
from pruning_core.curves import CurveParams, compute_curves
from pruning_core.repair_curves import add_repaired_curves
from pruning_core.results import write_results

REPAIRED_COLUMNS = {"≤1 pt plain", "≤1 pt + repair", "gain ≤1 pt", "no sig. drop + repair", "Δ acc. no sig. drop + repair"}


def test_pruning_process_on_a_tiny_model_loads_a_point(tiny_bert_dir):
    at = _app(timeout=300, model=str(tiny_bert_dir), data="sst2|rows=23").run()  # data no other test computed curves for
    _show(at, "process")
    at.multiselect(key="process-compute-strategies").set_value(["importance", "random", "bottom-first", "bhpvas"]).run()
    _button(at, "Compute the pruning curves").click().run()
    assert not at.exception and not at.error
    assert _by_label(at.multiselect, "Strategies").value
    at.select_slider(key="process-step").set_value(6).run()
    at.selectbox(key="process-load-strategy").set_value("importance").run()
    _button(at, "Make it the current scheme").click().run()
    assert at.session_state["scheme"].count(",") == 5
    assert _sidebar_metric(at, "Accuracy").endswith("%")


def _lines(at: AppTest) -> dict[str, dict]:
    return {t["name"]: t for t in _traces(at) if t.get("mode") == "lines+markers"}


def _repaired_table(at: AppTest):
    return next((frame.value for frame in at.dataframe if REPAIRED_COLUMNS <= set(frame.value.columns)), None)


def _assert_plain_dashed_repaired_solid(at: AppTest, labels: list[str]) -> None:
    lines = _lines(at)
    assert sorted(lines) == sorted([*labels, *(f"{label} + repair" for label in labels)]), sorted(lines)
    traces = _traces(at)
    bands = [t["name"] for t in traces if t.get("fill") == "tonexty"]
    stars = {t["name"]: t["marker"]["symbol"] for t in traces if t.get("mode") == "markers"}
    for label in labels:
        plain, repaired = lines[label], lines[f"{label} + repair"]
        assert plain["line"]["dash"] == "dash" and repaired["line"]["dash"] == "solid"
        assert plain["line"]["color"] == repaired["line"]["color"]
        assert f"{label} + repair 95% interval" in bands and f"{label} 95% interval" not in bands
        assert stars[f"{label} knee"] == "star-open" and stars[f"{label} + repair knee"] == "star"
    assert "Random (min-max of 5 seeds)" in bands or "Random" not in labels, bands
    assert any("Dashed line, open star: plain" in t.value for t in at.text)
    table = _repaired_table(at)
    assert table is not None and sorted(table["strategy"]) == sorted(labels)
    assert table["≤1 pt + repair"].str.contains(r"^\d+ \[\d+–\d+\]").all()
    assert table["gain ≤1 pt"].str.fullmatch(r"[+-]\d+ \[[+-]\d+, [+-]\d+\]").all()
    assert table["Δ acc. no sig. drop + repair"].str.contains("p=").all()


def _assert_hidden(at: AppTest, labels: list[str]) -> None:
    at.toggle(key="process-repaired").set_value(False).run()
    assert not at.exception
    lines = _lines(at)
    assert sorted(lines) == sorted(labels), sorted(lines)
    assert lines["Importance (one-shot)"]["line"]["dash"] == "solid"
    assert _repaired_table(at) is None


def test_the_button_adds_the_repaired_curves_and_the_page_draws_them(tiny_bert_dir):
    at = _app(timeout=600, model=str(tiny_bert_dir), data="sst2|rows=21").run()  # data no other test computed curves for
    _show(at, "process")
    at.multiselect(key="process-compute-strategies").set_value(["importance", "random"]).run()
    _button(at, "Compute the pruning curves").click().run()
    assert not at.exception and not at.error
    assert not [name for name in _lines(at) if name.endswith("+ repair")] and not at.toggle
    assert any("three passes over it" in i.value for i in at.info), "the offer explains the cost"
    assert at.multiselect(key="process-repair-strategies").value == ["importance", "random"]
    _button(at, "Add the + repair curves").click().run()
    assert not at.exception and not at.error
    assert not [b for b in at.button if b.label.startswith("Add the + repair curves")]
    labels = ["Importance (one-shot)", "Random"]
    assert list(_repaired_table(at)["strategy"]) == labels, "the knee tables follow the new curves, not the ones drawn before"
    _assert_plain_dashed_repaired_solid(at, labels)
    _assert_hidden(at, labels)


def test_opened_results_show_their_repaired_curves_without_a_click(tiny_bert_dir, tmp_path):
    lm = load_model(tiny_bert_dir)
    sets = data_sets("sst2", load_dataset("sst2", max_rows=22), rows=22)
    bundle = analyze(lm, sets.calibration, AnalysisParams(similarity_tokens=500, role_sentences=20, alignment_sentences=20))
    params = CurveParams(step_fraction=0.25, random_seeds=2, strategies=("importance", "bottom-first"))
    curves = compute_curves(lm, sets.evaluation, bundle, params, calibration=sets.calibration, descriptions=sets.describe())
    add_repaired_curves(lm, sets.evaluation, sets.calibration, curves, ("importance",))
    write_results(tmp_path / "results", lm, sets.evaluation, sets.calibration, bundle, curves, "test")
    at = _app(timeout=300, model=str(tiny_bert_dir), data="sst2|rows=22").run()
    at.text_input(key="pick-results-path").set_value(str(tmp_path / "results")).run()
    _button(at, "Open these results").click().run()
    assert not at.exception and not at.error
    _show(at, "process")
    lines = _lines(at)
    assert "Importance (one-shot) + repair" in lines and "Layers: bottom first + repair" not in lines
    assert lines["Layers: bottom first"]["line"]["dash"] == "dash", "with repaired curves shown, every plain line is dashed"
    table = _repaired_table(at)
    assert list(table["strategy"]) == ["Importance (one-shot)"]
    assert [b.label for b in at.button if b.label.startswith("Add the + repair curves")], "offered for the strategy left"
    _show(at, "scheme")
    assert "Importance (one-shot) + repair" in [t.get("name") for t in _traces(at)], "the Pareto chart has the repaired curve"
