"""Bad input in the dashboard (AppTest): every item gets a clear message, never a traceback, and the
user's model, dataset, scheme and results stay as they were.

Each test starts a session on a tiny model with a scheme (``?scheme=0.1,1.2``), then feeds one bad
input the way a user would: the Overview's model and data pickers (upload, local folder, hub id),
the scheme page's JSON import, or a hand-edited URL.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from apptools import PAGES, TINY_DATA, app, open_page, shown_text
from apptools import button as _button
from apptools import sidebar_metric as _sidebar_metric

SCHEME = "0.1,1.2"


def _app(timeout: float = 180, **params: str) -> AppTest:
    return app(timeout, **params)


def _has_button(at: AppTest, label_start: str) -> bool:
    return any(b.label.startswith(label_start) for b in at.button)


def _errors(at: AppTest) -> list[str]:
    return [shown_text(e.value) for e in at.error]


def _start(model: Path) -> AppTest:
    """A session on the tiny model with a two-head scheme, its sidebar metrics computed."""
    at = _app(model=str(model), data=TINY_DATA, scheme=SCHEME).run()
    assert not at.exception and not at.error, _errors(at)
    return at


def _assert_kept(at: AppTest, model: Path, accuracy: str, data: str = TINY_DATA) -> None:
    """No traceback; model, data and scheme as before; the scheme's results still shown."""
    assert not at.exception, at.exception
    assert at.session_state["model"] == str(model)
    assert at.session_state["data"] == data
    assert at.session_state["scheme"] == SCHEME
    assert at.query_params["scheme"] == SCHEME
    assert _sidebar_metric(at, "Accuracy") == accuracy


def upload_data(at: AppTest, name: str, raw: bytes) -> None:
    """Overview → Model and dataset → Upload a file, then "Use this dataset" when the file could be read."""
    at.radio(key="pick-data-kind").set_value("Upload a file").run()
    at.file_uploader(key="pick-data-upload").set_value((name, raw, "text/csv")).run()
    if _has_button(at, "Use this dataset"):
        _button(at, "Use this dataset").click().run()


def open_model(at: AppTest, kind: str, source: str) -> None:
    """Overview → Model and dataset → a local folder or hub id, then "Load model"."""
    at.radio(key="pick-model-kind").set_value(kind).run()
    at.text_input(key="pick-model-folder" if kind == "Local folder" else "pick-model-hub").input(source).run()
    _button(at, "Load model").click().run()


def import_scheme(at: AppTest, name: str, raw: bytes) -> None:
    """Scheme & export → Import scheme JSON."""
    open_page(at, "scheme").run()
    at.file_uploader(key="scheme-import").set_value((name, raw, "application/json")).run()


# --- data files ------------------------------------------------------------------------------------

_ROWS = "\n".join(f"{'a fine' if i % 2 else 'a dull'} film {i},{i % 2}" for i in range(8))

BAD_FILES = {
    "missing label column": ("reviews.csv", b"text\nhello there\ngood film\n", "has a single column ('text') in its header"),
    "label the model does not know": (
        "reviews.csv",
        b"text,label\nhello there,positive\nawful film,neutral\n",
        "Label(s) ['neutral'] are not known to the model",
    ),
    "mixed label types": ("reviews.csv", b"text,label\nhello there,1\nawful film,negative\n", "The label column mixes numbers and names"),
    "empty file": ("empty.csv", b"", "is empty. It needs a header row and at least one labelled row"),
    "not UTF-8": ("latin1.csv", "text,label\ncafé crème,1\n".encode("latin-1"), "is not valid UTF-8 (byte"),
    "binary renamed .csv": ("sheet.csv", b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00binary", "looks like a binary file"),
}


@pytest.mark.parametrize("item", list(BAD_FILES))
def test_bad_uploaded_data_file(item, tiny_bert_dir):
    name, raw, phrase = BAD_FILES[item]
    at = _start(tiny_bert_dir)
    accuracy = _sidebar_metric(at, "Accuracy")
    upload_data(at, name, raw)
    assert any(phrase in m for m in _errors(at)), _errors(at)
    _assert_kept(at, tiny_bert_dir, accuracy)


@pytest.mark.parametrize(
    "options, phrase",
    [
        ("text=text|label=lable", "has no label column 'lable'; its columns are ['text', 'label']. Did you mean 'label'?"),
        ("text=review|label=label", "has no text column 'review'; its columns are ['text', 'label']"),
    ],
)
def test_misspelled_column_in_a_shared_link(options, phrase, tiny_bert_dir, tmp_path):
    path = tmp_path / "reviews.csv"
    path.write_text("text,label\n" + _ROWS + "\n")
    at = _app(model=str(tiny_bert_dir), data=f"{path}|{options}", scheme=SCHEME).run()
    assert not at.exception
    assert any(phrase in m for m in _errors(at)), _errors(at)
    assert at.session_state["scheme"] == SCHEME and at.query_params["scheme"] == SCHEME
    assert any("Choose another model or dataset" in i.value for i in at.info)


def test_one_enormous_text_is_truncated_with_a_notice(tiny_bert_dir):
    at = _start(tiny_bert_dir)
    enormous = " ".join(f"word{i % 97}" for i in range(30_000))  # about 200,000 characters, beyond csv's default field limit
    raw = ("text,label\n" + _ROWS + f"\n{enormous},1\n").encode()
    upload_data(at, "long.csv", raw)
    assert not at.exception and not at.error, _errors(at)
    assert at.session_state["data"].endswith("long.csv|text=text|label=label")
    assert at.session_state["scheme"] == SCHEME
    phrase = "1 sample(s) longer than 130 tokens were truncated."
    assert any(phrase in i.value for i in at.info), "the overview shows the notice"
    assert any(phrase in w.value for w in at.sidebar.get("warning")), "the sidebar shows it on every page"
    for page in ("samples", "dependencies"):
        open_page(at, page).run()
        assert not at.exception and not at.error, (page, _errors(at))
    at.number_input(key="deps-sample").set_value(8).run()
    assert not at.exception and not at.error, _errors(at)
    assert any(f"This text has {len(enormous):,} characters; the view shows its first 1,000" in i.value for i in at.info)


# --- scheme files ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, raw, phrase",
    [
        (
            "other-model.json",
            json.dumps({"model": "bert-base", "num_layers": 12, "num_heads": 12, "pruned": [[11, 11]]}).encode(),
            "This scheme is for a model with 12 layers x 12 heads, but the loaded model has 3 x 4",
        ),
        ("broken.json", b'{"num_layers": 3, "num_heads": 4, "pruned": [[0, 1]', "The scheme is not valid JSON"),
        ("fields.json", json.dumps({"num_layers": 3, "pruned": [[0, 1]]}).encode(), "The scheme lacks the field(s) ['num_heads']"),
    ],
    ids=["another model shape", "malformed JSON", "missing field"],
)
def test_bad_scheme_file(name, raw, phrase, tiny_bert_dir):
    at = _start(tiny_bert_dir)
    accuracy = _sidebar_metric(at, "Accuracy")
    import_scheme(at, name, raw)
    assert any(phrase in m for m in _errors(at)), _errors(at)
    assert not _has_button(at, "Use as current (A)")
    _assert_kept(at, tiny_bert_dir, accuracy)


