"""Attention access: per-head maps for chosen samples, and streaming per-head statistics over a
whole dataset with bounded memory (one batch of attention maps alive at a time).

Uses the model's eager twin (same weights) so attention weights exist; head gates apply as usual.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .batching import Encoded, collate, default_max_length, encode, length_batches, mask_key, resolve_keep_mask
from .cache import DiskCache, cache_key, cached_part
from .data import TextDataset
from .gating import capture_context
from .hooks import SharedHooks, caller_state, mark, state_of
from .loading import LoadedModel
from .progress import ProgressFn, no_progress
from .schemes import Scheme
from .scores import ContextSampler

PROFILE_NAMES = ("cls", "sep", "self", "prev", "next", "other")
ENTROPY_BINS = 20


_ATTENTION_CAPTURES: ContextVar[dict[int, tuple[list[torch.Tensor | None], ...]] | None] = ContextVar(
    "bhpvas_attention_captures", default=None
)
_CORE_HOOKS = SharedHooks()


def _make_attention_hook(model_id: int, layer: int):
    def hook(module, args, output):
        weights = output[1] if isinstance(output, tuple) and len(output) > 1 else None
        for captured in state_of(_ATTENTION_CAPTURES, model_id) or ():
            captured[layer] = weights

    return mark(hook)


@contextmanager
def capture_attention(lm: LoadedModel, model: torch.nn.Module) -> Iterator[list[torch.Tensor | None]]:
    """Collect each layer's attention weights (batch, heads present, T, T) of this caller's forward passes.

    ``model`` is shared (the eager twin): its hooks are reference-counted and record only into the
    lists of the caller whose forward pass is running (:mod:`pruning_core.hooks`), so concurrent
    callers never see each other's maps. A nested capture on the same model records too.
    """
    captured: list[torch.Tensor | None] = [None] * lm.num_layers

    def install() -> list:
        return [
            lm.adapter.attention_core(layer).register_forward_hook(_make_attention_hook(id(model), index))
            for index, layer in enumerate(lm.adapter.layers(model))
        ]

    outer = state_of(_ATTENTION_CAPTURES, id(model)) or ()
    with _CORE_HOOKS.installed(model, install), caller_state(_ATTENTION_CAPTURES, model, (*outer, captured)):
        yield captured


@dataclass
class SampleAttention:
    """Attention of every head for one input: ``attention[layer, head]`` is a (T, T) row-stochastic map.

    Heads physically absent from a pruned model are NaN.
    """

    tokens: list[str]
    input_ids: np.ndarray
    attention: np.ndarray


def attention_maps(
    lm: LoadedModel,
    texts: Sequence[str],
    text_pairs: Sequence[str] | None = None,
    scheme: Scheme | np.ndarray | None = None,
    max_length: int | None = None,
) -> list[SampleAttention]:
    """Per-head attention maps for a few inputs (for views), optionally under a scheme's gates."""
    keep = resolve_keep_mask(lm, scheme)
    model = lm.eager_model()
    results = []
    for i, text in enumerate(texts):
        pair = text_pairs[i] if text_pairs is not None else None
        enc = lm.tokenizer(text, pair, truncation=True, max_length=max_length or default_max_length(lm), return_tensors="pt")
        enc = {k: v.to(lm.device) for k, v in enc.items()}
        with torch.inference_mode(), lm.gated(keep, model), capture_attention(lm, model) as captured:
            model(**enc)
        length = enc["input_ids"].shape[1]
        maps = np.full((lm.num_layers, lm.num_heads, length, length), np.nan, dtype=np.float32)
        for layer, weights in enumerate(captured):
            if weights is not None:
                maps[layer, lm.kept_heads[layer]] = weights[0].float().cpu().numpy()
        ids = enc["input_ids"][0].cpu().numpy()
        results.append(SampleAttention(lm.tokenizer.convert_ids_to_tokens(ids.tolist()), ids, maps))
    return results


@dataclass
class AttentionBatch:
    """One batch of attention maps: ``layers[l]`` is (batch, heads present in l, T, T) or None;
    ``context[l]`` the layer's context vectors (batch, T, heads present x d_h), when asked for."""

    indices: np.ndarray
    input_ids: torch.Tensor
    valid: torch.Tensor
    layers: list[torch.Tensor | None]
    context: list[torch.Tensor | None] | None = None


