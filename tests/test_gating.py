"""Head gating: equals zeroing a head's context by hand, leaves the model untouched, thread-safe."""

from __future__ import annotations

import threading

import numpy as np
import torch

from pruning_core.batching import encode
from pruning_core.evaluation import forward_logits


def _manual_zeroing(lm, heads):
    """Forward pre-hooks, written independently of pruning_core, that zero the given heads' context."""
    handles = []
    for layer_index, layer in enumerate(lm.adapter.layers(lm.model)):
        dead = [h for (l_, h) in heads if l_ == layer_index]
        if not dead:
            continue

        def hook(module, args, dead=dead):
            context = args[0].clone()
            for h in dead:
                context[..., h * lm.head_dim : (h + 1) * lm.head_dim] = 0
            return (context,)

        handles.append(lm.adapter.out_proj(layer).register_forward_pre_hook(hook))
    return handles


def _all_hooks(model):
    return sum(len(m._forward_pre_hooks) + len(m._forward_hooks) for m in model.modules())


def test_gating_equals_zeroing_context_by_hand(tiny_bert, sst2_small):
    lm = tiny_bert
    encoded = encode(lm, sst2_small)
    heads = [(0, 1), (1, 0), (1, 3), (2, 2)]
    keep = np.ones(lm.shape, dtype=bool)
    for layer, head in heads:
        keep[layer, head] = False
    gated = forward_logits(lm, encoded, keep, compact=False)
    handles = _manual_zeroing(lm, heads)
    try:
        by_hand = forward_logits(lm, encoded, None, compact=False)
    finally:
        for handle in handles:
            handle.remove()
    full = forward_logits(lm, encoded, None, compact=False)
    assert np.abs(gated - by_hand).max() <= 1e-6
    assert np.abs(gated - full).max() > 1e-4, "gating must change the output"


def test_gated_context_leaves_model_exactly_as_it_was(tiny_bert, sst2_small):
    lm = tiny_bert
    before = {k: v.clone() for k, v in lm.model.state_dict().items()}
    hooks_before = _all_hooks(lm.model)
    keep = np.zeros(lm.shape, dtype=bool)
    keep[0, 0] = True
    with lm.gated(keep):
        assert _all_hooks(lm.model) == hooks_before + lm.num_layers
    assert _all_hooks(lm.model) == hooks_before
    after = lm.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_fractional_gates_scale_the_context(tiny_bert, sst2_small):
    lm = tiny_bert
    encoded = encode(lm, sst2_small)
    ones = np.ones(lm.shape, dtype=np.float32)
    assert np.abs(forward_logits(lm, encoded, ones) - forward_logits(lm, encoded, None)).max() == 0
    half = ones.copy()
    half[1, 2] = 0.5
    zero = ones.copy()
    zero[1, 2] = 0.0
    out_half, out_zero, out_full = (forward_logits(lm, encoded, g) for g in (half, zero, ones))
    assert 0 < np.abs(out_half - out_full).max() < np.abs(out_zero - out_full).max()


def test_gates_carry_gradients(tiny_bert, sst2_small):
    lm = tiny_bert
    encoded = encode(lm, sst2_small)
    from pruning_core.batching import collate

    batch = collate(encoded, np.arange(8), 0, lm.device)
    gates = torch.ones(lm.shape, requires_grad=True)
    with lm.gated(gates):
        loss = lm.model(**batch, labels=torch.as_tensor(encoded.labels[:8])).loss
    loss.backward()
    assert gates.grad is not None and gates.grad.abs().sum() > 0


def test_concurrent_gated_evaluation_equals_serial(tiny_bert, sst2_small):
    lm = tiny_bert
    encoded = encode(lm, sst2_small)
    rng = np.random.default_rng(0)
    masks = [rng.random(lm.shape) > 0.4 for _ in range(4)]
    masks[0][:] = True
    serial = [forward_logits(lm, encoded, m, max_tokens=256, compact=False) for m in masks]
    results: dict[int, list[np.ndarray]] = {i: [] for i in range(4)}
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def worker(i: int) -> None:
        try:
            start.wait()
            for _ in range(5):
                results[i].append(forward_logits(lm, encoded, masks[i], max_tokens=256, compact=False))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for i in range(4):
        for out in results[i]:
            assert np.abs(out - serial[i]).max() <= 1e-6
    assert _all_hooks(lm.model) == 0


def test_similarity_under_a_scheme_ignores_other_callers_hooks(tiny_bert, sst2_small):
    """Context vectors for CKA are taken before the caller's own gates, whatever else is installed.

    Alone, nested in another gated block, and while another thread runs gated evaluations, a gated
    head's similarity is the same (and not the 0 of a zeroed context).
    """
    from pruning_core.cache import DiskCache
    from pruning_core.scores import head_similarity

    lm = tiny_bert
    keep = np.ones(lm.shape, dtype=bool)
    keep[1, 2] = False
    other = np.ones(lm.shape, dtype=bool)
    other[0, 0] = False
    no_cache = DiskCache(enabled=False)

    def similarity():
        return head_similarity(lm, sst2_small, keep, tokens=300, cache=no_cache)

    alone = similarity()
    assert alone.score[1, 2] > 0.05, "a gated head's vectors are its own output, not zeros"
    with lm.gated(other):
        nested = similarity()
    encoded = encode(lm, sst2_small)
    installed, stop = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def other_caller() -> None:
        try:
            with lm.gated(other):
                installed.set()
                while not stop.is_set():
                    forward_logits(lm, encoded, other, max_tokens=256, compact=False)
        except BaseException as exc:  # reported below
            errors.append(exc)
            installed.set()

    thread = threading.Thread(target=other_caller)
    thread.start()
    installed.wait()
    try:
        concurrent = similarity()
    finally:
        stop.set()
        thread.join()
    assert not errors
    for result in (nested, concurrent):
        assert np.allclose(result.cka, alone.cka, atol=1e-6, equal_nan=True)
        assert np.allclose(result.score, alone.score, atol=1e-6, equal_nan=True)
    assert _all_hooks(lm.model) == 0


def test_context_capture_is_taken_before_the_callers_gates(tiny_bert, sst2_small):
    from pruning_core.batching import collate
    from pruning_core.gating import capture_context

    lm = tiny_bert
    batch = collate(encode(lm, sst2_small), np.arange(6), lm.pad_id, lm.device)
    keep = np.ones(lm.shape, dtype=bool)
    keep[0, :] = False

    def capture(gates):
        with torch.inference_mode(), lm.gated(gates), capture_context(lm.model, lm.adapter, lm.kept_heads, lm.head_dim) as captured:
            lm.model(**batch)
        return captured

    plain, gated = capture(None), capture(keep)
    assert torch.equal(plain[0], gated[0]) and gated[0].abs().sum() > 0, "layer 0's gated-off heads keep their own vectors"
    assert not torch.allclose(plain[1], gated[1]), "layer 1 sees the gated layer 0"
    assert _all_hooks(lm.model) == 0
