"""One sentence under the microscope: the word-piece alignment and word-level attention."""

from __future__ import annotations

import numpy as np

from pruning_core.schemes import Scheme
from pruning_core.sentence import row_entropy, sentence_attention
from pruning_core.wordpieces import sentence_word_pieces


def test_word_pieces_map_tokens_to_the_words_they_start_in(tiny_bert):
    text = "a gripping , funny film"
    spans = [(0, 1), (2, 10), (11, 12), (13, 18), (19, 23)]
    pieces = sentence_word_pieces(tiny_bert, text, None, spans)
    tokens = tiny_bert.tokenizer(text)["input_ids"]
    assert len(pieces) == len(tokens)
    assert pieces[0] == -1 and pieces[-1] == -1, "special tokens belong to no word"
    inner = pieces[1:-1]
    assert set(inner.tolist()) == set(range(len(spans))) and list(inner) == sorted(inner)


def test_a_second_text_belongs_to_no_word(tiny_bert):
    pieces = sentence_word_pieces(tiny_bert, "a cat", "a dog", [(0, 1), (2, 5)])
    first = tiny_bert.tokenizer("a cat")["input_ids"]
    assert set(pieces[len(first) :].tolist()) == {-1}


def test_word_attention_rows_sum_to_one_and_gates_change_it(tiny_bert):
    text, spans = "a gripping , funny film", [(0, 1), (2, 10), (11, 12), (13, 18), (19, 23)]
    full = sentence_attention(tiny_bert, text, None, spans)
    layers, heads = tiny_bert.num_layers, tiny_bert.num_heads
    assert full.words.shape == (layers, heads, len(spans), len(spans))
    assert full.tokens.shape[-1] == len(full.pieces)
    pruned = Scheme(layers, heads, frozenset({(0, 0)}))
    gated = sentence_attention(tiny_bert, text, None, spans, pruned)
    assert np.isnan(gated.tokens[0, 0]).all() or not np.allclose(gated.tokens[-1], full.tokens[-1])


def test_row_entropy_of_uniform_and_peaked_attention():
    uniform = np.full((4, 4), 0.25)
    entropy, normalised = row_entropy(uniform)
    assert np.isclose(entropy, np.log(4)) and np.isclose(normalised, 1.0)
    peaked = np.eye(4)
    assert np.isclose(row_entropy(peaked)[0], 0.0, atol=1e-9)
    assert np.isnan(row_entropy(np.zeros((0, 0)))[0])
