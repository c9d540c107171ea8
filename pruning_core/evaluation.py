"""Masked evaluation: accuracy, loss, per-sample probabilities and agreement with the full model.

Fast by construction: tokenised once per (model, dataset), length-sorted batches with dynamic
padding under a token budget (both from :mod:`pruning_core.batching`), inference mode, and a disk cache keyed by model fingerprint, data
fingerprint, mask and code version.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from .batching import (
    Encoded,
    collate,
    default_max_tokens,
    encode,
    is_oom,
    length_batches,
    length_batches_subset,
    mask_key,
    resolve_keep_mask,
)
from .cache import DiskCache, cache_key
from .data import TextDataset
from .errors import DataError
from .fastpath import compact_model, supports_compact
from .incremental import prefix_store, run_with_prefix
from .loading import LoadedModel
from .progress import ProgressFn, no_progress
from .schemes import Scheme


def forward_logits(
    lm: LoadedModel,
    encoded: Encoded,
    gates: np.ndarray | torch.Tensor | None = None,
    progress: ProgressFn | None = None,
    max_tokens: int | None = None,
    model: torch.nn.Module | None = None,
    compact: bool = True,
) -> np.ndarray:
    """Logits (samples, classes) in dataset order, with optional head gates.

    A binary mask on the model itself runs compact (see :mod:`pruning_core.fastpath`: gated heads
    sliced out, the last layer for the first token only); ``compact=False`` or another ``model``
    runs the plain gated forward. The batch budget halves and the batch is retried when the
    device runs out of memory.
    """
    report = progress or no_progress
    if model is None and compact and supports_compact(lm, gates):
        runner = compact_model(lm, gates).logits
        context = contextlib.nullcontext()
    else:
        target = model or lm.model
        context = lm.gated(gates, target)

        def runner(batch: dict[str, torch.Tensor]) -> torch.Tensor:
            return target(**batch).logits

    budget = max_tokens or default_max_tokens(lm.device)
    pad_id = lm.pad_id
    logits = np.zeros((len(encoded), lm.num_labels), dtype=np.float32)
    pending = length_batches(encoded.lengths, budget)
    done = 0
    with torch.inference_mode(), lm.autocast(), context:
        while pending:
            indices = pending.pop(0)
            try:
                out = runner(collate(encoded, indices, pad_id, lm.device))
            except (torch.OutOfMemoryError, RuntimeError) as exc:
                if not is_oom(exc) or budget <= int(encoded.lengths[indices].max()):
                    raise
                budget //= 2
                if lm.device.type == "cuda":
                    torch.cuda.empty_cache()
                remaining = np.concatenate([indices, *pending]) if pending else indices
                pending = length_batches_subset(encoded.lengths, remaining, budget)
                continue
            logits[indices] = out.float().cpu().numpy()
            done += len(indices)
            report(done / len(encoded), f"{done}/{len(encoded)} samples")
    return logits


@dataclass
class EvalResult:
    """Outcome of one masked evaluation."""

    accuracy: float
    loss: float
    agreement: float
    n: int
    probs: np.ndarray
    preds: np.ndarray
    labels: np.ndarray
    sample_loss: np.ndarray
    full_preds: np.ndarray
    keep_mask: np.ndarray
    seconds: float
    from_cache: bool = False
    notices: list[str] = field(default_factory=list)

    @property
    def confidence(self) -> np.ndarray:
        """Probability of the predicted class per sample."""
        return self.probs[np.arange(self.n), self.preds]

    @property
    def flipped(self) -> np.ndarray:
        """Indices of samples whose prediction differs from the full model's."""
        return np.nonzero(self.preds != self.full_preds)[0]

    @property
    def heads_pruned(self) -> int:
        return int((~self.keep_mask).sum())

    def summary(self) -> dict:
        return {
            "accuracy": self.accuracy,
            "loss": self.loss,
            "agreement": self.agreement,
            "n": self.n,
            "heads_pruned": self.heads_pruned,
            "flipped": int(len(self.flipped)),
            "seconds": round(self.seconds, 4),
            "from_cache": self.from_cache,
            "notices": self.notices,
        }


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def _sample_losses(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return -log_probs[np.arange(len(labels)), labels]


def _logits(
    lm: LoadedModel,
    dataset: TextDataset,
    encoded: Encoded,
    keep: np.ndarray,
    progress: ProgressFn,
    max_tokens: int | None,
    incremental: bool,
    remember: bool,
) -> np.ndarray:
    """Logits of a keep-mask, reusing remembered hidden states where the first layers agree."""
    gates = None if np.array_equal(keep, lm.present_mask()) else keep
    if not incremental:
        return forward_logits(lm, encoded, gates, progress, max_tokens)
    data_key = f"{dataset.fingerprint}:{encoded.max_length}"
    store = prefix_store(lm)
    prefix, start = store.best(data_key, keep)
    if prefix is not None and len(prefix.logits) != len(encoded):
        store.clear()
        prefix, start = None, 0
    if start == 0 and not remember:
        return forward_logits(lm, encoded, gates, progress, max_tokens)
    try:
        states = run_with_prefix(lm, encoded, keep, prefix if start > 0 else None, max_tokens, progress)
    except (torch.OutOfMemoryError, RuntimeError) as exc:
        if not is_oom(exc):
            raise
        store.clear()
        return forward_logits(lm, encoded, gates, progress, max_tokens)
    if remember:
        store.put(data_key, mask_key(keep), states)
    return states.logits


def evaluate(
    lm: LoadedModel,
    dataset: TextDataset,
    scheme: Scheme | np.ndarray | None = None,
    *,
    max_length: int | None = None,
    progress: ProgressFn | None = None,
    cache: DiskCache | None = None,
    max_tokens: int | None = None,
    incremental: bool = True,
    remember: bool = False,
) -> EvalResult:
    """Evaluate ``lm`` on ``dataset`` with the heads of ``scheme`` gated off.

    Results are cached on disk (``cache``; default: the user cache folder) keyed by model
    fingerprint, data fingerprint, mask, maximum length, precision and code version. With ``incremental``,
    layers below the first one whose gates differ from a remembered mask are not recomputed;
    ``remember`` keeps this mask's hidden states for later evaluations (memory-bounded).
    """
    cache = cache if cache is not None else DiskCache()
    report = progress or no_progress
    keep = resolve_keep_mask(lm, scheme)
    encoded = encode(lm, dataset, max_length)
    notices = list(dataset.notices)
    if encoded.truncated:
        notices.append(f"{encoded.truncated} sample(s) longer than {encoded.max_length} tokens were truncated.")
    if not keep.any():
        notices.append("Every head is gated off: the model sees no interaction between tokens.")
    key = cache_key(
        "eval", model=lm.fingerprint, data=dataset.fingerprint, mask=mask_key(keep), max_length=encoded.max_length, precision=lm.precision
    )
    hit = cache.get(key, shapes={"logits": (len(encoded), lm.num_labels), "full_preds": (len(encoded),)})
    started = time.perf_counter()
    if hit is not None:
        arrays, _ = hit
        logits = arrays["logits"]
        full_preds = arrays["full_preds"]
        from_cache = True
    else:
        full_mask = lm.present_mask()
        if np.array_equal(keep, full_mask):
            logits = _logits(lm, dataset, encoded, keep, report, max_tokens, incremental, remember)
            full_preds = logits.argmax(axis=1)
        else:
            full = evaluate(
                lm,
                dataset,
                None,
                max_length=encoded.max_length,
                cache=cache,
                max_tokens=max_tokens,
                incremental=incremental,
                remember=remember,
            )
            full_preds = full.preds
            logits = _logits(lm, dataset, encoded, keep, report, max_tokens, incremental, remember)
        if not cache.put(key, {"logits": logits, "full_preds": full_preds}, {"model": lm.name, "data": dataset.name}) and cache.last_error:
            notices.append(cache.last_error)
        from_cache = False
    labels = encoded.labels
    preds = logits.argmax(axis=1)
    losses = _sample_losses(logits.astype(np.float64), labels)
    if len(labels) == 0:
        raise DataError("The dataset has no rows to evaluate.")
    return EvalResult(
        accuracy=float((preds == labels).mean()),
        loss=float(losses.mean()),
        agreement=float((preds == full_preds).mean()),
        n=len(labels),
        probs=_softmax(logits.astype(np.float64)).astype(np.float32),
        preds=preds,
        labels=labels,
        sample_loss=losses.astype(np.float32),
        full_preds=full_preds,
        keep_mask=keep,
        seconds=time.perf_counter() - started,
        from_cache=from_cache,
        notices=notices,
    )
