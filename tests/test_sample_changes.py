"""What a scheme changed per sample against the full model."""

from __future__ import annotations

import numpy as np

from pruning_core.evaluation import evaluate
from pruning_core.sample_changes import sample_changes
from pruning_core.schemes import Scheme


def test_the_full_model_changes_nothing(tiny_bert, sst2_small):
    full = evaluate(tiny_bert, sst2_small)
    changes = sample_changes(full, full)
    assert not changes.flipped.any() and np.allclose(changes.delta_label, 0)
    assert (changes.correct == (full.preds == full.labels)).all()


def test_flipped_samples_come_first_then_by_lost_probability(tiny_bert, sst2_small):
    full = evaluate(tiny_bert, sst2_small)
    every_head = {(layer, head) for layer in range(tiny_bert.num_layers) for head in range(tiny_bert.num_heads)}
    current = evaluate(tiny_bert, sst2_small, Scheme(tiny_bert.num_layers, tiny_bert.num_heads, frozenset(every_head - {(0, 0)})))
    changes = sample_changes(full, current)
    assert (changes.flipped == (current.preds != full.preds)).all()
    flipped = changes.flipped[changes.order]
    assert list(flipped) == sorted(flipped, reverse=True)
    for group in (True, False):
        deltas = changes.delta_label[changes.order][flipped == group]
        assert list(deltas) == sorted(deltas)
    assert sorted(changes.order.tolist()) == list(range(current.n))
