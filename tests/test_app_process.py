"""The Pruning process page: computing curves and loading a point as the scheme."""

from __future__ import annotations

from apptools import app as _app
from apptools import button as _button
from apptools import by_label as _by_label
from apptools import show as _show
from apptools import sidebar_metric as _sidebar_metric


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
