"""The Overview page: the model's facts and accuracy, choosing a dataset (upload, path in the URL), a bad model."""

from __future__ import annotations

from apptools import TINY_DATA
from apptools import app as _app
from apptools import button as _button
from apptools import metric as _metric
from apptools import show as _show


def test_overview_on_the_demo_shows_its_accuracy(demo_cache):
    at = _app(timeout=900).run()
    assert not at.exception
    assert _metric(at, "Heads") == "6 × 12"
    assert _metric(at, "Accuracy on sst2:dev").endswith("%")
    assert any("72 heads analysed" in c.value for c in at.caption)
    assert any(b.label.startswith("Adopt the proposal") for b in at.sidebar.get("button"))


def test_dataset_from_an_uploaded_csv(tiny_bert_dir, tmp_path):
    rows = "review,stars\n" + "\n".join(
        f"{'great' if i % 2 else 'awful'} film number {i},{'positive' if i % 2 else 'negative'}" for i in range(12)
    )
    at = _app(model=str(tiny_bert_dir), data=TINY_DATA).run()
    at.radio(key="pick-data-kind").set_value("Upload a file").run()
    at.file_uploader(key="pick-data-upload").set_value(("reviews.csv", rows.encode(), "text/csv")).run()
    assert at.selectbox(key="pick-col-text").value == "review"
    assert at.selectbox(key="pick-col-label").value == "stars"
    _button(at, "Use this dataset").click().run()
    assert not at.exception and not at.error
    assert at.session_state["data"].endswith("reviews.csv|text=review|label=stars")
    assert _metric(at, "Accuracy on reviews.csv").endswith("%")


def test_a_csv_path_in_the_url_is_the_dataset(tiny_bert_dir, tmp_path):
    path = tmp_path / "pairs.csv"
    path.write_text("premise,hypothesis,label\n" + "\n".join(f"a cat sat {i},a cat is here,{i % 2}" for i in range(10)) + "\n")
    at = _app(model=str(tiny_bert_dir), data=str(path)).run()
    assert not at.exception and not at.error
    assert any("sentence pairs" in c.value for c in at.caption)
    _show(at, "samples")
    assert "second text" in at.dataframe[0].value.columns


def test_bad_model_gets_a_message_not_a_traceback(tmp_path):
    at = _app(timeout=60, model=str(tmp_path / "missing")).run()
    assert not at.exception
    assert any("does not exist" in e.value for e in at.error)
