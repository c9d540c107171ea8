"""The dashboard, driven by Streamlit's AppTest: every page on a tiny model and on the demo, the
sidebar metrics, scheme export/import, and state restored from the URL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.testing.v1 import AppTest

from apptools import PAGES, TINY_DATA, open_page
from apptools import app as _app
from apptools import button as _button
from apptools import sidebar_metric as _sidebar_metric


@pytest.fixture(scope="module")
def demo_cache_dir(tmp_path_factory) -> Path:
    """One result cache for the demo tests of this module, so the demo analysis is computed once."""
    return tmp_path_factory.mktemp("demo-cache")


@pytest.fixture
def demo_cache(isolated_cache, demo_cache_dir, monkeypatch) -> Path:
    monkeypatch.setenv("BHPVAS_CACHE_DIR", str(demo_cache_dir))
    return demo_cache_dir


def _metric(at: AppTest, label_start: str) -> str:
    return next(m.value for m in at.metric if m.label.startswith(label_start))


def _show(at: AppTest, page: str) -> AppTest:
    open_page(at, page).run()
    assert not at.exception, f"{page}: {at.exception}"
    assert not at.error, f"{page}: {[e.value for e in at.error]}"
    return at


def _by_label(elements, label: str):
    return next(e for e in elements if e.label == label)


def test_overview_on_the_demo_shows_its_accuracy(demo_cache):
    at = _app(timeout=600).run()
    assert not at.exception
    assert _metric(at, "Heads") == "6 × 12"
    assert _metric(at, "Accuracy on sst2:dev").endswith("%")
    assert any("72 heads analysed" in c.value for c in at.caption)
    assert any(b.label.startswith("Adopt the proposal") for b in at.sidebar.get("button"))


def test_every_page_renders_on_the_demo(demo_cache):
    at = _app(timeout=300, scheme="0.1,3.4", sel="2.3").run()
    for page in PAGES:
        _show(at, page)
        assert at.title[0].value
        if page == "process":
            assert any(b.label == "Compute the pruning curves" for b in at.button)
    assert at.query_params["scheme"] == "0.1,3.4"
    assert at.query_params["sel"] == "2.3"


def test_sidebar_metrics_follow_the_scheme(demo_cache):
    at = _app(timeout=300).run()
    _show(at, "scheme")
    before = (_sidebar_metric(at, "Accuracy"), _sidebar_metric(at, "Loss"))
    _by_label(at.multiselect, "Pruned heads").set_value([(0, h) for h in range(12)] + [(1, h) for h in range(12)]).run()
    assert not at.exception
    after = (_sidebar_metric(at, "Accuracy"), _sidebar_metric(at, "Loss"))
    assert after != before
    assert at.session_state["scheme"].count(",") == 23
    assert at.query_params["scheme"] == at.session_state["scheme"]
    accuracy_delta = next(m.delta for m in at.sidebar.get("metric") if m.label == "Accuracy")
    assert accuracy_delta.endswith("pp")
    _button(at, "Reset to the full model").click().run()
    assert (_sidebar_metric(at, "Accuracy"), _sidebar_metric(at, "Loss")) == before


def test_adopting_the_proposal_sets_the_scheme(tiny_bert_dir):
    at = _app(model=str(tiny_bert_dir), data=TINY_DATA).run()
    for name, value in (("rule_importance", 1.0), ("rule_use_stability", False), ("rule_use_similarity", False)):
        at.session_state[name] = value
    at.run()
    adopt = next(b for b in at.sidebar.get("button") if b.label.startswith("Adopt the proposal"))
    assert adopt.label == "Adopt the proposal (12 heads)"
    adopt.click().run()
    assert at.session_state["scheme"].count(",") == 11


def test_every_page_renders_on_a_tiny_model(tiny_bert_dir):
    at = _app(model=str(tiny_bert_dir), data=TINY_DATA).run()
    assert not at.exception
    assert _metric(at, "Heads") == "3 × 4"
    for page in PAGES:
        _show(at, page)


def test_pruning_process_on_a_tiny_model_loads_a_point(tiny_bert_dir):
    at = _app(timeout=300, model=str(tiny_bert_dir), data=TINY_DATA).run()
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


def test_scheme_export_import_round_trip(tiny_bert_dir, monkeypatch):
    exported: dict[str, bytes] = {}
    original = MemoryMediaFileStorage.load_and_get_id

    def spy(self, path_or_data, mimetype, kind, filename=None):
        if filename and filename.endswith(".json"):
            exported[filename] = path_or_data if isinstance(path_or_data, bytes) else str(path_or_data).encode()
        return original(self, path_or_data, mimetype, kind, filename)

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", spy)
    at = _app(model=str(tiny_bert_dir), data=TINY_DATA, scheme="0.1,2.3").run()
    _show(at, "scheme")
    (name, raw), *_ = exported.items()
    data = json.loads(raw)
    assert data["pruned"] == [[0, 1], [2, 3]] and data["num_layers"] == 3 and data["num_heads"] == 4
    _by_label(at.multiselect, "Pruned heads").set_value([]).run()
    assert at.session_state["scheme"] == "none"
    at.file_uploader(key="scheme-import").set_value((name, raw, "application/json")).run()
    _button(at, "Use as current (A)").click().run()
    assert at.session_state["scheme"] == "0.1,2.3"
    assert at.query_params["scheme"] == "0.1,2.3"


def test_importing_a_bad_scheme_keeps_the_current_one(tiny_bert_dir):
    at = _app(model=str(tiny_bert_dir), data=TINY_DATA, scheme="1.1").run()
    _show(at, "scheme")
    wrong_shape = json.dumps({"num_layers": 6, "num_heads": 12, "pruned": [[5, 11]]}).encode()
    at.file_uploader(key="scheme-import").set_value(("other.json", wrong_shape, "application/json")).run()
    assert not at.exception
    assert any("6 layers x 12 heads" in e.value for e in at.error)
    at.file_uploader(key="scheme-import").set_value(("broken.json", b"{not json", "application/json")).run()
    assert any("not valid JSON" in e.value for e in at.error)
    assert at.session_state["scheme"] == "1.1"


def test_url_restores_model_scheme_and_selection(tiny_bert_dir):
    at = _app(model=str(tiny_bert_dir), data=TINY_DATA, scheme="0.1,2.3", sel="1.2,2.0").run()
    assert at.session_state["scheme"] == "0.1,2.3"
    assert any(c.value.startswith("2 of 12 heads pruned") for c in at.sidebar.get("caption"))
    _show(at, "heads")
    assert _by_label(at.multiselect, "Selected heads").value == [(1, 2), (2, 0)]
    assert at.query_params["model"] == str(tiny_bert_dir)
    assert at.query_params["sel"] == "1.2,2.0"
    _by_label(at.multiselect, "Selected heads").set_value([(0, 3)]).run()
    assert at.query_params["sel"] == "0.3"
    _show(at, "scheme")
    assert _by_label(at.multiselect, "Pruned heads").value == [(0, 1), (2, 3)]
    assert at.query_params["sel"] == "0.3" and at.query_params["scheme"] == "0.1,2.3"


def test_dataset_from_an_uploaded_csv(tiny_bert_dir, tmp_path):
    rows = "review,stars\n" + "\n".join(
        f"{'great' if i % 2 else 'awful'} film number {i},{'positive' if i % 2 else 'negative'}" for i in range(12)
    )
    at = _app(model=str(tiny_bert_dir), data=TINY_DATA).run()
    at.radio(key="pick-data-kind").set_value("Upload a file").run()
    at.file_uploader(key="pick-data-upload").set_value(("reviews.csv", rows.encode(), "text/csv")).run()
    assert at.selectbox(key="pick-col-text").value == "review"
    assert at.selectbox(key="pick-col-label").value == "stars"
    _button(at, "Use this dataset").click().run()
    assert not at.exception and not at.error
    assert at.session_state["data"].endswith("reviews.csv|text=review|label=stars")
    assert _metric(at, "Accuracy on reviews.csv").endswith("%")


def test_a_csv_path_in_the_url_is_the_dataset(tiny_bert_dir, tmp_path):
    path = tmp_path / "pairs.csv"
    path.write_text("premise,hypothesis,label\n" + "\n".join(f"a cat sat {i},a cat is here,{i % 2}" for i in range(10)) + "\n")
    at = _app(model=str(tiny_bert_dir), data=str(path)).run()
    assert not at.exception and not at.error
    assert any("sentence pairs" in c.value for c in at.caption)
    _show(at, "samples")
    assert "second text" in at.dataframe[0].value.columns


def test_bad_model_gets_a_message_not_a_traceback(tmp_path):
    at = _app(timeout=60, model=str(tmp_path / "missing")).run()
    assert not at.exception
    assert any("does not exist" in e.value for e in at.error)


def test_bad_scheme_in_the_url_gets_a_warning(tiny_bert_dir):
    at = _app(model=str(tiny_bert_dir), data=TINY_DATA, scheme="9.9").run()
    assert not at.exception
    assert any("Ignoring the scheme" in w.value for w in at.warning)
    assert at.session_state["scheme"] == "none"


def test_real_pruning_on_a_tiny_model(tiny_bert_dir):
    at = _app(timeout=300, model=str(tiny_bert_dir), data=TINY_DATA, scheme="0.1,1.2,2.3,2.0").run()
    _show(at, "scheme")
    _button(at, "Prune 4 heads, check and time it").click().run()
    assert not at.exception and not at.error
    assert _metric(at, "Masked = pruned") == "yes"
    assert _metric(at, "Heads per layer") == "3 3 2"
    assert {"Pruned model (zip)", "Report (HTML)"} <= {b.label for b in at.get("download_button")}


def test_compare_and_swap_two_schemes(tiny_bert_dir):
    at = _app(model=str(tiny_bert_dir), data=TINY_DATA, scheme="0.0").run()
    _show(at, "scheme")
    at.button_group(key="scheme-b-source").set_value("Custom").run()
    _by_label(at.text_input, "Heads of B (layer.head, comma-separated)").input("1.1,2.2").run()
    assert not at.exception and not at.error
    table = at.dataframe[0].value
    assert list(table["scheme"]) == ["full model", "A (current)", "B"]
    assert list(table["heads kept"]) == [12, 11, 10]
    _button(at, "Swap A and B").click().run()
    assert at.session_state["scheme"] == "1.1,2.2"
    assert at.session_state["scheme_b"] == "0.0"
    _by_label(at.text_input, "Heads of B (layer.head, comma-separated)").input("7.7").run()
    assert any("outside a model with 3 layers" in e.value for e in at.error)
    assert at.session_state["scheme"] == "1.1,2.2"


@pytest.mark.parametrize("arch", ["distilbert", "roberta", "electra"])
def test_evidence_pages_on_other_architectures(tiny_dirs, arch):
    at = _app(model=str(tiny_dirs[arch]), data=TINY_DATA, sel="1.1").run()
    assert not at.exception and not at.error
    for page in ("heads", "dependencies", "samples"):
        _show(at, page)


def test_labels_of_close_points_go_to_opposite_sides():
    import numpy as np

    from pages.views import label_positions

    xs, ys = np.array([100.0, 98.0, 84.0]), np.array([0.8888, 0.8899, 0.8865])
    assert label_positions(xs, ys) == ["bottom center", "top center", "bottom center"]
    assert label_positions(np.array([1.0]), np.array([0.5])) == ["top center"]
    assert sorted(label_positions(np.array([1.0, 2.0]), np.array([0.5, 0.5]))) == ["bottom center", "top center"]
