"""The sidebar: the current scheme's metrics follow the scheme; adopting the BHPVAS proposal."""

from __future__ import annotations

from apptools import TINY_DATA
from apptools import app as _app
from apptools import button as _button
from apptools import by_label as _by_label
from apptools import show as _show
from apptools import sidebar_metric as _sidebar_metric


def test_sidebar_metrics_follow_the_scheme(demo_cache):
    at = _app(timeout=900).run()
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