def iter_attention(
    lm: LoadedModel,
    dataset: TextDataset | Encoded,
    scheme: Scheme | np.ndarray | None = None,
    max_tokens: int = 2048,
    progress: ProgressFn | None = None,
    contexts: bool = False,
) -> Iterator[AttentionBatch]:
    """Stream attention maps over a dataset, one length-bucketed batch at a time (with
    ``contexts``, each layer's context vectors too)."""
    report = progress or no_progress
    encoded = dataset if isinstance(dataset, Encoded) else encode(lm, dataset)
    keep = resolve_keep_mask(lm, scheme)
    model = lm.eager_model()
    pad_id = lm.pad_id
    done = 0
    for indices in length_batches(encoded.lengths, max_tokens):
        batch = collate(encoded, indices, pad_id, lm.device)
        with ExitStack() as stack:
            stack.enter_context(torch.inference_mode())
            stack.enter_context(lm.gated(keep, model))
            captured = stack.enter_context(capture_attention(lm, model))
            context = stack.enter_context(capture_context(model, lm.adapter, lm.kept_heads, lm.head_dim)) if contexts else None
            model(**batch)
        yield AttentionBatch(
            indices, batch["input_ids"], batch["attention_mask"].bool(), list(captured), list(context) if context is not None else None
        )
        done += len(indices)
        report(done / len(encoded), f"attention {done}/{len(encoded)}")


def special_ids(tokenizer) -> tuple[set[int], set[int]]:
    """Token ids counted as [CLS] and as separators ([SEP], </s>) in attention profiles."""
    cls = {i for i in (tokenizer.cls_token_id, tokenizer.bos_token_id) if i is not None}
    sep = {i for i in (tokenizer.sep_token_id, tokenizer.eos_token_id) if i is not None} - cls
    return cls, sep


def key_categories(input_ids: torch.Tensor, cls_ids: set[int], sep_ids: set[int]) -> torch.Tensor:
    """(batch, T, T) category of each (query, key) pair, in :data:`PROFILE_NAMES` order.

    Exclusive, by priority: [CLS] key, separator key, the query itself, previous, next, other.
    """
    batch, length = input_ids.shape
    positions = torch.arange(length, device=input_ids.device)
    offset = positions[None, :] - positions[:, None]
    cats = torch.full((batch, length, length), 5, dtype=torch.long, device=input_ids.device)
    cats[:, offset == 1] = 4
    cats[:, offset == -1] = 3
    cats[:, offset == 0] = 2
    is_sep = torch.isin(input_ids, torch.tensor(sorted(sep_ids) or [-1], device=input_ids.device))
    is_cls = torch.isin(input_ids, torch.tensor(sorted(cls_ids) or [-1], device=input_ids.device))
    cats = torch.where(is_sep[:, None, :], torch.full_like(cats, 1), cats)
    cats = torch.where(is_cls[:, None, :], torch.zeros_like(cats), cats)
    return cats


@dataclass
class AttentionStats:
    """Per-sample and per-head attention statistics over a dataset (NaN for absent heads).

    - ``profiles`` (samples, layers, heads, 6): mean over query tokens of the attention mass on
      [CLS], separators, the token itself, the previous, the next and all other tokens;
    - ``entropy`` (samples, layers, heads): mean row entropy in nats;
    - ``distance`` (samples, layers, heads): mean attention distance |i - j| in tokens;
    - ``entropy_hist`` (layers, heads, 20): counts of row entropy / ln(n) over [0, 1].
    """

    profiles: np.ndarray
    entropy: np.ndarray
    distance: np.ndarray
    entropy_hist: np.ndarray

    @property
    def mean_profile(self) -> np.ndarray:
        return np.nanmean(self.profiles, axis=0)

    @property
    def mean_entropy(self) -> np.ndarray:
        return np.nanmean(self.entropy, axis=0)

    @property
    def mean_distance(self) -> np.ndarray:
        return np.nanmean(self.distance, axis=0)

    def arrays(self) -> dict[str, np.ndarray]:
        return {"profiles": self.profiles, "entropy": self.entropy, "distance": self.distance, "entropy_hist": self.entropy_hist}


