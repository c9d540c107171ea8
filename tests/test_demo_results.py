"""The demo's shipped results cannot go stale silently: a sample is recomputed with today's code."""

import json

import numpy as np
import pytest

from pruning_core import DiskCache, evaluate, load_model
from pruning_core.batching import encode
from pruning_core.curves import strategy_versions
from pruning_core.repair_curves import repaired_accuracy, repaired_curves
from pruning_core.results import DEMO_RESULTS, MANIFEST, demo_sets, open_results, shipped_results
from pruning_core.schemes import Scheme
from pruning_core.scores import example_gate_gradients, head_map

pytestmark = pytest.mark.skipif(not (DEMO_RESULTS / MANIFEST).is_file(), reason="no shipped demo results in this checkout")


@pytest.fixture(scope="module")
def shipped():
    manifest = json.loads((DEMO_RESULTS / MANIFEST).read_text())
    lm = load_model("demo", precision=manifest["precision"])
    evaluation, calibration, _ = demo_sets()
    return lm, evaluation, calibration, open_results(DEMO_RESULTS, lm, evaluation, calibration)


def test_shipped_results_belong_to_the_demo_model_and_its_sets(shipped):
    lm, evaluation, calibration, opened = shipped
    assert opened.bundle is not None and opened.curves is not None
    assert shipped_results(lm, evaluation, calibration) is not None
    assert opened.curves.evaluation and opened.curves.calibration and opened.bundle.calibration


def test_shipped_curves_come_from_todays_strategy_versions():
    """A strategy whose order changed gets a new version; then `python -m pruning_core ship-demo` must run."""
    manifest = json.loads((DEMO_RESULTS / MANIFEST).read_text())
    assert manifest["strategy_versions"] == strategy_versions(manifest["curve_params"]["strategies"])


def test_a_few_examples_importance_matches_what_was_shipped(shipped):
    lm, _, calibration, opened = shipped
    rows = calibration.subset(range(12))
    grads, _ = example_gate_gradients(lm, encode(lm, rows), lm.present_mask())  # stored as float32; other batches round differently
    assert np.allclose(np.abs(grads), opened.bundle.importance.per_example[:12], rtol=1e-3, atol=1e-6)


def test_two_curve_points_match_what_was_shipped(shipped):
    lm, evaluation, _, opened = shipped
    curves = opened.curves
    curve = curves.curves["importance"]
    for index in (2, len(curve.ks) - 3):
        k = curve.ks[index]
        scheme = Scheme(curves.num_layers, curves.num_heads, frozenset(curve.pruned_at(k)))
        result = evaluate(lm, evaluation, scheme, cache=DiskCache(enabled=False), incremental=False)
        shipped_accuracy = float(curve.accuracy[curve.representative][index])
        assert abs(result.accuracy - shipped_accuracy) <= 2 / len(evaluation) + 1e-9, (k, result.accuracy, shipped_accuracy)


def test_a_repaired_curve_point_matches_what_was_shipped(shipped):
    """The "+ repair" curves are shipped too: one point, repaired and evaluated with today's code."""
    lm, evaluation, calibration, opened = shipped
    settings = opened.curves.extra["repair"]
    curve = repaired_curves(opened.curves)["importance"]
    index = int(np.argmin(np.abs(np.array(curve.ks) - 50)))
    k = curve.ks[index]
    scheme = Scheme(opened.curves.num_layers, opened.curves.num_heads, frozenset(curve.pruned_at(k)))
    result, _ = repaired_accuracy(
        lm,
        evaluation,
        calibration,
        scheme,
        settings["variant"],
        settings["ridge"],
        cache=DiskCache(enabled=False),
        target=settings["target"],
    )
    shipped_accuracy = float(curve.accuracy[curve.representative][index])
    assert abs(result.accuracy - shipped_accuracy) <= 2 / len(evaluation) + 1e-9, (k, result.accuracy, shipped_accuracy)


def test_the_head_map_is_what_was_shipped(shipped):
    """The map from the shipped CKA with today's code: the same UMAP coordinates, bit for bit."""
    _, _, _, opened = shipped
    bundle = opened.bundle
    coords, method = head_map(bundle.similarity.cka, bundle.params.seed)
    assert method == bundle.map_method == "umap"
    assert np.array_equal(coords, bundle.head_map, equal_nan=True)
