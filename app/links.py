"""Links between pages by their URL path.

The pages are callables, so ``st.page_link`` and ``st.switch_page`` need the ``st.Page`` objects
that ``st.navigation`` runs; the entry point registers them here on every run, and pages link by
URL path without importing each other or the entry point.
"""

from __future__ import annotations

import streamlit as st
from streamlit.navigation.page import StreamlitPage

_PAGES: dict[str, StreamlitPage] = {}


def register(pages: dict[str, StreamlitPage]) -> None:
    """Remember this run's navigation pages by URL path (the default page too, though it is served at ``/``)."""
    _PAGES.update(pages)


def page_link(url_path: str, label: str, icon: str | None = None) -> None:
    st.page_link(_PAGES[url_path], label=label, icon=icon)


def switch_to(url_path: str) -> None:
    st.switch_page(_PAGES[url_path])
