"""Conditional redundancy: two identical heads are never both proposed on similarity alone."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from pruning_core import DiskCache, load_model
from pruning_core.redundancy import conditional_redundancy, prune_in_order, redundant_pairs
from pruning_core.scores import head_similarity
from pruning_core.strategies import Thresholds, composite_order


def _constructed_cka(size: int = 6) -> np.ndarray:
    cka = np.full((size, size), 0.1)
    cka[0, 1] = cka[1, 0] = 1.0
    np.fill_diagonal(cka, 1.0)
    return cka


def test_removing_one_twin_makes_the_other_non_redundant():
    cka = _constructed_cka()
    keep = np.ones((2, 3), dtype=bool)
    score, partner = conditional_redundancy(cka, keep)
    assert score[0, 0] == 1.0 and partner[0, 0] == 1 and score[0, 1] == 1.0
    keep[0, 1] = False
    score, partner = conditional_redundancy(cka, keep)
    assert score[0, 0] == 0.1 and partner[0, 0] != 1
    removed = prune_in_order([(0, 0), (0, 1), (1, 0)], cka, np.ones((2, 3), dtype=bool), threshold=0.5)
    assert removed == [(0, 0)]
    pairs = redundant_pairs(cka, (2, 3), 0.5)
    assert pairs == [{"a": (0, 0), "b": (0, 1), "cka": 1.0, "mutual": True}]


def test_two_identical_heads_of_a_real_model_are_never_both_proposed(tiny_bert_dir, tiny_bundle, tmp_path):
    lm = load_model(tiny_bert_dir)
    width = lm.head_dim
    with torch.no_grad():
        for linear in lm.adapter.qkv(lm.adapter.layers(lm.model)[1]):
            linear.weight[width : 2 * width] = linear.weight[:width]
            linear.bias[width : 2 * width] = linear.bias[:width]
    lm.fingerprint += "-twin-heads"
    data, bundle = tiny_bundle
    similarity = head_similarity(lm, data, tokens=400, cache=DiskCache(tmp_path))
    assert similarity.cka[4, 5] > 0.999 and similarity.partner[1, 0] == 5
    twins = replace(bundle, similarity=similarity, signal={})
    for threshold in (0.5, 0.9, 0.999):
        for logic in ("or", "and"):
            rule = Thresholds(importance=1.0, stability=None, similarity=threshold, scale="value", logic=logic)
            proposed = rule.proposed(twins)
            assert not (proposed[1, 0] and proposed[1, 1])
    rule = Thresholds(importance=1.0, stability=None, similarity=0.99, scale="value")
    assert rule.proposed(twins)[1].sum() == 1
    pairs = twins.redundant_pairs(0.99)
    assert pairs[0]["a"] == (1, 0) and pairs[0]["b"] == (1, 1) and pairs[0]["mutual"]
    order = composite_order(twins, 0.0, 10.0)
    assert order.index((1, 0)) == 0 or order.index((1, 1)) == 0
    first, second = sorted([order.index((1, 0)), order.index((1, 1))])
    assert second > first + 1, "after one twin goes the other is no longer redundant"


def test_percentile_thresholds_adapt_to_the_model(tiny_bundle):
    _, bundle = tiny_bundle
    plain = replace(bundle, signal={})
    half = Thresholds(importance=0.5, stability=None, similarity=None).proposed(plain)
    assert half.sum() == 6
    shifted = replace(plain, importance=replace(plain.importance, normalized=np.exp(10 * plain.importance.normalized)))
    assert (Thresholds(importance=0.5, stability=None, similarity=None).proposed(shifted) == half).all()
    cut = Thresholds().cutoffs(plain)
    assert np.nanmin(plain.stability) <= cut["stability"] <= np.nanmax(plain.stability)


def test_the_map_hands_umap_the_neighbours_its_own_search_finds():
    """Ties included: the same rows, in the same order, as UMAP's small-data neighbour search
    (run as plain Python here, so the test does not compile it)."""
    from umap.utils import fast_knn_indices

    from pruning_core.scores import exact_neighbors

    rng = np.random.default_rng(3)
    distance = np.round(rng.random((30, 30)), 1)  # rounded: many ties
    distance = 0.5 * (distance + distance.T)
    np.fill_diagonal(distance, 0.0)
    indices, distances, _ = exact_neighbors(distance, 15)
    expected = fast_knn_indices.py_func(distance, 15)
    assert np.array_equal(indices, expected)
    assert np.array_equal(distances, distance[np.arange(30)[:, None], expected])


def _clustered_distance(seed: int = 5, n: int = 40) -> np.ndarray:
    rng = np.random.default_rng(seed)
    points = rng.normal(size=(n, 6)) + np.repeat(rng.normal(scale=4, size=(4, 6)), n // 4, axis=0)
    distance = np.linalg.norm(points[:, None] - points[None], axis=-1)
    return distance / distance.max()


def test_the_uncompiled_graph_kernels_agree_with_umaps_compiled_ones():
    """The head map runs UMAP's bandwidth search and edge weights as Python: the same algorithm,
    within a few float32 ulps of the compiled (fastmath) kernels."""
    import umap.umap_ as umap_module

    from pruning_core.scores import exact_neighbors

    indices, distances, _ = exact_neighbors(_clustered_distance(), 15)
    distances = distances.astype(np.float32)
    compiled = umap_module.smooth_knn_dist(distances, 15.0, local_connectivity=1.0)
    plain = umap_module.smooth_knn_dist.py_func(distances, 15.0, local_connectivity=1.0)
    for got, want in zip(plain, compiled):
        assert np.allclose(got, want, rtol=1e-5, atol=1e-7)
    got = umap_module.compute_membership_strengths.py_func(indices, distances, *plain, False)
    want = umap_module.compute_membership_strengths(indices, distances, *compiled, False)
    assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
    assert np.allclose(got[2], want[2], rtol=2e-4, atol=1e-6)  # fastmath exp: a few float32 ulps


def test_the_head_map_is_deterministic_separates_clusters_and_restores_umap():
    import umap.umap_ as umap_module

    from pruning_core.scores import head_map

    before = umap_module.smooth_knn_dist
    cka = 1.0 - _clustered_distance()
    coords, method = head_map(cka, seed=0)
    assert method == "umap" and umap_module.smooth_knn_dist is before
    again, _ = head_map(cka, seed=0)
    assert np.array_equal(coords, again)
    centres = coords.reshape(4, 10, 2).mean(axis=1)
    spread = np.linalg.norm(coords.reshape(4, 10, 2) - centres[:, None], axis=-1).max()
    gaps = [np.linalg.norm(centres[i] - centres[j]) for i in range(4) for j in range(i + 1, 4)]
    assert min(gaps) > spread
