"""fp32 confirmation: curves measured in bf16 carry every knee re-evaluated in fp32, and a scheme
can be confirmed on request; the numbers are those of an independent fp32 evaluation."""

from __future__ import annotations

import numpy as np
import pytest

from pruning_core import DiskCache
from pruning_core.confirm import Confirmation, confirm_scheme
from pruning_core.curves import CurveParams, compute_curves, load_curves
from pruning_core.evaluation import evaluate
from pruning_core.schemes import Scheme

PARAMS = CurveParams(step_fraction=0.25, random_seeds=2, strategies=("importance", "random"))


def test_the_twin_shares_weights_but_not_caches(tiny_bert):
    twin = tiny_bert.with_precision("bf16")
    assert twin.precision == "bf16" and twin.model is tiny_bert.model and twin.fingerprint == tiny_bert.fingerprint
    assert twin.caches is not tiny_bert.caches
    assert tiny_bert.with_precision("bf16") is twin and twin.with_precision("fp32") is not tiny_bert or tiny_bert.precision == "fp32"


def test_bf16_curves_carry_their_knees_confirmed_in_fp32(tiny_bert, tiny_bundle, tmp_path):
    data, bundle = tiny_bundle
    reduced = tiny_bert.with_precision("bf16")
    curves = compute_curves(reduced, data, bundle, PARAMS, cache=DiskCache(tmp_path / "a"))
    assert curves.precision == "bf16"
    knees = curves.fp32_knees()
    assert set(knees) == {"importance", "random"}
    exact_full = evaluate(tiny_bert, data, None, cache=DiskCache(enabled=False))
    assert curves.extra["fp32_confirmation"]["full_accuracy_fp32"] == pytest.approx(exact_full.accuracy)
    for name, points in knees.items():
        curve = curves.curves[name]
        assert set(points) == set(curves.knee_points(curve))
        for kind, point in points.items():
            scheme = Scheme(3, 4, frozenset(curve.pruned_at(point["k"])))
            exact = evaluate(tiny_bert, data, scheme, cache=DiskCache(enabled=False))
            assert point["accuracy_fp32"] == pytest.approx(exact.accuracy)
            assert point["accuracy"] == pytest.approx(curve.accuracy[curve.representative][curve.ks.index(point["k"])])
            assert point["precision"] == "bf16"
            criterion = {"1pt": 0.01, "3pt": 0.03}.get(kind)
            if criterion is not None:
                assert point["holds"] == (exact.accuracy >= exact_full.accuracy - criterion - 1e-12)
    again = load_curves(curves.save(tmp_path / "curves.json"))
    assert again.precision == "bf16" and again.fp32_knees() == knees


def test_fp32_curves_are_not_confused_with_bf16_ones(tiny_bert, tiny_bundle, tmp_path):
    data, bundle = tiny_bundle
    cache = DiskCache(tmp_path / "shared")
    exact = compute_curves(tiny_bert, data, bundle, PARAMS, cache=cache)
    reduced = compute_curves(tiny_bert.with_precision("bf16"), data, bundle, PARAMS, cache=cache)
    assert exact.precision == "fp32" and not exact.fp32_knees()
    assert reduced.precision == "bf16" and reduced.fp32_knees()


def test_confirm_scheme_counts_answers_that_differ(tiny_bert, sst2_small):
    scheme = Scheme(3, 4, frozenset({(0, 1), (1, 2), (2, 0)}))
    exact = evaluate(tiny_bert, sst2_small, scheme, cache=DiskCache(enabled=False))
    correct = exact.preds == exact.labels
    flipped = correct.copy()
    flipped[:5] = ~flipped[:5]
    confirmation = confirm_scheme(tiny_bert.with_precision("bf16"), sst2_small, scheme, flipped, cache=DiskCache(enabled=False))
    assert isinstance(confirmation, Confirmation)
    assert confirmation.changed == 5 and confirmation.k == 3
    assert confirmation.accuracy == pytest.approx(float(np.mean(flipped)))
    assert confirmation.accuracy_fp32 == pytest.approx(exact.accuracy)
    delta, low, high = confirmation.delta_fp32
    assert low <= delta <= high
