"""User-supplied text (URL values, file and column names, sample texts, an imported scheme's fields)
inside Markdown-rendering elements: shown literally, never interpreted as Markdown or HTML.

Prefer ``st.text``/``st.code``/dataframes for user text; where it must sit inside a Markdown string
(an error box, a caption, a metric label), wrap it with :func:`code_span` or :func:`escape_markdown`.
"""

from __future__ import annotations

import html
import re

MARKDOWN_SPECIALS = frozenset("\\`*_[]<>!~$")


def code_span(text: str) -> str:
    """``text`` as a Markdown code span: shown literally, whatever backticks it contains."""
    flat = " ".join(str(text).split("\n"))
    longest = max((len(run) for run in re.findall(r"`+", flat)), default=0)
    fence = "`" * (longest + 1)
    return f"{fence} {flat} {fence}"


def escape_markdown(text: str) -> str:
    """``text`` with the characters that make links, images, HTML, emphasis or math backslash-escaped."""
    return "".join("\\" + c if c in MARKDOWN_SPECIALS else c for c in str(text))


def escape_html(text: str) -> str:
    """``text`` for Plotly's HTML-like labels (hover texts, annotations)."""
    return html.escape(str(text), quote=False)
