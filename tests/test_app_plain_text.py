"""User-supplied text is shown literally: a URL value, a scheme file's name and ``model`` field and a
sample text that carry Markdown (an image link to an address of the attacker's choosing) never
reach the page as Markdown that renders an image or a link."""

from __future__ import annotations

import json

from markdown_it import MarkdownIt

from app.plain import code_span, escape_markdown
from apptools import TINY_DATA, open_page
from apptools import app as _app

IMAGE = "![x](http://127.0.0.1:9/p.png)"
MARKDOWN_ELEMENTS = ("markdown", "caption", "warning", "error", "info", "success", "title", "subheader")


def _rendered(at) -> list[str]:
    """The HTML that every Markdown-rendering element and metric label of the last run would show."""
    renderer = MarkdownIt("commonmark")
    sources = [e.value for kind in MARKDOWN_ELEMENTS for e in at.get(kind)]
    sources += [m.label for m in at.get("metric")]
    return [renderer.render(str(text)) for text in sources]


def _fetches_an_address(at) -> list[str]:
    return [html for html in _rendered(at) if "<img" in html or "<a href" in html]


def test_code_span_and_escaping_keep_text_literal():
    renderer = MarkdownIt("commonmark")
    for text in (IMAGE, "a`b ![x](y) ``c", "<img src=x>"):
        assert "<img" not in renderer.render(code_span(text)) and "<a " not in renderer.render(code_span(text))
        assert "<img" not in renderer.render(escape_markdown(text)) and "<a " not in renderer.render(escape_markdown(text))
    assert renderer.render(code_span("a`b")).strip() == "<p><code>a`b</code></p>"


def test_a_selection_in_the_url_is_not_markdown(tiny_bert_dir):
    at = _app(model=str(tiny_bert_dir), data=TINY_DATA, sel=IMAGE, scheme=IMAGE).run()
    assert not at.exception
    assert any("Ignoring the selection" in w.value for w in at.warning)
    assert not _fetches_an_address(at), _fetches_an_address(at)


def test_an_imported_schemes_name_and_model_are_not_markdown(tiny_bert_dir):
    at = _app(model=str(tiny_bert_dir), data=TINY_DATA).run()
    open_page(at, "scheme").run()
    raw = json.dumps({"num_layers": 3, "num_heads": 4, "pruned": [[0, 1]], "model": f"a` {IMAGE} `b"}).encode()
    at.file_uploader(key="scheme-import").set_value((f"{IMAGE}.json", raw, "application/json")).run()
    assert not at.exception
    assert any("made for" in w.value for w in at.warning)
    assert not _fetches_an_address(at), _fetches_an_address(at)


def test_sample_texts_and_column_names_are_not_markdown(tiny_bert_dir, tmp_path):
    path = tmp_path / "tricky.csv"
    rows = [f"{IMAGE} film {i},{i % 2}" for i in range(6)]
    path.write_text("text,label\n" + "\n".join(rows) + "\n")
    at = _app(model=str(tiny_bert_dir), data=str(path)).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert not _fetches_an_address(at), _fetches_an_address(at)
    open_page(at, "samples").run()
    assert not at.exception
    assert any(IMAGE in t.value for t in at.get("text")), "the sample's text is shown, as plain text"
    assert not _fetches_an_address(at), _fetches_an_address(at)
