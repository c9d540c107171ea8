"""Repair: least-squares refit of the output projections, folded into a pruned model; repair-aware
selection; the "+ repair" curve; recovery fine-tune (cancel and resume) and compensation data."""

from __future__ import annotations

import dataclasses
import threading

import numpy as np
import pytest
import torch

from pruning_core import DiskCache, load_dataset, load_model
from pruning_core.batching import collate, encode
from pruning_core.data import TextDataset
from pruning_core.efficiency import count_parameters
from pruning_core.evaluation import forward_logits
from pruning_core.loading import model_fingerprint
from pruning_core.pruning import prune_heads, save_pruned
from pruning_core.recovery import RecoveryParams, compensation, recover
from pruning_core.repair import repair_scheme, repaired_masked, repaired_pruned, ridge_solve
from pruning_core.strategies import StrategyContext
from pruning_core.strategies.repair_aware import RepairAware

ARCHS = ("bert", "roberta", "distilbert", "electra")


@pytest.fixture(scope="module")
def calibration() -> TextDataset:
    return load_dataset("sst2:train", max_rows=160)


def _empty_layer(shape) -> np.ndarray:
    keep = np.ones(shape, dtype=bool)
    keep[1, :] = False
    keep[0, 2] = False
    keep[2, [0, 3]] = False
    return keep


def _one_head_left(shape) -> np.ndarray:
    keep = np.zeros(shape, dtype=bool)
    keep[shape[0] - 1, 1] = True
    return keep


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("make_mask", [_empty_layer, _one_head_left], ids=["empty-layer", "one-head-left"])
@pytest.mark.parametrize("variant", ["full", "attention", "scale"])
def test_repaired_masked_equals_repaired_pruned(arch, make_mask, variant, tiny_dirs, sst2_small, calibration):
    lm = load_model(tiny_dirs[arch])
    fingerprint = model_fingerprint(lm.model)
    keep = make_mask(lm.shape)
    repair = repair_scheme(lm, keep, calibration, variant=variant)
    pruned = repaired_pruned(lm, repair)
    masked = repaired_masked(lm, repair)
    pruned_logits = forward_logits(pruned, encode(pruned, sst2_small))
    masked_logits = forward_logits(masked, encode(masked, sst2_small), keep, compact=False)
    assert np.abs(pruned_logits - masked_logits).max() <= 1e-4
    plain = prune_heads(lm, keep)
    assert {k: v.shape for k, v in pruned.model.state_dict().items()} == {k: v.shape for k, v in plain.model.state_dict().items()}
    assert model_fingerprint(lm.model) == fingerprint, "the loaded model must not change"
    plain_logits = forward_logits(plain, encode(plain, sst2_small))
    assert np.abs(plain_logits - pruned_logits).max() > 1e-4, "the repair must change the pruned model"
    assert np.all(repair.error_after <= repair.error_before + 1e-9), "per layer, the repair never reconstructs worse"


@pytest.mark.parametrize("target", ["attention", "residual"])
def test_full_repair_reduces_the_damage(target, tiny_dirs, sst2_small, calibration):
    lm = load_model(tiny_dirs["bert"])
    keep = _empty_layer(lm.shape)
    full = forward_logits(lm, encode(lm, sst2_small))
    masked = forward_logits(lm, encode(lm, sst2_small), keep, compact=False)
    repair = repair_scheme(lm, keep, calibration, target=target)
    repaired = repaired_pruned(lm, repair)
    after = forward_logits(repaired, encode(repaired, sst2_small))
    assert np.abs(after - full).mean() < 0.7 * np.abs(masked - full).mean()
    masked_repaired = repaired_masked(lm, repair)
    gated = forward_logits(masked_repaired, encode(masked_repaired, sst2_small), keep, compact=False)
    assert np.abs(gated - after).max() <= 1e-4


@pytest.mark.parametrize("arch", ["bert", "distilbert"])
def test_repaired_model_saves_and_reloads(arch, tiny_dirs, sst2_small, calibration, tmp_path):
    lm = load_model(tiny_dirs[arch])
    keep = _empty_layer(lm.shape)
    repair = repair_scheme(lm, keep, calibration)
    pruned = repaired_pruned(lm, repair)
    folder = save_pruned(pruned, tmp_path / "repaired")
    reloaded = load_model(folder)
    assert reloaded.kept_heads == pruned.kept_heads
    assert count_parameters(reloaded) == count_parameters(prune_heads(lm, keep))
    before = forward_logits(pruned, encode(pruned, sst2_small))
    after = forward_logits(reloaded, encode(reloaded, sst2_small))
    assert np.abs(before - after).max() <= 1e-6


