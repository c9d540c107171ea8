"""A table of rows at full width, without the index, with per-column formats."""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st


def visualize_table(rows: Sequence[dict], *, key: str | None = None, columns: dict | None = None, **options) -> None:
    """Draw ``rows`` (dicts of equal keys); ``columns`` maps column names to ``st.column_config`` entries."""
    st.dataframe(rows, hide_index=True, width="stretch", column_config=columns, key=key, **options)
