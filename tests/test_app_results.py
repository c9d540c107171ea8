"""Results written by the command line elsewhere open in the app, only for their own model and data."""

import os
import subprocess
import sys

from apptools import app, button, open_page
from pruning_core import load_dataset


def _csv(path, rows, start=0):
    """``rows`` SST-2 dev sentences from ``start`` (other tests use the first rows: the app's stores outlive one AppTest)."""
    data = load_dataset("sst2").subset(range(start, start + rows))
    path.write_text("sentence,label\n" + "".join(f'"{t}",{y}\n' for t, y in zip(data.texts, data.labels, strict=True)))
    return path


def _cli_curves(model_dir, data, out, cache):
    command = [sys.executable, "-m", "pruning_core", "curves", "--model", str(model_dir), "--data", str(data)]
    command += ["--strategies", "importance", "--step", "0.25", "--random-seeds", "2", "--no-refine", "--out", str(out), "--no-progress"]
    subprocess.run(command, check=True, capture_output=True, env={**os.environ, "BHPVAS_CACHE_DIR": str(cache)})


def test_results_from_the_cli_open_in_the_app_and_fill_the_process_page(tiny_bert_dir, tmp_path):
    data = _csv(tmp_path / "reviews.csv", 24, start=200)
    _cli_curves(tiny_bert_dir, data, tmp_path / "results", tmp_path / "cli-cache")
    at = app(timeout=300, model=str(tiny_bert_dir), data=str(data)).run()
    assert not at.exception
    at.text_input(key="pick-results-path").set_value(str(tmp_path / "results")).run()
    button(at, "Open these results").click().run()
    assert not at.exception and not at.error
    assert any("Opened" in s.value and "curves" in s.value for s in at.success)
    open_page(at, "process").run()
    assert not at.exception and not at.error
    assert not [b for b in at.button if b.label.startswith("Compute the pruning curves")], "the opened curves are shown, not offered"
    assert any("results" in t.value and "computed" in t.value for t in at.text)


def test_results_for_other_data_are_refused_with_a_clear_message(tiny_bert_dir, tmp_path):
    other = _csv(tmp_path / "other.csv", 30, start=300)
    _cli_curves(tiny_bert_dir, other, tmp_path / "results", tmp_path / "cli-cache")
    data = _csv(tmp_path / "reviews.csv", 20, start=400)
    at = app(timeout=300, model=str(tiny_bert_dir), data=str(data)).run()
    at.text_input(key="pick-results-path").set_value(str(tmp_path / "results")).run()
    button(at, "Open these results").click().run()
    assert not at.exception
    assert any("were computed for the data" in e.value for e in at.error)
    open_page(at, "process").run()
    assert [b for b in at.button if b.label.startswith("Compute the pruning curves")], "nothing was adopted"