@pytest.mark.parametrize("arch", ["bert", "distilbert"])
def test_an_emptied_last_layer_keeps_its_bias_and_lower_ones_refit_it(arch, tiny_dirs, calibration):
    lm = load_model(tiny_dirs[arch])
    keep = _empty_layer(lm.shape)
    keep[-1, :] = False
    repair = repair_scheme(lm, keep, calibration)

    def original_bias(layer: int) -> np.ndarray:
        return lm.adapter.out_proj(lm.adapter.layers(lm.model)[layer]).bias.detach().double().numpy()

    assert repair.weights[-1].shape[1] == 0 and repair.weights[1].shape[1] == 0
    np.testing.assert_allclose(repair.biases[-1], original_bias(lm.num_layers - 1), rtol=0, atol=1e-6)
    assert repair.error_after[-1] == pytest.approx(repair.error_before[-1])
    assert np.abs(repair.biases[1] - original_bias(1)).max() > 1e-4, "a lower emptied layer refits its bias"
    assert repair.error_after[1] < repair.error_before[1]


def test_repair_is_cached_by_model_data_and_scheme(tiny_bert, calibration):
    cache = DiskCache()
    keep = _empty_layer(tiny_bert.shape)
    first = repair_scheme(tiny_bert, keep, calibration, cache=cache)
    again = repair_scheme(tiny_bert, keep, calibration, cache=cache)
    assert not first.from_cache and again.from_cache
    for a, b in zip(first.weights, again.weights):
        np.testing.assert_array_equal(a, b)
    other_data = repair_scheme(tiny_bert, keep, load_dataset("sst2:train", max_rows=80), cache=cache)
    other_scheme = repair_scheme(tiny_bert, _one_head_left(tiny_bert.shape), calibration, cache=cache)
    assert not other_data.from_cache and not other_scheme.from_cache


def test_ridge_solve_recovers_an_exact_target():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 12))
    truth = rng.normal(size=(12, 5))
    y = x @ truth
    solved = ridge_solve(x.T @ x, x.T @ y, np.zeros_like(truth), ridge=0.0)
    assert np.abs(solved - truth).max() <= 1e-5


def test_duplicate_head_is_recovered_exactly(tiny_dirs, sst2_small, calibration):
    """Head 1 of layer 0 made a copy of head 0: pruning it is exactly compensated by adding its
    output columns to head 0's, and the repair must find that (full model's logits, 1e-5)."""
    base = load_model(tiny_dirs["bert"])
    model = base.model
    d = base.head_dim
    layer = base.adapter.layers(model)[0]
    with torch.no_grad():
        for linear in base.adapter.qkv(layer):
            linear.weight[d : 2 * d] = linear.weight[:d]
            linear.bias[d : 2 * d] = linear.bias[:d]
    lm = dataclasses.replace(base, fingerprint=model_fingerprint(model), caches={})
    keep = np.ones(lm.shape, dtype=bool)
    keep[0, 1] = False
    out_proj = lm.adapter.out_proj(layer).weight.detach().numpy()
    repair = repair_scheme(lm, keep, calibration, ridge=0.0)
    expected = np.concatenate([out_proj[:, :d] + out_proj[:, d : 2 * d], out_proj[:, 2 * d :]], axis=1)
    assert np.abs(repair.weights[0] - expected).max() <= 1e-5
    full = forward_logits(lm, encode(lm, sst2_small))
    repaired = repaired_pruned(lm, repair)
    assert np.abs(forward_logits(repaired, encode(repaired, sst2_small)) - full).max() <= 1e-5
    assert np.all(repair.error_after <= 1e-9)
    assert np.all(repair.ffn_error_after <= 1e-9), "the feed-forward target is then the full model's own output"


@pytest.mark.parametrize("arch", ["bert", "distilbert"])
def test_the_full_repair_also_refits_the_feed_forward_output(arch, tiny_dirs, sst2_small, calibration):
    lm = load_model(tiny_dirs[arch])
    keep = _empty_layer(lm.shape)
    full_repair = repair_scheme(lm, keep, calibration, variant="full")
    attention_only = repair_scheme(lm, keep, calibration, variant="attention")

    def ffn_weights(model) -> list[np.ndarray]:
        return [lm.adapter.ffn_out(layer).weight.detach().numpy().copy() for layer in lm.adapter.layers(model)]

    original = ffn_weights(lm.model)
    assert not attention_only.ffn_weights and attention_only.ffn_error_after is None
    for before, after in zip(original, ffn_weights(repaired_pruned(lm, attention_only).model), strict=True):
        np.testing.assert_array_equal(before, after)
    refitted = ffn_weights(repaired_pruned(lm, full_repair).model)
    assert max(np.abs(a - b).max() for a, b in zip(original, refitted, strict=True)) > 1e-4
    assert np.all(full_repair.ffn_error_after <= full_repair.ffn_error_before + 1e-9)
    np.testing.assert_allclose(full_repair.weights[0], attention_only.weights[0], atol=1e-5)  # same inputs below layer 1

    def norm_input(model) -> torch.Tensor:
        """Layer 0's last-LayerNorm input on the calibration tokens (layer 0 sees unrepaired inputs)."""
        seen = []
        norm = lm.adapter.ffn_norm(lm.adapter.layers(model)[0])
        handle = norm.register_forward_pre_hook(lambda module, inputs: seen.append(inputs[0]))
        batch = collate(encode(lm, calibration), np.arange(len(calibration)), lm.pad_id, lm.device)
        try:
            with torch.inference_mode():
                model(**batch)
        finally:
            handle.remove()
        return seen[0][batch["attention_mask"].bool()].double()

    target = norm_input(lm.model)

    def squared_error(repair) -> float:
        return float(((norm_input(repaired_pruned(lm, repair).model) - target) ** 2).sum())

    before, after = squared_error(attention_only), squared_error(full_repair)
    assert after < before
    fitted = full_repair.ffn_error_after[0] / full_repair.ffn_error_before[0]
    assert after / before == pytest.approx(fitted, rel=1e-3), "the fit's error is the model's real error"


