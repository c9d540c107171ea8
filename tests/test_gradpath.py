"""The packed gated forward (gate gradients for importance, Michel and DSP) gives the eager gated
model's logits and gate gradients, for every architecture, with per-sample and shared gates."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pruning_core import load_model
from pruning_core.batching import collate, encode, length_batches
from pruning_core.gradpath import gated_logits
from pruning_core.pruning import prune_heads
from tiny import ARCHITECTURES


def _eager(lm, batch, gates):
    model = lm.eager_model()
    with lm.gated(gates, model=model):
        return model(**batch).logits


def _logits_and_gradients(forward, lm, batch, labels, gates):
    gates = gates.clone().requires_grad_(True)
    logits = forward(lm, batch, gates)
    loss = torch.nn.functional.cross_entropy(logits.float(), labels, reduction="sum")
    (grad,) = torch.autograd.grad(loss, gates)
    return logits.detach(), grad


def _batches(lm, data):
    encoded = encode(lm, data)
    for indices in length_batches(encoded.lengths, 160)[:3]:
        yield collate(encoded, indices, lm.pad_id, lm.device), torch.as_tensor(encoded.labels[indices])


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_packed_gates_give_the_eager_logits_and_gradients(arch, tiny_dirs, sst2_small):
    lm = load_model(tiny_dirs[arch], precision="fp32")
    rng = np.random.default_rng(0)
    for batch, labels in _batches(lm, sst2_small):
        rows = len(labels)
        keep = rng.random(lm.shape) > 0.3
        per_sample = torch.as_tensor(np.broadcast_to(keep, (rows, *lm.shape)).copy(), dtype=torch.float32)
        soft = torch.as_tensor(rng.random(lm.shape), dtype=torch.float32)
        for gates in (per_sample, soft):
            logits, grad = _logits_and_gradients(gated_logits, lm, batch, labels, gates)
            want_logits, want_grad = _logits_and_gradients(_eager, lm, batch, labels, gates)
            assert torch.allclose(logits, want_logits, atol=1e-5), arch
            assert torch.allclose(grad, want_grad, rtol=1e-4, atol=1e-6), arch
            assert grad.abs().sum() > 0


def test_a_gated_off_head_keeps_a_gradient_as_with_head_mask(tiny_bert, sst2_small):
    batch, labels = next(_batches(tiny_bert, sst2_small))
    keep = np.ones(tiny_bert.shape, dtype=np.float32)
    keep[1, 2] = 0
    _, grad = _logits_and_gradients(gated_logits, tiny_bert, batch, labels, torch.as_tensor(keep))
    assert grad[1, 2] != 0


def test_on_a_physically_pruned_model_absent_heads_get_no_gradient(tiny_bert, sst2_small):
    keep = np.ones(tiny_bert.shape, dtype=bool)
    keep[0, 1] = keep[2, 3] = False
    pruned = prune_heads(tiny_bert, keep)
    batch, labels = next(_batches(pruned, sst2_small))
    gates = torch.ones(pruned.shape)
    logits, grad = _logits_and_gradients(gated_logits, pruned, batch, labels, gates)
    want_logits, want_grad = _logits_and_gradients(_eager, pruned, batch, labels, gates)
    assert torch.allclose(logits, want_logits, atol=1e-5)
    assert torch.allclose(grad, want_grad, rtol=1e-4, atol=1e-6)
    assert grad[0, 1] == 0 and grad[2, 3] == 0 and grad[0, 0] != 0
