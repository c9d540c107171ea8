"""Paired bootstrap interval and McNemar exact p-value against scipy on constructed flips."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binomtest, bootstrap

from pruning_core.stats import accuracy_change, mcnemar_exact


def _flips(n: int, lost: int, gained: int, right: int) -> tuple[np.ndarray, np.ndarray]:
    """Full/pruned correctness with ``lost`` and ``gained`` discordant samples and ``right`` both right."""
    full = np.zeros(n, dtype=bool)
    pruned = np.zeros(n, dtype=bool)
    full[:lost] = True
    pruned[lost : lost + gained] = True
    full[lost + gained : lost + gained + right] = True
    pruned[lost + gained : lost + gained + right] = True
    order = np.random.default_rng(1).permutation(n)
    return full[order], pruned[order]


@pytest.mark.parametrize("lost,gained", [(12, 3), (7, 7), (0, 5), (30, 18), (1, 0)])
def test_mcnemar_equals_scipy_binomial_test(lost, gained):
    full, pruned = _flips(400, lost, gained, 300)
    change = accuracy_change(full, pruned)
    expected = binomtest(min(lost, gained), lost + gained, 0.5).pvalue
    assert change.p_value == pytest.approx(expected, rel=1e-9)
    assert (change.lost, change.gained) == (lost, gained)
    assert change.delta == pytest.approx((gained - lost) / 400)


def test_no_discordant_pair_gives_p_one_and_vectorised_form_agrees():
    assert mcnemar_exact(0, 0) == 1.0
    lost, gained = np.array([12, 7, 0]), np.array([3, 7, 5])
    expected = [binomtest(int(min(a, b)), int(a + b), 0.5).pvalue for a, b in zip(lost, gained)]
    np.testing.assert_allclose(mcnemar_exact(lost, gained), expected, rtol=1e-9)


def test_paired_bootstrap_interval_agrees_with_scipy():
    full, pruned = _flips(872, 40, 15, 700)
    change = accuracy_change(full, pruned, resamples=4000, seed=0)
    reference = bootstrap(
        (full.astype(float), pruned.astype(float)),
        lambda f, p, axis: (p - f).mean(axis=axis),
        paired=True,
        vectorized=True,
        n_resamples=4000,
        method="percentile",
        random_state=0,
    ).confidence_interval
    assert change.low < change.delta < change.high
    assert change.low == pytest.approx(reference.low, abs=0.004)
    assert change.high == pytest.approx(reference.high, abs=0.004)
    assert change.significant_drop
    assert accuracy_change(full, pruned, seed=0) == accuracy_change(full, pruned, seed=0)


def test_change_from_predictions_counts_flips_against_the_labels():
    from pruning_core.stats import change_from_predictions

    labels = np.array([0, 1, 1, 0, 1, 0])
    full = np.array([0, 1, 1, 0, 0, 1])
    pruned = np.array([1, 1, 1, 0, 1, 1])
    change = change_from_predictions(labels, full, pruned)
    assert (change.lost, change.gained) == (1, 1) and change.delta == 0 and change.p_value == 1.0


def _gathered_indices(n: int, resamples: int, seed: int) -> np.ndarray:
    """The resamples as sample indices: the same seeded draw :func:`bootstrap_counts` counts."""
    return np.random.default_rng(seed).integers(0, n, size=(resamples, n))


def test_counted_resamples_give_exactly_the_gathered_bootstrap():
    """The resampled accuracy changes from one product with the counts equal, bit for bit, the
    direct definition: gather each resample's samples and average (percentiles and p-values too)."""
    from pruning_core.stats import accuracy_changes, bootstrap_counts

    rng = np.random.default_rng(3)
    n, resamples = 301, 500
    full = rng.random(n) < 0.85
    rows = np.stack([full ^ (rng.random(n) < rate) for rate in (0.0, 0.02, 0.1, 0.3)])
    counts = bootstrap_counts(n, resamples, 5)
    indices = _gathered_indices(n, resamples, 5)
    assert counts.sum(1).tolist() == [n] * resamples and not counts.flags.writeable
    changes = accuracy_changes(full, rows, resamples=resamples, seed=5)
    for row, change in zip(rows, changes, strict=True):
        diff = row.astype(np.float64) - full.astype(np.float64)
        tail = 100 * (1 - 0.95) / 2
        low, high = np.percentile(diff[indices].mean(1), [tail, 100 - tail])
        lost, gained = int((full & ~row).sum()), int((~full & row).sum())
        assert (change.low, change.high, change.delta) == (low, high, diff.mean())
        assert (change.lost, change.gained, change.p_value) == (lost, gained, mcnemar_exact(lost, gained))
        assert accuracy_change(full, row, resamples=resamples, seed=5) == change


def test_counted_knee_resamples_give_exactly_the_gathered_knees():
    """Each resample's knees from the counts equal the knees of the gathered resample."""
    from pruning_core.curves import bootstrap_knees
    from pruning_core.stats import ALPHA, bootstrap_counts, within_drop

    rng = np.random.default_rng(4)
    n, resamples = 200, 300
    ks = [0, 5, 10, 15, 20]
    full = rng.random(n) < 0.9
    correct = np.stack([full ^ (rng.random(n) < rate) for rate in (0.0, 0.01, 0.03, 0.08, 0.2)])
    knees = bootstrap_knees(ks, correct, full, bootstrap_counts(n, resamples, 7))
    for b, drawn in enumerate(_gathered_indices(n, resamples, 7)):
        sample_full, sample = full[drawn], correct[:, drawn]
        accuracy, full_accuracy = sample.mean(1), sample_full.mean()
        drop = (accuracy < full_accuracy) & (mcnemar_exact((sample_full & ~sample).sum(1), (~sample_full & sample).sum(1)) < ALPHA)
        for kind, max_drop in (("1pt", 0.01), ("3pt", 0.03)):
            assert knees[kind][b] == max([k for k, a in zip(ks, accuracy) if within_drop(a, full_accuracy, max_drop)], default=0)
        assert knees["nosig"][b] == max([k for k, d in zip(ks, drop) if not d], default=0)
