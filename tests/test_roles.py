"""Functional roles and dependency alignment as the papers define them, on constructed attention and real tokenizers."""

from __future__ import annotations

import numpy as np
import pytest

from pruning_core.data import TextDataset
from pruning_core.demo import base_encoder_path
from pruning_core.roles import (
    ROLES,
    alignment_counts,
    block_scores,
    offset_counts,
    role_test,
    sieve_scores,
    syntax_evidence,
    token_segments,
)
from pruning_core.syntax import word_attention, word_mean_attention

WORDS = "the a big small good bad dog cat film movie cast plot barked ran was is not very at with of and it".split()


def _pair_texts(count: int, seed: int = 0) -> list[tuple[str, str]]:
    rng = np.random.default_rng(seed)
    return [tuple(" ".join(rng.choice(WORDS, size=int(rng.integers(4, 9)))) for _ in range(2)) for _ in range(count)]


def bert_tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(base_encoder_path())


def roberta_tokenizer(folder):
    """A small byte-level BPE tokenizer in RoBERTa's format (no token_type_ids), trained offline."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaTokenizer

    bpe = ByteLevelBPETokenizer()
    corpus = [" ".join(pair) for pair in _pair_texts(200, seed=1)]
    bpe.train_from_iterator(corpus, vocab_size=300, min_frequency=2, special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    folder.mkdir(parents=True, exist_ok=True)
    bpe.save_model(str(folder))
    return RobertaTokenizer(vocab=str(folder / "vocab.json"), merges=str(folder / "merges.txt"))


@pytest.fixture(params=["bert", "roberta"])
def tokenizer(request, tmp_path):
    return bert_tokenizer() if request.param == "bert" else roberta_tokenizer(tmp_path / "bpe")


def within_segment_attention(segments: np.ndarray) -> np.ndarray:
    """Each query spreads its attention evenly over its own segment's tokens (specials: the segment after them)."""
    n = len(segments)
    attention = np.zeros((n, n))
    for i in range(n):
        later = [s for s in segments[i:] if s >= 0]
        own = segments[i] if segments[i] >= 0 else (later[0] if later else segments.max())
        keys = segments == own
        attention[i, keys] = 1.0 / keys.sum()
    return attention


def previous_token_attention(n: int) -> np.ndarray:
    attention = np.zeros((n, n))
    attention[0, 0] = 1.0
    attention[np.arange(1, n), np.arange(n - 1)] = 1.0
    return attention


def test_segments_come_from_sequence_ids_for_every_tokenizer(tokenizer):
    enc = tokenizer("the big dog", "a good cat")
    segments = token_segments(enc.sequence_ids())
    special = np.asarray(tokenizer.get_special_tokens_mask(enc["input_ids"], already_has_special_tokens=True), dtype=bool)
    assert (segments[special] == -1).all()
    assert set(segments[~special]) == {0, 1}
    assert (np.diff(segments[~special]) >= 0).all(), "the first text's tokens come first"


def other_segment_attention(segments: np.ndarray) -> np.ndarray:
    """Each content token spreads its attention over the other segment's tokens; specials attend to themselves."""
    n = len(segments)
    attention = np.eye(n)
    for i in np.nonzero(segments >= 0)[0]:
        keys = (segments >= 0) & (segments != segments[i])
        attention[i] = keys / keys.sum()
    return attention


def test_block_role_assigned_on_within_segment_attention(tokenizer):
    betas, lengths = [], []
    for first, second in _pair_texts(30):
        enc = tokenizer(first, second)
        segments = token_segments(enc.sequence_ids())
        n = len(segments)
        uniform = np.full((n, n), 1 / n)
        heads = np.stack([within_segment_attention(segments), previous_token_attention(n), other_segment_attention(segments), uniform])
        betas.append(block_scores(heads, segments))
        lengths.append(n)
    betas = np.stack(betas)
    mean, _, p = role_test(betas[:, :, None], tau=3.0)
    assert mean[0, 0] > 3 and p[0, 0] < 0.05, "ideal within-segment attention is a block head"
    assert p[1, 0] > 0.05 and p[2, 0] > 0.05, "a previous-token head and a head reading the other text are not"
    assert np.allclose(betas[:, 3], np.log(lengths)), "uniform attention scores ln n (Pande et al.'s entropy factor)"


