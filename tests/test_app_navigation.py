"""Every page through the app's navigation, on the demo, a tiny model and other architectures; state restored from the URL."""

from __future__ import annotations

import pytest

from apptools import PAGES, TINY_DATA
from apptools import app as _app
from apptools import by_label as _by_label
from apptools import metric as _metric
from apptools import show as _show


def test_every_page_renders_on_the_demo(demo_cache):
    at = _app(timeout=900, scheme="0.1,3.4", sel="2.3").run()
    for page in PAGES:
        _show(at, page)
        assert at.title[0].value
        if page == "process":
            assert not any(b.label == "Compute the pruning curves" for b in at.button), "the demo ships its curves"
            assert any("shipped with the demo" in t.value for t in at.text), "the page says where the curves come from"
    assert at.query_params["scheme"] == "0.1,3.4"
    assert at.query_params["sel"] == "2.3"


def test_every_page_renders_on_a_tiny_model(tiny_bert_dir):
    at = _app(model=str(tiny_bert_dir), data=TINY_DATA).run()
    assert not at.exception
    assert _metric(at, "Heads") == "3 × 4"
    for page in PAGES:
        _show(at, page)


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


def test_bad_scheme_in_the_url_gets_a_warning(tiny_bert_dir):
    at = _app(model=str(tiny_bert_dir), data=TINY_DATA, scheme="9.9").run()
    assert not at.exception
    assert any("Ignoring the scheme" in w.value for w in at.warning)
    assert at.session_state["scheme"] == "none"


@pytest.mark.parametrize("arch", ["distilbert", "roberta", "electra"])
def test_evidence_pages_on_other_architectures(tiny_dirs, arch):
    at = _app(model=str(tiny_dirs[arch]), data=TINY_DATA, sel="1.1").run()
    assert not at.exception and not at.error
    for page in ("heads", "dependencies", "samples"):
        _show(at, page)
