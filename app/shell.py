"""One run of the dashboard: page config, navigation, session state, sidebar, then the chosen page."""

from __future__ import annotations

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

import pages.dependencies
import pages.heads
import pages.overview
import pages.process
import pages.samples
import pages.scheme
from app import links
from app.sidebar import render_sidebar
from app.state import init_state

PAGE_TABLE = (
    (pages.overview.render, "Overview", ":material/dashboard:", "overview"),
    (pages.heads.render, "Heads", ":material/grid_view:", "heads"),
    (pages.process.render, "Pruning process", ":material/trending_down:", "process"),
    (pages.samples.render, "Samples", ":material/list_alt:", "samples"),
    (pages.dependencies.render, "Dependencies", ":material/account_tree:", "dependencies"),
    (pages.scheme.render, "Scheme & export", ":material/content_cut:", "scheme"),
)


def run_app(starting: DeltaGenerator) -> None:
    """Navigation, session state, the sidebar, then the page (the page configuration is set by
    :func:`app.boot.starting_notice`); ``starting``: that function's placeholder, emptied once the
    sidebar has loaded the model and data."""
    registered = {
        url_path: st.Page(render, title=title, icon=icon, url_path=url_path, default=index == 0)
        for index, (render, title, icon, url_path) in enumerate(PAGE_TABLE)
    }
    links.register(registered)
    navigation = st.navigation(list(registered.values()))
    init_state()
    try:
        render_sidebar()
    finally:
        starting.empty()
    navigation.run()
