"""Head evidence on constructed cases: roles, stability, CKA, importance, dependency alignment."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from pruning_core.attention import PROFILE_NAMES, batch_statistics
from pruning_core.batching import collate, encode, length_batches
from pruning_core.roles import ROLES, alignment_counts, role_test, sieve_scores
from pruning_core.scores import head_importance, jensen_shannon, linear_cka_matrix, similarity_from_cka, stability
from pruning_core.syntax import piece_to_word, word_attention

rng = np.random.default_rng(0)


@pytest.fixture(autouse=True)
def fixed_rng():
    """Each test draws from the same random stream, whatever ran before it."""
    global rng
    rng = np.random.default_rng(0)


def previous_token_attention(n: int) -> np.ndarray:
    a = np.zeros((n, n))
    a[0, 0] = 1.0
    for i in range(1, n):
        a[i, i - 1] = 1.0
    return a


def cls_attention(n: int) -> np.ndarray:
    a = np.zeros((n, n))
    a[:, 0] = 1.0
    return a


def random_attention(n: int) -> np.ndarray:
    logits = rng.normal(size=(n, n))
    e = np.exp(logits)
    return e / e.sum(-1, keepdims=True)


def _sentence_betas(maker, sentences: int = 30) -> np.ndarray:
    betas = []
    for _ in range(sentences):
        n = int(rng.integers(8, 30))
        attn = np.stack([maker(n), random_attention(n)])
        delimiter = np.zeros(n, dtype=bool)
        delimiter[[0, n - 1]] = True
        betas.append(sieve_scores(attn, delimiter))
    return np.stack(betas)


def test_previous_token_head_gets_local_role_and_random_head_does_not():
    mean, t, p = role_test(_sentence_betas(previous_token_attention), tau=3.0)
    local = ROLES.index("local")
    assert p[0, local] < 0.05 and mean[0, local] > 3
    assert p[1, local] > 0.05
    assert p[0, ROLES.index("delimiter")] > 0.05


def test_cls_head_gets_delimiter_role():
    mean, t, p = role_test(_sentence_betas(cls_attention), tau=3.0)
    assert p[0, ROLES.index("delimiter")] < 0.05
    assert p[1, ROLES.index("delimiter")] > 0.05


def _profiles(maker, samples: int = 20) -> np.ndarray:
    rows = []
    for _ in range(samples):
        n = int(rng.integers(20, 40))
        attn = torch.tensor(np.stack([maker(n), random_attention(n)])[None], dtype=torch.float32)
        ids = torch.full((1, n), 7)
        ids[0, 0], ids[0, -1] = 101, 102
        profiles, *_ = batch_statistics(attn, ids, torch.ones(1, n, dtype=torch.bool), {101}, {102})
        rows.append(profiles[0].numpy())
    return np.stack(rows)[:, None]  # samples, 1 layer, 2 heads, 6


def test_previous_token_head_is_stable():
    profiles = _profiles(previous_token_attention)
    assert profiles[:, 0, 0, PROFILE_NAMES.index("prev")].mean() > 0.85
    values = stability(profiles)
    assert values[0, 0] > 0.95
    assert values[0, 0] > values[0, 1]


def test_jsd_bounds():
    p = np.array([1.0, 0, 0, 0, 0, 0])
    q = np.array([0, 1.0, 0, 0, 0, 0])
    assert np.isclose(jensen_shannon(p, q), np.log(2))
    assert np.isclose(jensen_shannon(p, p), 0)


def test_identical_heads_have_cka_one_and_find_each_other():
    x = rng.normal(size=(500, 8))
    others = rng.normal(size=(3, 500, 8))
    features = np.stack([x, others[0], x.copy(), others[1], others[2]])
    cka = linear_cka_matrix(features)
    assert np.isclose(cka[0, 2], 1.0, atol=1e-6)
    sim = similarity_from_cka(cka, (1, 5), 500)
    assert sim.partner[0, 0] == 2 and sim.partner[0, 2] == 0
    assert np.isclose(sim.score[0, 0], 1.0, atol=1e-6)
    assert sim.score[0, 1] < 0.2


def test_cka_is_invariant_to_rotation_and_isotropic_scaling():
    x = rng.normal(size=(400, 8))
    y = x @ rng.normal(size=(8, 8)) + 0.5 * rng.normal(size=(400, 8))
    q, _ = np.linalg.qr(rng.normal(size=(8, 8)))
    base = linear_cka_matrix(np.stack([x, y]))[0, 1]
    moved = linear_cka_matrix(np.stack([3.7 * x @ q, y]))[0, 1]
    assert 0.1 < base < 0.99
    assert np.isclose(base, moved, atol=1e-9)


def test_importance_matches_finite_differences(tiny_bert, sst2_small):
    lm = tiny_bert
    data = sst2_small.subset(range(24))
    importance = head_importance(lm, data, max_tokens=2048)
    encoded = encode(lm, data)
    pad = lm.tokenizer.pad_token_id
    eps = 1e-3
    estimate = np.zeros(lm.shape)
    tokens = 0
    for indices in length_batches(encoded.lengths, 2048):
        batch = collate(encoded, indices, pad, lm.device)
        labels = torch.as_tensor(encoded.labels[indices])
        tokens += int(batch["attention_mask"].sum())
        for layer in range(lm.num_layers):
            for head in range(lm.num_heads):
                losses = []
                for sign in (1, -1):
                    gates = torch.ones(lm.shape, dtype=torch.float64)
                    gates[layer, head] += sign * eps
                    with torch.no_grad(), lm.gated(gates.float()):
                        logits = lm.model(**batch).logits.double()
                        losses.append(torch.nn.functional.cross_entropy(logits, labels, reduction="none"))
                estimate[layer, head] += float((losses[0] - losses[1]).abs().sum()) / (2 * eps)  # |dL(x)/d gate| per example
    estimate /= tokens
    rho = spearmanr(importance.raw.ravel(), estimate.ravel()).statistic
    assert rho >= 0.95, rho
    assert np.allclose(np.linalg.norm(importance.normalized, axis=1), 1.0)
    assert 0 <= importance.display().min() and importance.display().max() == 1


def test_governor_head_gets_alignment_one():
    words = 6
    pairs = [(0, 1, "det"), (1, 2, "nsubj"), (3, 2, "dobj"), (4, 3, "amod")]
    governor_of = {d: g for d, g, _ in pairs}
    attn = np.full((2, words, words), 0.01)
    for d, g in governor_of.items():
        attn[0, d, g] = 0.9
    attn[1] = np.roll(np.eye(words), 1, axis=1) * 0.9 + 0.01  # attends to the next word
    counts = alignment_counts(attn, pairs)
    assert counts[("nsubj", "dep->gov")][0] == 1 and counts[("all", "dep->gov")][0] == len(pairs)
    assert counts[("all", "dep->gov")][1] < len(pairs)


def test_word_alignment_merges_pieces():
    # tokens: [CLS] play ##ing well [SEP] -> words: playing, well
    offsets = [(0, 0), (0, 4), (4, 7), (8, 12), (0, 0)]
    special = [True, False, False, False, True]
    pieces = piece_to_word(offsets, special, [(0, 7), (8, 12)])
    assert pieces.tolist() == [-1, 0, 0, 1, -1]
    attn = np.zeros((1, 5, 5))
    attn[0, 1, 3] = 1.0  # play -> well
    attn[0, 2, 1] = 0.5  # ing -> play
    attn[0, 2, 2] = 0.5  # ing -> ing
    attn[0, 3, 1] = 0.25
    attn[0, 3, 2] = 0.25
    words = word_attention(attn, pieces, 2)
    assert np.allclose(words[0], [[0.5, 0.5], [0.5, 0.0]])


@pytest.mark.parametrize("n", [3, 10])
def test_uniform_rows_have_entropy_ln_n(n):
    attn = torch.full((1, 1, n, n), 1 / n)
    ids = torch.full((1, n), 7)
    _, entropy, _, hist = batch_statistics(attn, ids, torch.ones(1, n, dtype=torch.bool), {101}, {102})
    assert np.isclose(entropy.item(), np.log(n), atol=1e-5)
    assert hist.sum().item() == n


def test_alignment_best_takes_either_direction_without_warnings():
    import warnings

    from pruning_core.roles import Alignment

    accuracy = np.full((2, 2, 1, 2), np.nan)
    accuracy[0, 1, 0, 0] = 0.5
    accuracy[0, 0, 0, 0] = 0.25
    accuracy[1, 0, 0, 1] = 0.75
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        best = Alignment(accuracy, np.zeros((2, 2)), np.zeros((2, 2)), np.ones(2)).best()
    assert best[0, 0, 0] == 0.5 and best[1, 0, 1] == 0.75
    assert np.isnan(best[0, 0, 1]) and np.isnan(best[1, 0, 0])
