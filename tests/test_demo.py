"""The embedded demo model: present, loadable offline, and as accurate as its model card says."""

from __future__ import annotations

import numpy as np

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


def test_held_out_rows_are_whole_sentences_kept_out_of_training():
    from pruning_core.demo import Recipe, held_out_split

    texts = [f"w{i}" for i in range(50)] + [" ".join(["word"] * (10 + i)) for i in range(30)]
    recipe = Recipe(held_out_rows=8, held_out_min_words=10)
    train, held = held_out_split(texts, recipe)
    assert len(held) == 8 and len(train) == len(texts) - 8
    assert not set(train) & set(held) and set(train) | set(held) == set(range(len(texts)))
    assert all(len(texts[i].split()) >= 10 for i in held), "short phrases never choose the checkpoint"
    assert np.array_equal(held, held_out_split(texts, recipe)[1]), "the split is fixed by the seed"
    assert len(held_out_split(texts, Recipe(held_out_rows=0))[1]) == 0


def test_checkpoint_candidates_span_the_end_of_the_run():
    from pruning_core.demo import Recipe, checkpoint_steps

    assert checkpoint_steps(4000, Recipe(select_from=0.5, checkpoints=6)) == [2000, 2400, 2800, 3200, 3600, 4000]
    assert checkpoint_steps(4000, Recipe(held_out_rows=0)) == [4000], "without held-out rows the last step is kept"
