"""The Heads page: a head's toggle reruns the linked views and the sidebar's panels (fragments), and
the sidebar follows the scheme."""

from __future__ import annotations

from apptools import TINY_DATA, open_page
from apptools import app as _app
from apptools import button as _button


def _pruned_caption(at) -> str:
    return next(c.value for c in at.sidebar.get("caption") if "heads pruned" in c.value)


def test_toggling_a_head_updates_the_sidebar_panel(tiny_bert_dir):
    at = _app(model=str(tiny_bert_dir), data=TINY_DATA, sel="1.2").run()
    open_page(at, "heads").run()
    assert not at.exception and not at.error
    assert _pruned_caption(at).startswith("0 of 12 heads pruned")
    _button(at, "Prune this head").click().run()
    assert not at.exception
    assert at.session_state["scheme"] == "1.2" and at.query_params["scheme"] == "1.2"
    assert _pruned_caption(at).startswith("1 of 12 heads pruned")
    _button(at, "Keep this head").click().run()
    assert at.session_state["scheme"] == "none"
    assert _pruned_caption(at).startswith("0 of 12 heads pruned")
