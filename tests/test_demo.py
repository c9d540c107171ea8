"""The embedded demo model: present, loadable offline, and as accurate as its model card says."""

from __future__ import annotations

from pruning_core import evaluate, load_dataset, load_model
from pruning_core.demo import DEMO_DIR, demo_available, read_card


def test_demo_model_is_committed_and_small():
    assert demo_available(), f"the demo model must be committed under {DEMO_DIR}"
    assert (DEMO_DIR / "model.safetensors").stat().st_size < 50 * 2**20


def test_demo_dev_accuracy_matches_model_card():
    card = read_card()
    lm = load_model("demo")
    assert lm.shape == (6, 12) and lm.describe()["architecture"] == "BERT"
    result = evaluate(lm, load_dataset("sst2"))
    assert result.n == card["dev_rows"] == 872
    assert abs(result.accuracy - card["dev_accuracy"]) <= 1e-3
