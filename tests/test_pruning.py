"""Physical pruning: masked and pruned logits agree for every architecture; save and reload."""

from __future__ import annotations

import numpy as np
import pytest

from pruning_core import SchemeError, load_model
from pruning_core.batching import encode
from pruning_core.evaluation import forward_logits
from pruning_core.pruning import prune_heads, save_pruned
from pruning_core.schemes import Scheme
from tiny import ARCHITECTURES


def _scheme_with_empty_layer(lm) -> np.ndarray:
    keep = np.ones(lm.shape, dtype=bool)
    keep[1, :] = False  # layer 1 loses every head
    keep[0, 2] = False
    keep[2, [0, 3]] = False
    return keep


def _all_but_one(lm) -> np.ndarray:
    keep = np.zeros(lm.shape, dtype=bool)
    keep[lm.num_layers - 1, 1] = True
    return keep


@pytest.mark.parametrize("arch", ARCHITECTURES)
@pytest.mark.parametrize("make_mask", [_scheme_with_empty_layer, _all_but_one], ids=["empty-layer", "all-but-one"])
def test_masked_and_pruned_logits_agree(arch, make_mask, tiny_dirs, sst2_small):
    lm = load_model(tiny_dirs[arch])
    keep = make_mask(lm)
    encoded = encode(lm, sst2_small)
    masked = forward_logits(lm, encoded, keep, compact=False)
    pruned = prune_heads(lm, keep)
    pruned_logits = forward_logits(pruned, encode(pruned, sst2_small), None)
    assert np.abs(masked - pruned_logits).max() <= 1e-4
    assert pruned.kept_heads == [[h for h in range(lm.num_heads) if keep[layer, h]] for layer in range(lm.num_layers)]
    assert sum(p.numel() for p in pruned.model.parameters()) < sum(p.numel() for p in lm.model.parameters())


@pytest.mark.parametrize("arch", ["bert", "distilbert"])
def test_save_and_reload_round_trip(arch, tiny_dirs, sst2_small, tmp_path):
    lm = load_model(tiny_dirs[arch])
    fingerprint = lm.fingerprint
    pruned = prune_heads(lm, _scheme_with_empty_layer(lm))
    assert load_model(tiny_dirs[arch]).fingerprint == fingerprint == lm.fingerprint, "the original must be untouched"
    folder = save_pruned(pruned, tmp_path / "pruned")
    reloaded = load_model(folder)
    assert reloaded.kept_heads == pruned.kept_heads
    assert reloaded.shape == lm.shape
    before = forward_logits(pruned, encode(pruned, sst2_small))
    after = forward_logits(reloaded, encode(reloaded, sst2_small))
    assert np.abs(before - after).max() <= 1e-6
    # a masked evaluation of the reloaded model still addresses heads by their original indices
    keep = np.ones(lm.shape, dtype=bool)
    keep[2, 1] = False
    both = forward_logits(lm, encode(lm, sst2_small), _scheme_with_empty_layer(lm) & keep)
    assert np.abs(forward_logits(reloaded, encode(reloaded, sst2_small), keep) - both).max() <= 1e-4


def test_plain_from_pretrained_explains_instead_of_shape_error(tiny_bert, tmp_path):
    from transformers import AutoModelForSequenceClassification

    folder = save_pruned(prune_heads(tiny_bert, _all_but_one(tiny_bert)), tmp_path / "pruned")
    with pytest.raises(Exception) as info:
        AutoModelForSequenceClassification.from_pretrained(folder)
    message = str(info.value)
    assert "pruning_core.load_model" in message and "size mismatch" not in message.lower()


def test_pruning_twice_composes(tiny_bert, sst2_small):
    lm = tiny_bert
    first = np.ones(lm.shape, dtype=bool)
    first[0, :2] = False
    second = np.ones(lm.shape, dtype=bool)
    second[0, 2] = False
    second[2, 3] = False
    twice = prune_heads(prune_heads(lm, first), second)
    once = prune_heads(lm, first & second)
    assert twice.kept_heads == once.kept_heads
    e = encode(lm, sst2_small)
    assert np.abs(forward_logits(twice, e) - forward_logits(once, e)).max() <= 1e-5


def test_pruning_every_head_is_refused(tiny_bert):
    with pytest.raises(SchemeError, match="every attention head"):
        prune_heads(tiny_bert, np.zeros(tiny_bert.shape, dtype=bool))


def test_scheme_of_another_shape_is_refused(tiny_bert):
    with pytest.raises(SchemeError, match="6 layers x 12 heads"):
        prune_heads(tiny_bert, Scheme(6, 12, frozenset({(0, 0)})))
