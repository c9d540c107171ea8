"""Pruning strategies, curves, knee summary and the real-pruning report on a tiny model."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from pruning_core.curves import CurveParams, compute_curves, load_curves, pruning_steps
from pruning_core.schemes import Scheme
from pruning_core.scores import head_importance
from pruning_core.strategies import REGISTRY, StrategyContext, Thresholds, by_importance, layer_order, soft_top_k
from pruning_core.strategies.dsp import DifferentiableSubset
from pruning_core.strategies.importance import MichelIterative, OneShotImportance
from pruning_core.strategies.random_order import RandomOrder


@pytest.fixture()
def ctx(tiny_bert, tiny_bundle, isolated_cache):
    from pruning_core import DiskCache

    data, bundle = tiny_bundle
    return StrategyContext(tiny_bert, data, bundle, DiskCache(isolated_cache))


def _instances():
    for name, cls in REGISTRY.items():
        if name == "dsp":
            yield name, DifferentiableSubset(steps=15)
        elif name == "michel":
            yield name, MichelIterative(step=3)
        else:
            yield name, cls()


@pytest.mark.parametrize("name,strategy", list(_instances()), ids=[n for n, _ in _instances()])
def test_every_strategy_gives_a_valid_duplicate_free_order(name, strategy, ctx):
    order = strategy.order(ctx)
    assert len(order) == len(set(order)) == 12
    assert set(order) == set(ctx.all_heads())
    scheme = strategy.scheme(ctx, 5)
    assert isinstance(scheme, Scheme) and len(scheme.pruned) == 5


def test_dsp_keeps_exactly_k(ctx):
    strategy = DifferentiableSubset(steps=15)
    for k in (1, 4, 7, 11):
        scheme = strategy.scheme(ctx, k)
        assert len(scheme.pruned) == k and scheme.keep_mask().sum() == 12 - k


def test_soft_top_k_sums_to_k_and_hardens_at_low_temperature():
    import torch

    logits = torch.tensor([3.0, 1.0, 2.0, -1.0, 0.5])
    soft = soft_top_k(logits, 2, tau=1000.0)
    assert torch.isclose(soft.sum(), torch.tensor(2.0), atol=1e-3) and soft.std() < 1e-3
    hard = soft_top_k(logits, 2, tau=0.01)
    assert torch.allclose(hard, torch.tensor([1.0, 0, 1.0, 0, 0]), atol=1e-4)


def test_michel_recomputes_importance_under_the_mask(ctx, tiny_bert):
    iterative = MichelIterative(step=1).order(ctx)
    assert iterative[0] == OneShotImportance().order(ctx)[0]
    keep = np.ones((3, 4), dtype=bool)
    for step in range(3):
        keep[iterative[step]] = False
        under_mask = head_importance(tiny_bert, ctx.dataset, keep, cache=ctx.cache).normalized
        remaining = [h for h in ctx.all_heads() if keep[h]]
        assert iterative[step + 1] == by_importance(under_mask, remaining)[0]
    assert not np.allclose(under_mask[keep], ctx.bundle.importance.normalized[keep])


def test_michel_recomputes_in_the_models_precision(ctx, tiny_bert):
    bf16 = tiny_bert.with_precision("bf16")
    order = MichelIterative(step=4).order(StrategyContext(bf16, ctx.dataset, ctx.bundle, ctx.cache))
    keep = np.ones((3, 4), dtype=bool)
    for head in order[:4]:
        keep[head] = False
    entries = ctx.cache.size()
    under_mask = head_importance(bf16, ctx.dataset, keep, cache=ctx.cache, precision="bf16").normalized
    assert ctx.cache.size() == entries  # Michel's recomputation is exactly this cached bf16 one
    remaining = [h for h in ctx.all_heads() if keep[h]]
    assert set(order[4:8]) == set(by_importance(under_mask, remaining)[:4])
    fp32 = head_importance(tiny_bert, ctx.dataset, keep, cache=ctx.cache).normalized
    assert ctx.cache.size() > entries and not np.array_equal(fp32, under_mask)


def test_michel_differs_from_one_shot_when_importance_shifts(ctx):
    """Constructed case: once head (0, 0) is gone, head (2, 3) becomes the least important."""
    base = np.arange(12, dtype=float).reshape(3, 4)

    def shifting(ctx, keep):
        values = base.copy()
        if not keep[0, 0]:
            values[2, 3] = -1.0
        return values

    importance = replace(ctx.bundle.importance, normalized=base.copy())
    ctx = replace(ctx, bundle=replace(ctx.bundle, importance=importance))
    one_shot = OneShotImportance().order(ctx)
    iterative = MichelIterative(step=1, importance_fn=shifting).order(ctx)
    assert one_shot[:2] == [(0, 0), (0, 1)]
    assert iterative[:3] == [(0, 0), (2, 3), (0, 1)]
    assert sorted(iterative) == sorted(one_shot)
    assert MichelIterative(step=2, importance_fn=shifting).order(ctx)[:3] == [(0, 0), (0, 1), (2, 3)]


def test_layer_orders_follow_their_definitions(ctx):
    assert layer_order("top-first", 6) == [5, 4, 3, 2, 1, 0]
    assert layer_order("bottom-first", 6) == [0, 1, 2, 3, 4, 5]
    assert layer_order("middle-first", 6) == [2, 3, 1, 4, 0, 5]
    assert layer_order("avoid-middle", 6) == [5, 0, 4, 1, 3, 2]
    assert layer_order("avoid-consecutive", 6) == [5, 3, 1, 4, 2, 0]
    order = REGISTRY["top-first"]().order(ctx)
    assert [layer for layer, _ in order] == [2] * 4 + [1] * 4 + [0] * 4
    importance = ctx.bundle.importance.normalized
    top = [importance[h] for h in order[:4]]
    assert top == sorted(top)


def test_random_is_reproducible_per_seed(ctx):
    assert RandomOrder(3).order(ctx) == RandomOrder(3).order(ctx)
    assert RandomOrder(3).order(ctx) != RandomOrder(4).order(ctx)


def test_thresholds_propose_low_importance_heads(ctx):
    bundle = ctx.bundle
    proposal = Thresholds(importance=1.0, stability=None, similarity=None).proposed(bundle)
    assert proposal.all()
    strict = Thresholds(importance=0.0, stability=None, similarity=None).proposed(bundle)
    assert strict.sum() == 1
    both = Thresholds(importance=1.0, stability=2.0, similarity=2.0, logic="or", skip_no_signal=False).proposed(bundle)
    assert not both.any()


def test_curves_knee_table_and_round_trip(tiny_bert, tiny_bundle, tmp_path, isolated_cache):
    data, bundle = tiny_bundle
    params = CurveParams(step_fraction=0.25, random_seeds=3, dsp_steps=10, strategies=("importance", "random", "top-first", "dsp"))
    curves = compute_curves(tiny_bert, data, bundle, params)
    assert pruning_steps(12, 0.25) == [0, 3, 6, 9, 12]
    assert curves.curves["random"].accuracy.shape == (3, 5)
    low, high = curves.curves["random"].band()
    assert (low <= curves.curves["random"].mean() + 1e-12).all() and (curves.curves["random"].mean() <= high + 1e-12).all()
    for curve in curves.curves.values():
        assert curve.ks[0] == 0 and curve.ks[-1] == 12
        assert curve.accuracy[0, 0] == pytest.approx(curves.full_accuracy)
    table = curves.knee_table()
    assert {row["strategy"] for row in table} == set(params.strategies)
    for row in table:
        assert row["k_1pt"] <= row["k_3pt"]
        assert row["accuracy_1pt"] >= curves.full_accuracy - 0.01 - 1e-9
    scheme = curves.knee_scheme("importance", 3)
    assert len(scheme.pruned) == table[0]["k_3pt"]
    rows = {row["strategy"]: row for row in table}
    for row in table:
        for kind in ("1pt", "3pt", "nosig"):
            low, high = row[f"k_{kind}_interval"]
            assert low <= high and row[f"delta_{kind}"][0] <= row[f"delta_{kind}"][1]
            for other in row[f"tied_{kind}"]:
                assert row["strategy"] in rows[other][f"tied_{kind}"], "ties are symmetric"
        assert any(row[f"best_{kind}"] for row in table)
    random_curve = curves.curves["random"]
    rep = random_curve.representative
    assert rows["random"]["k_1pt"] in random_curve.ks
    assert random_curve.accuracy[rep, random_curve.ks.index(rows["random"]["k_1pt"])] >= curves.full_accuracy - 0.01 - 1e-12
    knee_scheme = curves.knee_scheme("random", 1)
    assert knee_scheme.pruned == frozenset(random_curve.orders[rep][: rows["random"]["k_1pt"]]), "the knee scheme is on a plotted run"
    assert "exact-K" in curves.curves["dsp"].note and curves.extra["dsp"]["logits_from_pruned_k"] == 6
    assert curves.curves["importance"].p_value.shape == curves.curves["importance"].accuracy.shape
    path = curves.save(tmp_path / "curves.json")
    again = load_curves(path)
    assert again.knee_table() == table
    cached = compute_curves(tiny_bert, data, bundle, params)
    assert cached.knee_table() == table and cached.seconds == curves.seconds


def test_curve_points_equal_evaluating_each_mask_on_its_own(tiny_bert, tiny_bundle, isolated_cache):
    """The curves evaluate all strategies' masks together, in prefix-sharing order, each distinct
    mask once: every point is still what a plain forward pass of its own mask gives."""
    from pruning_core import DiskCache, evaluate

    data, bundle = tiny_bundle
    params = CurveParams(step_fraction=0.25, random_seeds=2, strategies=("importance", "fisher", "random", "top-first", "bottom-first"))
    curves = compute_curves(tiny_bert, data, bundle, params)
    distinct = {
        Scheme(3, 4, frozenset(order[:k])).keep_mask().tobytes()
        for curve in curves.curves.values()
        for order in curve.orders
        for k in curve.ks
        if k
    }
    assert curves.evaluations <= len(distinct)
    for curve in curves.curves.values():
        for run, order in enumerate(curve.orders):
            for index, k in enumerate(curve.ks):
                alone = evaluate(tiny_bert, data, Scheme(3, 4, frozenset(order[:k])), cache=DiskCache(enabled=False), incremental=False)
                assert curve.accuracy[run, index] == pytest.approx(alone.accuracy, abs=1e-12), (curve.name, run, k)
                assert curve.loss[run, index] == pytest.approx(alone.loss, rel=1e-4, abs=1e-6), (curve.name, run, k)


def test_curves_progress_only_moves_forward_and_names_each_point(tiny_bert, tiny_bundle, isolated_cache):
    data, bundle = tiny_bundle
    seen: list[tuple[float, str]] = []
    params = CurveParams(step_fraction=0.25, random_seeds=2, strategies=("importance", "random", "top-first"))
    compute_curves(tiny_bert, data, bundle, params, progress=lambda fraction, text: seen.append((fraction, text)))
    fractions = [fraction for fraction, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    grid = [text for _, text in seen if text.startswith("grid point ")]
    assert grid and grid[-1].startswith(f"grid point {len(grid)}/{len(grid)}: ")
    assert any("Importance (one-shot), " in text for text in grid)


def test_a_new_strategy_version_is_not_served_from_the_curves_cache(tiny_bert, tiny_bundle, monkeypatch):
    data, bundle = tiny_bundle
    params = CurveParams(step_fraction=0.25, strategies=("importance",))
    first = compute_curves(tiny_bert, data, bundle, params)
    assert compute_curves(tiny_bert, data, bundle, params).seconds == first.seconds, "served from the cache"
    monkeypatch.setattr(REGISTRY["importance"], "version", REGISTRY["importance"].version + 1)
    assert compute_curves(tiny_bert, data, bundle, params).seconds != first.seconds, "computed again"


def test_report_writes_json_html_and_checkpoint(tiny_bert, sst2_small, tmp_path):
    from pruning_core import load_model
    from pruning_core.report import pruning_report

    scheme = Scheme(3, 4, frozenset({(0, 0), (1, 0), (1, 1), (1, 2), (1, 3)}))
    result = pruning_report(tiny_bert, sst2_small, scheme, tmp_path / "out", batch_sizes=(1, 2), seq_lens=(8,), repeats=2)
    accuracy = result["accuracy"]
    assert result["masked_equals_pruned"] and accuracy["pruned"]["value"] == accuracy["masked"]["value"] == accuracy["saved"]["value"]
    assert {entry["precision"] for entry in accuracy.values()} == {"fp32"} and accuracy["saved"]["split"] == "evaluation"
    assert result["repair"] is None and result["recovery"] is None
    assert result["kept_per_layer"] == [3, 0, 4]
    saved = json.loads((tmp_path / "out" / "report.json").read_text())
    assert saved["heads_pruned"] == 5 and len(saved["latency"]) == 2
    page = (tmp_path / "out" / "report.html").read_text()
    assert "Pruning report" in page and "Plotly.newPlot" in page
    assert '<script src="http' not in page and len(page) > 1_000_000, "plotly.js is inlined, nothing is fetched"
    assert load_model(result["checkpoint"]).kept_heads == [[1, 2, 3], [], [0, 1, 2, 3]]
    assert np.isfinite(result["latency"][0]["speedup"])


def test_dsp_ranks_a_useless_head_last(tiny_bert_dir):
    """A head with zeroed value weights changes nothing: keeping N-1 heads, DSP drops exactly it."""
    import torch

    from pruning_core import load_dataset, load_model
    from pruning_core.strategies.dsp import train_dsp

    lm = load_model(tiny_bert_dir)
    _, _, value = lm.adapter.qkv(lm.adapter.layers(lm.model)[1])
    with torch.no_grad():
        value.weight[2 * lm.head_dim : 3 * lm.head_dim] = 0
        value.bias[2 * lm.head_dim : 3 * lm.head_dim] = 0
    lm.fingerprint += "-useless-head"
    data = load_dataset("sst2:train", max_rows=300)
    learned = train_dsp(lm, data, keep_k=11, steps=150, objective="full_model")
    assert np.unravel_index(np.argmin(learned.logits), lm.shape) == (1, 2)
    assert learned.scheme(lm.shape).pruned == frozenset({(1, 2)})
