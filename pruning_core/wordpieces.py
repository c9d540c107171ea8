"""Word pieces to spaCy words: which word of the first text each token of an encoded input belongs to.

The alignment that the role and dependency statistics use, in one place, so a view of one sentence
(the Dependencies page) maps tokens to words exactly as the analysis does.
"""

from __future__ import annotations

import numpy as np

from .batching import default_max_length
from .loading import LoadedModel
from .syntax import piece_to_word


def word_pieces(encoding, index: int, spans: list[tuple[int, int]], paired: bool) -> np.ndarray:
    """For each token of row ``index`` of a tokenizer ``encoding`` (with offsets and special-token mask),
    the index of the word in ``spans`` it starts in; -1 for special tokens and the second text of a pair."""
    special = np.asarray(encoding["special_tokens_mask"][index], dtype=bool)
    first = np.asarray([s == 0 for s in encoding.sequence_ids(index)]) if paired else ~special
    offsets = [tuple(o) if first[j] else (0, 0) for j, o in enumerate(encoding["offset_mapping"][index])]
    return piece_to_word(offsets, list(~first | special), [tuple(s) for s in spans])


def sentence_word_pieces(lm: LoadedModel, text: str, pair: str | None, spans: list[tuple[int, int]]) -> np.ndarray:
    """:func:`word_pieces` of one input as the model sees it (truncated to its longest input)."""
    encoding = lm.tokenizer(
        [text],
        [pair] if pair is not None else None,
        truncation=True,
        max_length=default_max_length(lm),
        return_offsets_mapping=True,
        return_special_tokens_mask=True,
    )
    return word_pieces(encoding, 0, spans, pair is not None)
