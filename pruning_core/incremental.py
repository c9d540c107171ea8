"""Incremental evaluation: reuse the hidden states below the first layer whose gates changed.

A :class:`PrefixStates` holds, for one reference keep-mask and one tokenised dataset, every
layer's input hidden states (and the exact arguments the encoder passed to the layer). Evaluating
another mask then runs only the layers from the first one whose gates differ, and the classifier
head. States are kept per model in a small least-recently-used store with a memory bound
(``$BHPVAS_PREFIX_CACHE_MB``, default 1024), shared safely between threads (read-only tensors).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

import numpy as np
import torch

from .batching import Encoded, collate, default_max_tokens, length_batches
from .fastpath import compact_model, supports_compact
from .loading import LoadedModel
from .lru import LRUCache
from .oom import halving_retry
from .progress import ProgressFn, no_progress
from .settings import env_number


@dataclass
class PrefixStates:
    """Per batch: the input of every layer and the layer call's other arguments, under ``keep``.

    A compact run (:mod:`pruning_core.fastpath`) records packed inputs (tokens, hidden) and no call
    arguments (None); a plain run records padded inputs (batch, length, hidden) and the arguments
    the encoder passed to its layers. A compact run can start from either; a plain run only from
    a plain run's states.
    """

    keep: np.ndarray
    batches: list[np.ndarray]
    inputs: list[list[torch.Tensor]]
    call_args: list[tuple[tuple, dict] | None]
    logits: np.ndarray

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for batch in self.inputs for t in batch)


def first_changed_layer(reference: np.ndarray, keep: np.ndarray) -> int:
    """Index of the first layer whose keep-mask differs (the number of layers if none does)."""
    differs = np.nonzero((reference != keep).any(axis=1))[0]
    return int(differs[0]) if len(differs) else len(keep)


def _layer_output(output):
    return output[0] if isinstance(output, tuple) else output


_RECORDING: ContextVar[list | None] = ContextVar("bhpvas_recording", default=None)


@contextmanager
def _recording(layers: list[torch.Tensor]) -> Iterator[tuple[list[torch.Tensor], dict]]:
    """Record each layer's input (and the layer call's other arguments) for this caller only.

    The hooks sit on a model other threads may be running; each hook records only while its own
    list is the caller's current one.
    """
    recorded: list[torch.Tensor] = []
    captured: dict = {}

    def record(module, args, kwargs):
        if _RECORDING.get() is recorded:
            recorded.append(args[0])
            captured.setdefault("call", (args[1:], kwargs))

    handles = [layer.register_forward_pre_hook(record, with_kwargs=True) for layer in layers]
    token = _RECORDING.set(recorded)
    try:
        yield recorded, captured
    finally:
        _RECORDING.reset(token)
        for handle in handles:
            handle.remove()


def run_with_prefix(
    lm: LoadedModel,
    encoded: Encoded,
    keep: np.ndarray,
    prefix: PrefixStates | None = None,
    max_tokens: int | None = None,
    progress: ProgressFn | None = None,
) -> PrefixStates:
    """Logits of ``keep`` and its own prefix states, starting from ``prefix`` where it can.

    Without ``prefix`` every layer runs (one forward pass, recording the states). Binary masks run
    compact (:mod:`pruning_core.fastpath`), other gates through the gated model. When the device
    runs out of memory, the prefix is dropped and every layer runs again with half the batch
    budget (see :func:`pruning_core.oom.halving_retry`).
    """
    budget = max_tokens or default_max_tokens(lm.device)
    attempts = iter((prefix,))

    def attempt(tokens: int) -> PrefixStates:
        # The first try may start from the prefix (whose batches are fixed); retries start afresh.
        return _run_once(lm, encoded, keep, next(attempts, None), tokens, progress)

    minimum = int(encoded.lengths.max()) if len(encoded) else 1
    return halving_retry(attempt, budget, minimum, lm.device, "an incremental evaluation")


def _run_once(
    lm: LoadedModel, encoded: Encoded, keep: np.ndarray, prefix: PrefixStates | None, max_tokens: int, progress: ProgressFn | None
) -> PrefixStates:
    report = progress or no_progress
    compact = compact_model(lm, keep) if supports_compact(lm, keep) else None
    if prefix is not None and compact is None and any(args is None for args in prefix.call_args):
        prefix = None  # states of a compact run carry no layer-call arguments for the plain layers
    layers = compact.layers if compact is not None else lm.adapter.layers(lm.model)
    start = first_changed_layer(prefix.keep, keep) if prefix is not None else 0
    if prefix is not None and start == len(layers):
        return prefix
    batches = prefix.batches if prefix is not None else length_batches(encoded.lengths, max_tokens)
    pad_id = lm.pad_id
    logits = np.zeros((len(encoded), lm.num_labels), dtype=np.float32)
    inputs: list[list[torch.Tensor]] = []
    call_args: list[tuple[tuple, dict] | None] = []
    gating = contextlib.nullcontext() if compact is not None else lm.gated(keep)
    with torch.inference_mode(), lm.autocast(), gating:
        for b, indices in enumerate(batches):
            batch = collate(encoded, indices, pad_id, lm.device)
            if compact is not None:
                recorded = list(prefix.inputs[b][:start]) if prefix is not None else []
                hidden = prefix.inputs[b][start] if prefix is not None else None
                out = compact.forward_from(batch, start, hidden, record=recorded)
                inputs.append(recorded)
                call_args.append(None)
            elif prefix is None:
                with _recording(layers) as (recorded, captured):
                    out = lm.model(**batch).logits
                inputs.append(list(recorded))
                call_args.append(captured.get("call", ((), {})))
            else:
                args, kwargs = prefix.call_args[b]
                hidden = prefix.inputs[b][start]
                recorded = list(prefix.inputs[b][: start + 1])
                for index in range(start, len(layers)):
                    hidden = _layer_output(layers[index](hidden, *args, **kwargs))
                    if index + 1 < len(layers):
                        recorded.append(hidden)
                out = lm.adapter.classify(lm.model, hidden)
                inputs.append(recorded)
                call_args.append((args, kwargs))
            logits[indices] = out.float().cpu().numpy()
            report((b + 1) / len(batches), f"batch {b + 1}/{len(batches)} from layer {start}")
    return PrefixStates(keep.copy(), batches, inputs, call_args, logits)


def prefix_sharing_order(masks: list[np.ndarray]) -> list[int]:
    """Indices of ``masks`` in lexicographic order of their gates, layer 0 first.

    In that order each mask shares with the one just before it as many leading layers as with any
    mask evaluated before it (a trie walked depth first), so with only the last mask's states
    remembered every distinct prefix of layers is computed once: the least work any order allows.
    """
    return sorted(range(len(masks)), key=lambda i: np.asarray(masks[i], dtype=bool).reshape(-1).tobytes())


class PrefixStore:
    """Least-recently-used prefix states of one model, bounded in bytes, keyed by dataset."""

    def __init__(self, max_bytes: int | None = None):
        self.max_bytes = max_bytes if max_bytes is not None else int(env_number("BHPVAS_PREFIX_CACHE_MB", 1024, minimum=0) * 2**20)
        self._entries: LRUCache[PrefixStates] = LRUCache(max_bytes=self.max_bytes, sizeof=lambda states: states.nbytes)

    def best(self, data_key: str, keep: np.ndarray) -> tuple[PrefixStates | None, int]:
        """The stored states for ``data_key`` sharing the most leading layers with ``keep``."""
        candidates = [(key, states, first_changed_layer(states.keep, keep)) for key, states in self._entries.items() if key[0] == data_key]
        if not candidates:
            return None, 0
        key, states, shared = max(candidates, key=lambda c: c[2])
        self._entries.get(key)
        return states, shared

    def touch(self, mask: str) -> None:
        """Mark the states of ``mask`` (any dataset) as just used: a result served from elsewhere
        (the app's memory) keeps its hidden states from being the next evicted, so the next
        toggle from it stays incremental."""
        for key in [key for key, _ in self._entries.items() if key[1] == mask]:
            self._entries.get(key)

    def put(self, data_key: str, mask_key: str, states: PrefixStates) -> None:
        if self.max_bytes > 0:
            self._entries.put((data_key, mask_key), states)

    def clear(self) -> None:
        self._entries.clear()


_STORE_LOCK = threading.Lock()


def prefix_store(lm: LoadedModel) -> PrefixStore:
    """The prefix store attached to a loaded model (created on first use)."""
    with _STORE_LOCK:
        store = lm.caches.get("prefix_store")
        if store is None:
            store = lm.caches["prefix_store"] = PrefixStore()
        return store
