"""The Scheme & export page: export/import, comparing and swapping schemes, real pruning."""

from __future__ import annotations

import json

from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

from apptools import TINY_DATA
from apptools import app as _app
from apptools import button as _button
from apptools import by_label as _by_label
from apptools import metric as _metric
from apptools import show as _show


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
    at.button_group(key="scheme_b_source").set_value("Custom").run()
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