def batch_statistics(
    weights: torch.Tensor, input_ids: torch.Tensor, valid: torch.Tensor, cls_ids: set[int], sep_ids: set[int]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Profiles (B,H,6), entropy (B,H), distance (B,H) and entropy histogram (H,20) of one layer's batch."""
    weights = weights.float()
    valid_f = valid.float()
    n_valid = valid_f.sum(1).clamp(min=1)
    cats = F.one_hot(key_categories(input_ids, cls_ids, sep_ids), len(PROFILE_NAMES)).float()
    profile_rows = torch.einsum("bhqk,bqkc->bhqc", weights, cats)
    profiles = (profile_rows * valid_f[:, None, :, None]).sum(2) / n_valid[:, None, None]
    row_entropy = -(weights * torch.log(weights.clamp(min=1e-12))).sum(-1)
    entropy = (row_entropy * valid_f[:, None, :]).sum(-1) / n_valid[:, None]
    length = input_ids.shape[1]
    positions = torch.arange(length, device=weights.device, dtype=torch.float32)
    gap = (positions[None, :] - positions[:, None]).abs()
    row_distance = (weights * gap).sum(-1)
    distance = (row_distance * valid_f[:, None, :]).sum(-1) / n_valid[:, None]
    normaliser = torch.log(n_valid.clamp(min=2))[:, None, None]
    bins = (row_entropy / normaliser * ENTROPY_BINS).long().clamp(0, ENTROPY_BINS - 1)
    hist = (F.one_hot(bins, ENTROPY_BINS).float() * valid_f[:, None, :, None]).sum((0, 2))
    return profiles, entropy, distance, hist


def attention_statistics(
    lm: LoadedModel,
    dataset: TextDataset,
    scheme: Scheme | np.ndarray | None = None,
    progress: ProgressFn | None = None,
    cache: DiskCache | None = None,
    max_tokens: int = 2048,
    sampler: ContextSampler | None = None,
) -> AttentionStats:
    """Stream attention over ``dataset`` once and keep only per-sample summaries (cached on disk).

    ``sampler``: also collect its context vectors from the same pass (the similarity's; nothing
    is collected when the statistics come from the cache).
    """
    cache = cache if cache is not None else DiskCache()
    keep = resolve_keep_mask(lm, scheme)
    if sampler is not None and not sampler.matches(dataset, keep):
        sampler = None  # sampled from other data or under another mask: this pass cannot fill it
    key = cache_key("attnstats", model=lm.fingerprint, data=dataset.fingerprint, mask=mask_key(keep))
    return cached_part(
        cache,
        key,
        lambda: _attention_statistics(lm, dataset, keep, max_tokens, progress, sampler),
        lambda stats: (stats.arrays(), {"model": lm.name, "data": dataset.name}),
        lambda arrays, _: AttentionStats(**arrays),
    )


def _attention_statistics(
    lm: LoadedModel, dataset: TextDataset, keep: np.ndarray, max_tokens: int, progress: ProgressFn | None, sampler: ContextSampler | None
) -> AttentionStats:
    n, layers, heads = len(dataset), lm.num_layers, lm.num_heads
    profiles = np.full((n, layers, heads, len(PROFILE_NAMES)), np.nan, dtype=np.float32)
    entropy = np.full((n, layers, heads), np.nan, dtype=np.float32)
    distance = np.full((n, layers, heads), np.nan, dtype=np.float32)
    hist = np.zeros((layers, heads, ENTROPY_BINS), dtype=np.float64)
    cls_ids, sep_ids = special_ids(lm.tokenizer)
    for batch in iter_attention(lm, dataset, keep, max_tokens, progress or no_progress, contexts=sampler is not None):
        if sampler is not None and batch.context is not None:
            sampler.add(batch.indices, batch.context)
        for layer, weights in enumerate(batch.layers):
            if weights is None:
                continue
            present = lm.kept_heads[layer]
            p, e, d, h = batch_statistics(weights, batch.input_ids, batch.valid, cls_ids, sep_ids)
            rows = batch.indices[:, None]
            profiles[rows, layer, present] = p.cpu().numpy()
            entropy[rows, layer, present] = e.cpu().numpy()
            distance[rows, layer, present] = d.cpu().numpy()
            hist[layer, present] += h.cpu().numpy()
    return AttentionStats(profiles, entropy, distance, hist)
