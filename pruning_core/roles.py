"""Functional roles (Pande et al. 2021, "heads hypothesis") and dependency alignment (Clark et al. 2019).

Sieve score beta per sentence and head: the mean attention a role's (query, key) cells receive,
times the sequence length n, so uniform attention scores 1.
- local: keys i-2..i+2 of each query i;
- delimiter: keys that are [CLS] or separators;
- syntactic: from each dependent to its governor (spaCy pairs), the mean attention over the cells
  of the dependent's pieces (queries) and the governor's pieces (keys), averaged over pairs;
- block (sentence pairs only), Pande et al.'s block score: per query, the mean attention on its own
  segment's tokens divided by the mean over all n tokens, times the row's entropy in nats;
  averaged over queries. Segments come from the tokenizer's sequence ids (every architecture);
  special tokens are no segment's keys, and as queries belong to the segment that follows them
  (the last one at the end), as in Pande et al.'s code. Ideal attention spread over its own
  segment scores (n / m) ln m for segments of m tokens (3.3 for two 3-token segments); uniform
  attention scores ln n, not 1: the entropy factor rewards broad attention, as the paper intends.
A head has a role when a one-sided t-test of mean(beta) > tau over N sentences gives p < 0.05.

Dependency alignment, both directions as Clark et al.: for relation r, the share of (dependent,
governor) pairs where
- "dep->gov": the word the dependent attends to most is its governor;
- "gov->dep": the word attending most to the dependent is its governor;
with word-level attention (sum over the target's pieces, mean over the source's), a word never
counted as its own partner and special tokens not words. Next to the best fixed-offset baseline
(governor = dependent + k), which is the same for both directions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .attention import capture_attention, special_ids
from .batching import default_max_length, length_batches, mask_key, resolve_keep_mask
from .cache import DiskCache, cache_key, cached_part
from .data import TextDataset
from .loading import LoadedModel
from .progress import ProgressFn, no_progress
from .schemes import Scheme
from .syntax import Parse, parse, piece_to_word, word_attention, word_mean_attention

ROLES = ("local", "delimiter", "syntactic", "block")
RELATIONS = ("nsubj", "dobj", "amod", "advmod", "det", "prep", "pobj", "poss", "aux", "compound", "all")
DIRECTIONS = ("dep->gov", "gov->dep")
MAX_OFFSET = 5
DEFINITIONS = "2"
"""Version of the score definitions above, part of the cache key (2: Pande et al.'s block score,
sequence-id segments, piece-averaged syntactic sieve, Clark et al.'s per-dependent direction)."""


def token_segments(sequence_ids: Sequence[int | None]) -> np.ndarray:
    """Segment of every token from a fast tokenizer's ``sequence_ids`` (-1 for special tokens)."""
    return np.asarray([-1 if s is None else int(s) for s in sequence_ids], dtype=np.int64)


def block_scores(attention: np.ndarray, segments: np.ndarray) -> np.ndarray:
    """Pande et al.'s block score per head (heads,) of one sentence pair; NaN without two non-empty segments.

    ``attention`` (heads, n, n); ``segments`` (n,) from :func:`token_segments`.
    """
    heads, n, _ = attention.shape
    present = np.unique(segments[segments >= 0])
    if len(present) < 2:
        return np.full(heads, np.nan)
    query_segment = segments.copy()
    following = present[-1]
    for i in range(n - 1, -1, -1):
        if segments[i] >= 0:
            following = segments[i]
        else:
            query_segment[i] = following
    own = segments[None, :] == query_segment[:, None]
    rows = attention / np.clip(attention.sum(-1, keepdims=True), 1e-12, None)
    own_mean = (rows * own).sum(-1) / own.sum(-1)
    entropy = -(rows * np.log(np.clip(rows, 1e-12, None))).sum(-1)
    return (own_mean * n * entropy).mean(-1)


def sieve_scores(
    attention: np.ndarray,
    delimiter: np.ndarray,
    word_mean: np.ndarray | None = None,
    dependency_pairs: list[tuple[int, int]] | None = None,
    segments: np.ndarray | None = None,
) -> np.ndarray:
    """Role scores (heads, 4) of one sentence in :data:`ROLES` order (NaN where undefined).

    ``attention`` (heads, n, n) over the n real tokens; ``delimiter`` (n,) marks [CLS]/separators;
    ``word_mean`` (heads, W, W) word-level attention averaged over both words' pieces
    (:func:`pruning_core.syntax.word_mean_attention`) for the dependency pairs (dependent,
    governor); ``segments`` (n,) from :func:`token_segments` for sentence pairs.
    """
    heads, n, _ = attention.shape
    scores = np.full((heads, len(ROLES)), np.nan)
    positions = np.arange(n)
    window = np.abs(positions[None, :] - positions[:, None]) <= 2
    per_query = (attention * window).sum(-1) / window.sum(-1)
    scores[:, 0] = n * per_query.mean(-1)
    if delimiter.any():
        scores[:, 1] = n * attention[:, :, delimiter].mean(-1).mean(-1)
    if word_mean is not None and dependency_pairs:
        dep = np.asarray([d for d, _ in dependency_pairs])
        gov = np.asarray([g for _, g in dependency_pairs])
        scores[:, 2] = n * word_mean[:, dep, gov].mean(-1)
    if segments is not None:
        scores[:, 3] = block_scores(attention, segments)
    return scores


def role_test(betas: np.ndarray, tau: float = 3.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One-sided t-test of mean(beta) > tau along axis 0, ignoring NaN. Returns (mean, t, p)."""
    import warnings

    from scipy import stats

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(betas, axis=0)
    t_stat = np.full(betas.shape[1:], np.nan)
    p_value = np.full(betas.shape[1:], np.nan)
    flat = betas.reshape(betas.shape[0], -1)
    for j in range(flat.shape[1]):
        column = flat[:, j][np.isfinite(flat[:, j])]
        if len(column) < 2:
            continue
        if np.ptp(column) == 0:
            t_flat, p_flat = (np.inf, 0.0) if column[0] > tau else (-np.inf, 1.0)
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                result = stats.ttest_1samp(column, tau, alternative="greater")
            t_flat, p_flat = float(result.statistic), float(result.pvalue)
        t_stat.flat[j] = t_flat
        p_value.flat[j] = p_flat
    return mean, t_stat, p_value


def alignment_counts(word_attn: np.ndarray, pairs: list[tuple[int, int, str]]) -> dict[tuple[str, str], np.ndarray]:
    """Per (relation, direction): hits per head (heads,) of Clark et al.'s two predictions of each dependent's governor.

    "dep->gov": the other word the dependent attends to most; "gov->dep": the other word attending
    most to the dependent. ``word_attn`` (heads, W, W) is word-level attention (source, target).
    """
    heads, n_words, _ = word_attn.shape
    masked = word_attn.copy()
    masked[:, np.arange(n_words), np.arange(n_words)] = -np.inf
    most_attended = masked.argmax(-1)
    most_attending = masked.argmax(-2)
    counts: dict[tuple[str, str], np.ndarray] = {}
    for dep, gov, rel in pairs:
        for relation in {rel, "all"}:
            for direction, predicted in (("dep->gov", most_attended), ("gov->dep", most_attending)):
                hits = counts.setdefault((relation, direction), np.zeros(heads))
                hits += predicted[:, dep] == gov
    return counts


def offset_counts(pairs: list[tuple[int, int, str]], n_words: int) -> dict[tuple[str, str], np.ndarray]:
    """Per (relation, direction): hits of "governor = dependent + k" for k = -MAX_OFFSET..MAX_OFFSET (0 excluded).

    The fixed-offset prediction of a dependent's governor, the baseline of both directions.
    """
    offsets = [k for k in range(-MAX_OFFSET, MAX_OFFSET + 1) if k != 0]
    counts: dict[tuple[str, str], np.ndarray] = {}
    for dep, gov, rel in pairs:
        for relation in {rel, "all"}:
            for direction in DIRECTIONS:
                hits = counts.setdefault((relation, direction), np.zeros(len(offsets)))
                hits += np.asarray([gov - dep == k for k in offsets], dtype=float)
    return counts


@dataclass
class Roles:
    """Role statistics per head: arrays (layers, heads, 4) in :data:`ROLES` order."""

    mean: np.ndarray
    t: np.ndarray
    p: np.ndarray
    assigned: np.ndarray
    tau: float
    sentences: int


@dataclass
class Alignment:
    """Dependency alignment: ``accuracy`` (relations, 2 directions, layers, heads), ``baseline``
    (relations, 2) best fixed-offset accuracy, ``baseline_offset`` (relations, 2), ``pairs`` (relations,)."""

    accuracy: np.ndarray
    baseline: np.ndarray
    baseline_offset: np.ndarray
    pairs: np.ndarray
    relations: tuple[str, ...] = RELATIONS

    def best(self) -> np.ndarray:
        """Per relation and head, the better of the two directions (relations, layers, heads); NaN
        where neither direction had a pair to score."""
        return np.fmax(self.accuracy[:, 0], self.accuracy[:, 1])


@dataclass
class SyntaxEvidence:
    roles: Roles
    alignment: Alignment


def syntax_evidence(
    lm: LoadedModel,
    dataset: TextDataset,
    role_sentences: int = 100,
    alignment_sentences: int = 500,
    tau: float = 3.0,
    scheme: Scheme | np.ndarray | None = None,
    seed: int = 0,
    progress: ProgressFn | None = None,
    cache: DiskCache | None = None,
) -> SyntaxEvidence:
    """Functional roles and dependency alignment of every head, from one pass over sampled sentences.

    Sentences are drawn with ``seed``; roles use the first ``role_sentences`` of them, alignment
    all ``alignment_sentences``. The syntactic role and alignment use the first text of a pair.
    """
    cache = cache if cache is not None else DiskCache()
    keep = resolve_keep_mask(lm, scheme)
    key = cache_key(
        "syntax",
        definitions=DEFINITIONS,
        model=lm.fingerprint,
        data=dataset.fingerprint,
        mask=mask_key(keep),
        roles=role_sentences,
        align=alignment_sentences,
        tau=tau,
        seed=seed,
    )
    return cached_part(
        cache,
        key,
        lambda: _syntax_evidence(lm, dataset, role_sentences, alignment_sentences, tau, keep, seed, progress),
        _syntax_entry,
        _syntax_from_entry,
    )


def _syntax_entry(evidence: SyntaxEvidence) -> tuple[dict[str, np.ndarray], dict]:
    roles, alignment = evidence.roles, evidence.alignment
    arrays = {
        "mean": roles.mean,
        "t": roles.t,
        "p": roles.p,
        "assigned": roles.assigned,
        "tau": np.asarray(roles.tau),
        "sentences": np.asarray(roles.sentences),
        "accuracy": alignment.accuracy,
        "baseline": alignment.baseline,
        "baseline_offset": alignment.baseline_offset,
        "pairs": alignment.pairs,
    }
    return arrays, {}


def _syntax_from_entry(a: dict[str, np.ndarray], _meta: dict) -> SyntaxEvidence:
    roles = Roles(a["mean"], a["t"], a["p"], a["assigned"], float(a["tau"]), int(a["sentences"]))
    return SyntaxEvidence(roles, Alignment(a["accuracy"], a["baseline"], a["baseline_offset"], a["pairs"]))


def _syntax_evidence(
    lm: LoadedModel,
    dataset: TextDataset,
    role_sentences: int,
    alignment_sentences: int,
    tau: float,
    keep: np.ndarray,
    seed: int,
    progress: ProgressFn | None,
) -> SyntaxEvidence:
    report = progress or no_progress
    total = min(len(dataset), max(role_sentences, alignment_sentences))
    order = np.random.default_rng(seed).permutation(len(dataset))[:total]
    texts = [dataset.texts[i] for i in order]
    pairs_text = [dataset.text_pairs[i] for i in order] if dataset.text_pairs is not None else None
    report(0.0, "parsing with spaCy")
    parses: list[Parse] = parse(texts)
    model = lm.eager_model()
    cls_ids, sep_ids = special_ids(lm.tokenizer)
    delimiter_ids = sorted(cls_ids | sep_ids)
    layers, heads = lm.shape
    betas = np.full((min(role_sentences, total), layers, heads, len(ROLES)), np.nan)
    hits = {(r, d): np.zeros((layers, heads)) for r in RELATIONS for d in DIRECTIONS}
    offset_hits = {(r, d): np.zeros(2 * MAX_OFFSET) for r in RELATIONS for d in DIRECTIONS}
    pair_counts = dict.fromkeys(RELATIONS, 0)
    enc = lm.tokenizer(
        texts,
        pairs_text,
        truncation=True,
        max_length=default_max_length(lm),
        return_offsets_mapping=True,
        return_special_tokens_mask=True,
    )
    sentences = []
    for i, sentence in enumerate(parses):
        ids = np.asarray(enc["input_ids"][i])
        special = np.asarray(enc["special_tokens_mask"][i], dtype=bool)
        first = np.asarray([s == 0 for s in enc.sequence_ids(i)]) if pairs_text is not None else ~special
        offsets = [tuple(o) if first[j] else (0, 0) for j, o in enumerate(enc["offset_mapping"][i])]
        pieces = piece_to_word(offsets, list(~first | special), sentence.spans)
        dep_pairs = [(d, g, r) for d, g, r in sentence.pairs() if (pieces == d).any() and (pieces == g).any()]
        types = np.asarray(enc["token_type_ids"][i]) if "token_type_ids" in enc else None
        segments = token_segments(enc.sequence_ids(i)) if pairs_text is not None else None
        sentences.append((ids, types, pieces, dep_pairs, segments, len(sentence.words)))
    lengths = np.asarray([len(s[0]) for s in sentences])
    pad_id = lm.pad_id
    done = 0
    for batch_indices in length_batches(lengths, 2048):
        width = int(lengths[batch_indices].max())
        ids = np.full((len(batch_indices), width), pad_id, dtype=np.int64)
        mask = np.zeros_like(ids)
        types = np.zeros_like(ids)
        for row, i in enumerate(batch_indices):
            n = lengths[i]
            ids[row, :n] = sentences[i][0]
            mask[row, :n] = 1
            if sentences[i][1] is not None:
                types[row, :n] = sentences[i][1]
        inputs = {"input_ids": torch.as_tensor(ids, device=lm.device), "attention_mask": torch.as_tensor(mask, device=lm.device)}
        if "token_type_ids" in enc:
            inputs["token_type_ids"] = torch.as_tensor(types, device=lm.device)
        with torch.inference_mode(), lm.gated(keep, model), capture_attention(lm, model) as captured:
            model(**inputs)
        weights_by_layer = [None if w is None else w.double().cpu().numpy() for w in captured]
        for row, i in enumerate(batch_indices):
            token_ids, _, pieces, dep_pairs, segments, n_words = sentences[i]
            n = int(lengths[i])
            delimiter = np.isin(token_ids, delimiter_ids)
            for layer, weights in enumerate(weights_by_layer):
                if weights is None:
                    continue
                present = lm.kept_heads[layer]
                attn = weights[row, :, :n, :n]
                words = word_attention(attn, pieces, n_words)
                if i < betas.shape[0]:
                    word_mean = word_mean_attention(attn, pieces, n_words)
                    betas[i, layer, present] = sieve_scores(attn, delimiter, word_mean, [(d, g) for d, g, _ in dep_pairs], segments)
                for (rel, direction), counts in alignment_counts(words, dep_pairs).items():
                    if rel in RELATIONS:
                        hits[(rel, direction)][layer, present] += counts
            for (rel, direction), counts in offset_counts(dep_pairs, n_words).items():
                if rel in RELATIONS:
                    offset_hits[(rel, direction)] += counts
            for _, _, rel in dep_pairs:
                pair_counts["all"] += 1
                if rel in pair_counts and rel != "all":
                    pair_counts[rel] += 1
        done += len(batch_indices)
        report(done / total, f"roles and alignment {done}/{total}")
    mean, t_stat, p_value = role_test(betas, tau)
    assigned = (p_value < 0.05) & np.isfinite(p_value)
    absent = ~lm.present_mask()
    for array in (mean, t_stat, p_value):
        array[absent] = np.nan
    assigned[absent] = False
    roles = Roles(mean, t_stat, p_value, assigned, tau, int(betas.shape[0]))
    pairs = np.asarray([pair_counts[r] for r in RELATIONS], dtype=float)
    accuracy = np.stack([np.stack([hits[(r, d)] for d in DIRECTIONS]) for r in RELATIONS]) / np.maximum(pairs, 1)[:, None, None, None]
    accuracy[pairs == 0] = np.nan
    accuracy[:, :, absent] = np.nan
    offset_table = np.stack([np.stack([offset_hits[(r, d)] for d in DIRECTIONS]) for r in RELATIONS])
    offsets = np.asarray([k for k in range(-MAX_OFFSET, MAX_OFFSET + 1) if k != 0])
    baseline = offset_table.max(-1) / np.maximum(pairs, 1)[:, None]
    baseline[pairs == 0] = np.nan
    baseline_offset = offsets[offset_table.argmax(-1)]
    alignment = Alignment(accuracy, baseline, baseline_offset, pairs)
    return SyntaxEvidence(roles, alignment)
