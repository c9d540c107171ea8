"""Module surgery: shrinking heads out of a model, weight-sharing copies and the eager twin."""

from __future__ import annotations

import numpy as np
import torch

from pruning_core.surgery import HeadlessAttention, eager_twin, shrunk_copy, weight_sharing_copy


def _shrunk(lm, keep, share_weights=False):
    return shrunk_copy(lm.model, lm.adapter, lm.kept_heads, lm.head_dim, keep, share_weights=share_weights)


def test_pruned_attention_block_of_empty_layer_adds_only_bias(tiny_bert):
    lm = tiny_bert
    keep = np.ones(lm.shape, dtype=bool)
    keep[1, :] = False
    model = _shrunk(lm, keep)
    layer = lm.adapter.layers(model)[1]
    assert isinstance(lm.adapter.attention_core(layer), HeadlessAttention)
    out_proj = lm.adapter.out_proj(layer)
    assert out_proj.weight.shape[1] == 0
    hidden = torch.randn(2, 5, lm.num_heads * lm.head_dim)
    with torch.no_grad():
        context, _ = lm.adapter.attention_core(layer)(hidden)
        assert torch.allclose(out_proj(context), out_proj.bias.expand(2, 5, -1))


def test_shrunk_copy_slices_the_kept_heads_and_leaves_the_model_alone(tiny_bert):
    lm = tiny_bert
    before = {name: p.detach().clone() for name, p in lm.model.named_parameters()}
    keep = np.ones(lm.shape, dtype=bool)
    keep[0, [1, 3]] = False
    for share in (False, True):
        model = _shrunk(lm, keep, share_weights=share)
        q, k, v = lm.adapter.qkv(lm.adapter.layers(model)[0])
        assert q.out_features == k.out_features == v.out_features == 2 * lm.head_dim
        original_q, _, _ = lm.adapter.qkv(lm.adapter.layers(lm.model)[0])
        kept_rows = torch.cat([original_q.weight[h * lm.head_dim : (h + 1) * lm.head_dim] for h in (0, 2)])
        assert torch.equal(q.weight, kept_rows)
        untouched, _, _ = lm.adapter.qkv(lm.adapter.layers(model)[2])
        original, _, _ = lm.adapter.qkv(lm.adapter.layers(lm.model)[2])
        assert (untouched.weight.data_ptr() == original.weight.data_ptr()) == share
        assert not model.training
    for name, p in lm.model.named_parameters():
        assert torch.equal(p, before[name]), name


def test_weight_sharing_copy_shares_tensors_but_not_modules(tiny_bert):
    twin = weight_sharing_copy(tiny_bert.model)
    assert all(a.data_ptr() == b.data_ptr() for a, b in zip(twin.parameters(), tiny_bert.model.parameters()))
    layers = tiny_bert.adapter.layers(twin)
    assert layers[0] is not tiny_bert.adapter.layers(tiny_bert.model)[0]


def test_eager_twin_returns_attention_weights_of_the_same_model(tiny_bert, sst2_small):
    twin = eager_twin(tiny_bert.model)
    batch = tiny_bert.tokenizer(list(sst2_small.texts[:2]), padding=True, return_tensors="pt")
    with torch.no_grad():
        out = twin(**batch, output_attentions=True)
        reference = tiny_bert.model(**batch).logits
    assert len(out.attentions) == tiny_bert.num_layers and out.attentions[0].shape[1] == tiny_bert.num_heads
    assert torch.allclose(out.logits, reference, atol=1e-5)
