"""Leave-one-out on the fast path (one full pass per batch, each head's share subtracted from its
layer's output projection) gives the logits of evaluating each one-head-off mask in full."""

from __future__ import annotations

import numpy as np
import pytest

from pruning_core import load_model
from pruning_core.ablation import head_off_logits
from pruning_core.batching import encode
from pruning_core.evaluation import forward_logits
from pruning_core.pruning import prune_heads
from tiny import ARCHITECTURES


def _assert_each_head_matches_its_own_evaluation(lm, encoded):
    logits = head_off_logits(lm, encoded, max_tokens=200)
    present = lm.present_mask()
    assert set(logits) == {(int(layer), int(head)) for layer, head in zip(*np.nonzero(present))}
    for (layer, head), got in logits.items():
        keep = present.copy()
        keep[layer, head] = False
        want = forward_logits(lm, encoded, keep, max_tokens=200, compact=False)
        assert np.abs(got - want).max() <= 1e-5, (layer, head)


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_every_head_off_equals_its_plain_gated_evaluation(arch, tiny_dirs, sst2_small):
    lm = load_model(tiny_dirs[arch], precision="fp32")
    _assert_each_head_matches_its_own_evaluation(lm, encode(lm, sst2_small))


def test_on_a_pruned_model_with_a_single_head_left_in_a_layer(tiny_bert, sst2_small):
    keep = np.ones(tiny_bert.shape, dtype=bool)
    keep[1, 1:] = False
    keep[2, 0] = False
    pruned = prune_heads(tiny_bert, keep)
    _assert_each_head_matches_its_own_evaluation(pruned, encode(pruned, sst2_small))
