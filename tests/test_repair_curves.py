"""The "+ repair" curves: every point repaired and evaluated, with the plain curves' intervals, knees and ties."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from pruning_core import DiskCache, evaluate, load_dataset
from pruning_core.curves import CurveParams, compute_curves, knee_k, no_drop_k
from pruning_core.repair import repair_scheme, repaired_pruned
from pruning_core.repair_curves import add_repaired_curves, repaired_curves, repaired_knee_table
from pruning_core.schemes import Scheme
from pruning_core.stats import accuracy_change


@pytest.fixture(scope="module")
def calibration():
    return load_dataset("sst2:train", max_rows=120)


@pytest.fixture(scope="module")
def with_repair(tiny_bert, tiny_bundle, calibration, tmp_path_factory):
    """Plain curves of importance and random (2 seeds) on 64 dev sentences, with their repaired curves."""
    data, bundle = tiny_bundle
    cache = DiskCache(tmp_path_factory.mktemp("repair-curves-cache"))
    params = CurveParams(step_fraction=0.25, random_seeds=2, strategies=("importance", "random"))
    curves = compute_curves(tiny_bert, data, bundle, params, cache=cache, calibration=calibration)
    return add_repaired_curves(tiny_bert, data, calibration, curves, cache=cache), cache


def test_repaired_points_carry_intervals_of_real_repaired_models(with_repair, tiny_bert, tiny_bundle, calibration):
    curves, _ = with_repair
    data, _ = tiny_bundle
    full = evaluate(tiny_bert, data, cache=DiskCache(enabled=False))
    full_correct = full.preds == full.labels
    repaired = repaired_curves(curves)
    assert set(repaired) == {"importance", "random"}
    assert curves.extra["repair"]["calibration_fingerprint"] == calibration.fingerprint
    for name, curve in repaired.items():
        runs = len(curves.curves[name].orders)
        assert curve.name == f"{name}+repair" and curve.label.endswith(" + repair")
        assert curve.delta_low.shape == curve.delta_high.shape == curve.p_value.shape == (runs, len(curve.ks))
        assert len(curve.correct) == runs and all(len(row) == len(curve.ks) for row in curve.correct)
        assert np.all(curve.delta_low <= curve.accuracy - full.accuracy + 1e-12)
        assert np.all(curve.accuracy - full.accuracy <= curve.delta_high + 1e-12)
        assert curve.accuracy[:, 0] == pytest.approx(full.accuracy) and np.all(curve.p_value[:, 0] == 1.0)
    importance = repaired["importance"]
    k = importance.ks[len(importance.ks) // 2]
    assert 0 < k < tiny_bert.num_layers * tiny_bert.num_heads
    scheme = Scheme(*tiny_bert.shape, frozenset(importance.orders[0][:k]))
    alone = repaired_pruned(tiny_bert, repair_scheme(tiny_bert, scheme, calibration, cache=DiskCache(enabled=False)))
    correct = evaluate(alone, data, cache=DiskCache(enabled=False)).preds == full.labels
    point = importance.ks.index(k)
    np.testing.assert_array_equal(importance.correct_matrix()[point], correct)
    change = accuracy_change(full_correct, correct)
    assert (importance.delta_low[0, point], importance.delta_high[0, point], importance.p_value[0, point]) == pytest.approx(
        (change.low, change.high, change.p_value)
    )
    assert importance.accuracy[0, point] == pytest.approx(correct.mean())


def test_repaired_knee_table_has_intervals_ties_and_the_gain(with_repair):
    curves, _ = with_repair
    repaired = repaired_curves(curves)
    table = repaired_knee_table(curves)
    assert [row["strategy"] for row in table] == ["importance", "random"]
    plain_rows = {row["strategy"]: row for row in curves.knee_table()}
    for row in table:
        curve = repaired[row["strategy"]]
        accuracy = curve.accuracy[curve.representative]
        assert row["k_1pt_repaired"] == knee_k(curve.ks, accuracy, curves.full_accuracy, 0.01)
        assert row["k_3pt_repaired"] == knee_k(curve.ks, accuracy, curves.full_accuracy, 0.03)
        full_correct = np.asarray([c == "1" for c in curves.full_correct])
        assert row["k_nosig_repaired"] == no_drop_k(curve.ks, curve.changes(full_correct))
        for kind in ("1pt", "3pt", "nosig"):
            assert row[f"k_{kind}_plain"] == plain_rows[row["strategy"]][f"k_{kind}"]
            low, high = row[f"k_{kind}_interval_repaired"]
            assert 0 <= low <= high <= curves.num_layers * curves.num_heads
            assert row[f"delta_{kind}_repaired"][0] <= row[f"delta_{kind}_repaired"][1]
            assert 0.0 <= row[f"p_{kind}_repaired"] <= 1.0
            assert isinstance(row[f"tied_{kind}_repaired"], list) and isinstance(row[f"best_{kind}_repaired"], bool)
            assert row[f"gain_{kind}"] == row[f"k_{kind}_repaired"] - row[f"k_{kind}_plain"]
            assert row[f"gain_{kind}_interval"][0] <= row[f"gain_{kind}_interval"][1]
    for kind in ("1pt", "3pt", "nosig"):
        assert any(row[f"best_{kind}_repaired"] for row in table)
        for row in table:
            assert all(name.endswith("+repair") for name in row[f"tied_{kind}_repaired"])


def test_a_repaired_curve_equal_to_the_plain_one_gains_nothing(with_repair):
    curves, _ = with_repair
    twin = copy.deepcopy(curves)
    twin.extra["repaired"] = {"importance": twin.curves["importance"].to_dict()}
    (row,) = repaired_knee_table(twin)
    for kind in ("1pt", "3pt", "nosig"):
        assert row[f"gain_{kind}"] == 0 and row[f"gain_{kind}_interval"] == [0, 0]
        assert row[f"k_{kind}_interval_repaired"] == row[f"k_{kind}_interval_plain"]


def test_repaired_curves_are_read_back_from_the_disk_cache(with_repair, tiny_bert, tiny_bundle, calibration):
    curves, cache = with_repair
    data, _ = tiny_bundle
    again = add_repaired_curves(tiny_bert, data, calibration, copy.deepcopy(curves), ("importance",), cache=cache)
    assert again.extra["repaired"]["importance"] == curves.extra["repaired"]["importance"], "same curve, same recorded seconds"
    other = add_repaired_curves(tiny_bert, data, calibration, copy.deepcopy(curves), ("importance",), ridge=1.0, cache=cache)
    assert other.extra["repaired"]["importance"]["seconds"] != curves.extra["repaired"]["importance"]["seconds"]


def test_two_strategies_with_the_same_orders_each_show_their_own_name(with_repair, tiny_bert, tiny_bundle, calibration):
    """The composite can equal importance: the cached repaired curve is shared, the names are not."""
    curves, cache = with_repair
    data, _ = tiny_bundle
    twin = copy.deepcopy(curves)
    twin.curves["twin"] = copy.deepcopy(twin.curves["importance"])
    twin.curves["twin"].name, twin.curves["twin"].label = "twin", "Twin"
    add_repaired_curves(tiny_bert, data, calibration, twin, names=("twin",), cache=cache)
    repaired = repaired_curves(twin)
    assert repaired["twin"].name == "twin+repair" and repaired["twin"].label == "Twin + repair"
    assert repaired["importance"].name == "importance+repair"
    assert repaired["twin"].ks == repaired["importance"].ks
    twin.extra["repaired"]["twin"]["name"] = "importance+repair"
    assert repaired_curves(twin)["twin"].name == "twin+repair", "older files with the shared name read back under their own"
