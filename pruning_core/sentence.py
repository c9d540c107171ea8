"""One input under the microscope: every head's attention on one sentence, at token and word level.

What the Dependencies view draws: token attention (``attention_maps``), its word-level form over the
spaCy words of the first text (the same word-piece alignment as the analysis, :mod:`.wordpieces`),
and one head's row entropy on that input.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .attention import attention_maps
from .errors import BhpvasError
from .loading import LoadedModel
from .schemes import Scheme
from .syntax import word_attention
from .wordpieces import sentence_word_pieces


@dataclass
class SentenceAttention:
    """``words`` (layers, heads, W, W), ``tokens`` (layers, heads, T, T) and each token's word (-1: none)."""

    words: np.ndarray
    tokens: np.ndarray
    pieces: np.ndarray


def sentence_attention(
    lm: LoadedModel, text: str, pair: str | None, spans: list[tuple[int, int]], scheme: Scheme | None = None
) -> SentenceAttention:
    """Token- and word-level attention of every head on one input, optionally under ``scheme``'s gates."""
    sample = attention_maps(lm, [text], [pair] if pair is not None else None, scheme=scheme)[0]
    pieces = sentence_word_pieces(lm, text, pair, spans)
    if len(pieces) != sample.attention.shape[-1]:
        raise BhpvasError("The tokenisation of this sentence did not match its attention map; try another sentence.")
    words = word_attention(np.nan_to_num(sample.attention.astype(np.float64)), pieces, len(spans))
    return SentenceAttention(words, sample.attention, pieces)


def row_entropy(token_attention: np.ndarray) -> tuple[float, float]:
    """Mean row entropy (nats) of one head's (T, T) attention, and the same divided by ln T."""
    if not token_attention.size:
        return float("nan"), float("nan")
    rows = np.clip(token_attention, 1e-12, None)
    entropy = float(-(token_attention * np.log(rows)).sum(-1).mean())
    n = token_attention.shape[-1]
    return entropy, entropy / np.log(n) if n > 1 else float("nan")