def test_block_score_matches_pande_on_two_three_token_segments():
    segments = np.asarray([-1, 0, 0, 0, -1, 1, 1, 1, -1])
    ideal = block_scores(within_segment_attention(segments)[None], segments)[0]
    assert np.isclose(ideal, 3 * np.log(3)), "(n / m) ln m = 3.3 for n = 9, m = 3"
    uniform = block_scores(np.full((1, 9, 9), 1 / 9), segments)[0]
    assert np.isclose(uniform, np.log(9)), "uniform attention: ratio 1 times its entropy ln n"
    assert np.isnan(block_scores(np.full((1, 5, 5), 0.2), np.asarray([-1, 0, 0, 0, -1])))[0]


def test_uniform_attention_scores_one_for_every_sieve_role_with_multi_piece_governors():
    # [CLS] the big dog##gy##ish barked loud##ly [SEP]: words the, big, doggyish (3 pieces), barked, loudly (2)
    pieces = np.asarray([-1, 0, 1, 2, 2, 2, 3, 4, 4, -1])
    n, n_words = len(pieces), 5
    pairs = [(0, 2), (1, 2), (2, 3), (4, 3)]
    uniform = np.full((1, n, n), 1 / n)
    delimiter = pieces < 0
    scores = sieve_scores(uniform, delimiter, word_mean_attention(uniform, pieces, n_words), pairs)
    for role in ("local", "delimiter", "syntactic"):
        assert np.isclose(scores[0, ROLES.index(role)], 1.0), role
    summed = n * word_attention(uniform, pieces, n_words)[0, 0, 2]
    assert np.isclose(summed, 3.0), "summing over the governor's pieces would score its piece count"


def test_syntactic_sieve_rewards_attention_from_dependent_to_governor_pieces():
    pieces = np.asarray([-1, 0, 1, 1, 2, -1])
    n = len(pieces)
    attention = np.full((1, n, n), 0.02)
    attention[0, 1, 2:4] = 0.45  # "the" -> both pieces of its governor
    attention[0] /= attention[0].sum(-1, keepdims=True)
    scores = sieve_scores(attention, pieces < 0, word_mean_attention(attention, pieces, 3), [(0, 1)])
    assert scores[0, ROLES.index("syntactic")] > 2.5


def test_alignment_takes_the_word_attending_most_to_each_dependent():
    # the big dog barked: det(the -> dog), amod(big -> dog), nsubj(dog -> barked)
    pairs = [(0, 2, "det"), (1, 2, "amod"), (2, 3, "nsubj")]
    attn = np.full((1, 4, 4), 0.01)
    attn[0, 2, [0, 1]] = 0.45  # dog attends to both of its dependents
    attn[0, 3, 2] = 0.9  # barked attends to its subject
    counts = alignment_counts(attn, pairs)
    assert counts[("all", "gov->dep")][0] == 3, "every dependent's most attending word is its governor"
    assert counts[("det", "gov->dep")][0] == 1 and counts[("amod", "gov->dep")][0] == 1
    assert counts[("all", "dep->gov")][0] == 0, "no dependent attends to its governor"
    attn[0, 1, 0] = 0.6  # "big" now attends to "the" more than "dog" does
    assert alignment_counts(attn, pairs)[("det", "gov->dep")][0] == 0


def test_offset_baseline_predicts_the_governor_in_both_directions():
    pairs = [(0, 2, "det"), (1, 2, "amod"), (2, 3, "nsubj")]
    counts = offset_counts(pairs, 4)
    offsets = [k for k in range(-5, 6) if k != 0]
    for direction in ("dep->gov", "gov->dep"):
        assert counts[("all", direction)][offsets.index(1)] == 2 and counts[("all", direction)][offsets.index(2)] == 1


def test_syntax_evidence_on_sentence_pairs_without_token_type_ids(tmp_path):
    """End to end on a RoBERTa model whose tokenizer gives no token_type_ids: segments from sequence ids."""
    from pruning_core import DiskCache, load_model
    from tiny import save_tiny

    folder = save_tiny("roberta", tmp_path / "roberta-bpe")
    roberta_tokenizer(tmp_path / "bpe").save_pretrained(folder)
    lm = load_model(folder)
    assert "token_type_ids" not in lm.tokenizer("a", "b")
    pairs = _pair_texts(12)
    data = TextDataset("pairs", tuple(a for a, _ in pairs), tuple(i % 2 for i in range(12)), tuple(b for _, b in pairs))
    evidence = syntax_evidence(lm, data, role_sentences=12, alignment_sentences=12, cache=DiskCache(enabled=False))
    block = evidence.roles.mean[..., ROLES.index("block")]
    assert np.isfinite(block).all() and (block > 0).all()
    assert np.isfinite(evidence.roles.mean[..., ROLES.index("syntactic")]).all()
    assert evidence.alignment.pairs[-1] > 0