class _Untouchable(TextDataset):
    """An evaluation set whose texts must never be read."""

    def __getattribute__(self, name):
        if name in ("texts", "text_pairs", "labels"):
            raise AssertionError("the evaluation set was read")
        return super().__getattribute__(name)


def test_repair_aware_reads_only_the_calibration_set(tiny_bert, tiny_bundle, calibration):
    data, bundle = tiny_bundle
    evaluation = _Untouchable(name="sst2:dev", texts=data.texts, labels=data.labels, fingerprint=data.fingerprint)
    with pytest.raises(AssertionError):
        _ = evaluation.texts
    ctx = StrategyContext(tiny_bert, evaluation, bundle, DiskCache())
    order = RepairAware(calibration=calibration).order(ctx)
    assert sorted(order) == ctx.all_heads()
    repair = repair_scheme(tiny_bert, _empty_layer(tiny_bert.shape), calibration)
    assert repair.calibration_fingerprint == calibration.fingerprint


def test_repair_aware_prefers_a_compensable_head(tiny_dirs, tiny_bundle, calibration):
    """A duplicated head costs nothing after repair, so it is pruned first."""
    base = load_model(tiny_dirs["bert"])
    d = base.head_dim
    layer = base.adapter.layers(base.model)[2]
    with torch.no_grad():
        for linear in base.adapter.qkv(layer):
            linear.weight[3 * d : 4 * d] = linear.weight[:d]
            linear.bias[3 * d : 4 * d] = linear.bias[:d]
    lm = dataclasses.replace(base, fingerprint=model_fingerprint(base.model), caches={})
    ctx = StrategyContext(lm, calibration, tiny_bundle[1], DiskCache())
    order = RepairAware(calibration=calibration).order(ctx)
    assert order[0] in {(2, 0), (2, 3)}


def test_recovery_cancels_and_resumes_to_the_same_weights(tiny_dirs, sst2_small, calibration):
    teacher = load_model(tiny_dirs["bert"])
    student = repaired_pruned(teacher, repair_scheme(teacher, _empty_layer(teacher.shape), calibration))
    params = RecoveryParams(steps=6, batch_size=8, lr=1e-3)
    straight = recover(student, teacher, calibration, params, cache=DiskCache(enabled=False))
    assert straight.completed and straight.steps_done == 6 and len(straight.losses) == 6
    cache = DiskCache()
    stop = threading.Event()

    def progress(fraction, message):
        if fraction >= 0.5:
            stop.set()

    partial = recover(student, teacher, calibration, params, progress=progress, cancel=stop, cache=cache, checkpoint_every=2)
    assert not partial.completed and partial.steps_done == 3
    resumed = recover(student, teacher, calibration, params, cache=cache)
    assert resumed.completed and resumed.resumed_from == 3 and resumed.steps_done == 6
    for (name, a), b in zip(straight.model.model.state_dict().items(), resumed.model.model.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6), name
    assert resumed.losses == pytest.approx(straight.losses, abs=1e-6)
    again = recover(student, teacher, calibration, params, cache=cache, cancel=lambda: True)
    assert again.completed and again.resumed_from == 6, "a finished run is read back, not repeated"
    assert model_fingerprint(student.model, extra=str(student.kept_heads)) != model_fingerprint(
        resumed.model.model, extra=str(student.kept_heads)
    )
    comp = compensation(student, resumed.model, sst2_small)
    kept = student.present_mask()
    assert np.isfinite(comp.change[kept]).all() and np.isnan(comp.change[~kept]).all()
    assert comp.to_dict()["summary"]["kept_heads"] == int(kept.sum())
