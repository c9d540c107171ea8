"""What the browser shows before the dashboard's heavy imports: the page configuration and, on a
server process's first script run, a notice that it is starting.

Imports only Streamlit, so ``app/main.py`` can draw the notice before importing the dashboard
(PyTorch, transformers and the pages take seconds to import once per server process).
"""

from __future__ import annotations

import sys

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

PAGE_CONFIG = {"page_title": "bhpvas: attention head pruning", "page_icon": ":scissors:", "layout": "wide"}
STARTING = (
    "Starting bhpvas: the first visit after the server starts loads PyTorch, the model and the data, "
    "which takes a few seconds; the page follows, and later visits open at once."
)


def starting_notice() -> DeltaGenerator:
    """Configure the page and return the starting notice's placeholder, to be emptied once the
    sidebar is ready; the notice shows only on this process's first run (the dashboard not imported
    yet). The placeholder is there on every run, so the page's elements keep their positions from
    run to run (a moved element is drawn anew: an open expander would close)."""
    st.set_page_config(**PAGE_CONFIG)
    placeholder = st.empty()
    if "app.shell" not in sys.modules:
        placeholder.info(STARTING, icon=":material/hourglass_top:")
    return placeholder