def test_a_scheme_pruning_every_head_works_on_every_page(tiny_bert_dir):
    at = _start(tiny_bert_dir)
    every = {"num_layers": 3, "num_heads": 4, "pruned": [[layer, head] for layer in range(3) for head in range(4)]}
    import_scheme(at, "everything.json", json.dumps(every).encode())
    _button(at, "Use as current (A)").click().run()
    assert not at.exception and not at.error, _errors(at)
    assert at.session_state["scheme"].count(",") == 11
    notice = "Every head is gated off: the model sees no interaction between tokens."
    assert any(notice in w.value for w in at.sidebar.get("warning")), [w.value for w in at.sidebar.get("warning")]
    for page in PAGES:
        open_page(at, page).run()
        assert not at.exception and not at.error, (page, at.exception, _errors(at))
    _button(at, "Prune 12 heads, check and time it").click().run()
    assert not at.exception
    assert _errors(at) == ["The scheme removes every attention head; keep at least one head to build a model."]
    assert at.session_state["scheme"].count(",") == 11


# --- model sources ---------------------------------------------------------------------------------


BAD_MODELS = {
    "folder does not exist": ("missing", "does not exist. Check the path, or use `demo` for the embedded model."),
    "folder is not a model": ("notes", "is not a model folder: it has no config.json"),
    "unsupported architecture": ("gpt2", "Architecture 'gpt2' is not supported. bhpvas supports sequence classifiers of type:"),
    "no classification head": ("encoder", "has no trained classification head"),
}


@pytest.mark.parametrize("item", list(BAD_MODELS))
def test_bad_model_folder(item, bad_model_dirs, tiny_bert_dir):
    name, phrase = BAD_MODELS[item]
    at = _start(tiny_bert_dir)
    accuracy = _sidebar_metric(at, "Accuracy")
    open_model(at, "Local folder", str(bad_model_dirs[name]))
    assert any(phrase in m for m in _errors(at)), _errors(at)
    _assert_kept(at, tiny_bert_dir, accuracy)


def test_hub_id_without_network(tiny_bert_dir, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    at = _start(tiny_bert_dir)
    accuracy = _sidebar_metric(at, "Accuracy")
    open_model(at, "Hub id", "someone/some-model")
    phrase = "the Hugging Face Hub cannot be reached from this machine (no network)"
    assert any(phrase in m for m in _errors(at)), _errors(at)
    _assert_kept(at, tiny_bert_dir, accuracy)


def test_a_bad_model_in_a_shared_link_gets_a_message(tiny_bert_dir, bad_model_dirs):
    at = _app(timeout=60, model=str(bad_model_dirs["gpt2"]), data=TINY_DATA, scheme=SCHEME).run()
    assert not at.exception
    assert any("Architecture 'gpt2' is not supported" in m for m in _errors(at))
    assert at.session_state["scheme"] == SCHEME


@pytest.mark.parametrize(
    "data, phrase",
    [
        ("sst2|rows=²", "must be a positive whole number"),
        ("sst2|rows=1e400", "must be a positive whole number"),
        ("/srv/data/reviews\x00.csv|text=text|label=label", "NUL byte"),
        ("sst2\x00", "NUL byte"),
    ],
    ids=["superscript-rows", "huge-rows", "nul-in-path", "nul-in-name"],
)
def test_a_bad_data_value_in_a_shared_link_leaves_the_session_usable(data, phrase, tiny_bert_dir):
    """``?data=`` with a row count that ``isdigit`` accepts but ``int`` refuses, or a NUL byte: a
    message, then the dataset picker still works and the session computes its results."""
    at = _app(model=str(tiny_bert_dir), data=data, scheme=SCHEME).run()
    assert not at.exception
    assert any(phrase in m for m in _errors(at)), _errors(at)
    at.radio(key="pick-data-kind").set_value("Bundled SST-2").run()
    at.number_input(key="pick-data-rows").set_value(24).run()
    _button(at, "Use this dataset").click().run()
    assert not at.exception and not _errors(at), _errors(at)
    assert at.session_state["data"] == "sst2|rows=24" and at.session_state["scheme"] == SCHEME
    assert _sidebar_metric(at, "Accuracy").endswith("%")
