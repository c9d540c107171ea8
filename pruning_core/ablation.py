"""Leave-one-out ablation: the change of loss and accuracy when one head alone is gated off.

A measured criterion (no gradient approximation): for every present head h, the calibration set
(at most :data:`~pruning_core.calibration.MEASURED_ROWS` rows of it, a seeded sample) is
evaluated with h gated off. Per batch, the full model runs once on the packed fast path
(:mod:`pruning_core.fastpath`), keeping every layer's input and, at each layer, the context
vectors of all its heads and their output projection. Gating head h off in that layer only
subtracts h's share of the projection (its columns times its context vector), so each head costs
the rest of its own layer and the layers above it; nothing below is recomputed. Models the fast
path does not support evaluate each mask in full instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .batching import Encoded, collate, default_max_tokens, encode, length_batches
from .cache import DiskCache, cache_key
from .calibration import MEASURED_ROWS, measured_subset
from .data import TextDataset
from .evaluation import _sample_losses, evaluate
from .fastpath import Packing, compact_model, supports_compact
from .loading import LoadedModel
from .oom import halving_retry
from .progress import ProgressFn, no_progress

Head = tuple[int, int]


@dataclass
class LeaveOneOut:
    """Per head (layers, heads): loss and accuracy with the head gated off, minus the full model's."""

    loss: np.ndarray
    accuracy: np.ndarray
    full_loss: float
    full_accuracy: float
    n: int

    def arrays(self) -> dict[str, np.ndarray]:
        return {
            "loss": self.loss,
            "accuracy": self.accuracy,
            "full": np.asarray([self.full_loss, self.full_accuracy]),
            "n": np.asarray(self.n),
        }

    @classmethod
    def from_arrays(cls, a: dict[str, np.ndarray]) -> LeaveOneOut:
        return cls(a["loss"], a["accuracy"], float(a["full"][0]), float(a["full"][1]), int(a["n"]))


def leave_one_out(
    lm: LoadedModel,
    dataset: TextDataset,
    progress: ProgressFn | None = None,
    cache: DiskCache | None = None,
    rows: int | None = MEASURED_ROWS,
) -> LeaveOneOut:
    """Loss and accuracy change of gating off each present head alone, on ``dataset`` (at most
    ``rows`` rows of it, a seeded sample; None: all rows; cached)."""
    cache = cache if cache is not None else DiskCache()
    if rows is not None:
        dataset = measured_subset(dataset, rows)
    report = progress or no_progress
    present = lm.present_mask()
    key = cache_key("loo", model=lm.fingerprint, data=dataset.fingerprint, present=present.tobytes().hex(), precision=lm.precision)
    hit = cache.get(key)
    if hit is not None:
        return LeaveOneOut.from_arrays(hit[0])
    fast = supports_compact(lm)
    # Only the per-mask loop starts from the full model's remembered hidden states.
    full = evaluate(lm, dataset, None, cache=cache, remember=not fast)
    loss = np.full(lm.shape, np.nan)
    accuracy = np.full(lm.shape, np.nan)
    heads = list(zip(*np.nonzero(present)))
    if fast:
        encoded = encode(lm, dataset)
        budget = default_max_tokens(lm.device)
        minimum = int(encoded.lengths.max()) if len(encoded) else 1
        logits = halving_retry(lambda tokens: head_off_logits(lm, encoded, tokens, report), budget, minimum, lm.device, "leave-one-out")
        for (layer, head), head_logits in logits.items():
            losses = _sample_losses(head_logits.astype(np.float64), encoded.labels)
            loss[layer, head] = float(losses.mean()) - full.loss
            accuracy[layer, head] = float((head_logits.argmax(axis=1) == encoded.labels).mean()) - full.accuracy
    else:
        for i, (layer, head) in enumerate(heads):
            keep = present.copy()
            keep[layer, head] = False
            result = evaluate(lm, dataset, keep, cache=cache)
            loss[layer, head] = result.loss - full.loss
            accuracy[layer, head] = result.accuracy - full.accuracy
            report((i + 1) / len(heads), f"leave-one-out {i + 1}/{len(heads)}")
    result = LeaveOneOut(loss, accuracy, full.loss, full.accuracy, full.n)
    cache.put(key, result.arrays())
    return result


def head_off_logits(lm: LoadedModel, encoded: Encoded, max_tokens: int, progress: ProgressFn | None = None) -> dict[Head, np.ndarray]:
    """Logits of every present head gated off alone, (rows, labels) per head, on the fast path."""
    report = progress or no_progress
    compact = compact_model(lm, None)
    present = lm.present_mask()
    last = len(compact.layers) - 1
    batches = length_batches(encoded.lengths, max_tokens)
    result = {
        (int(layer), int(head)): np.zeros((len(encoded), lm.num_labels), dtype=np.float32) for layer, head in zip(*np.nonzero(present))
    }
    with torch.inference_mode(), lm.autocast():
        for b, indices in enumerate(batches):
            batch = collate(encoded, indices, lm.pad_id, lm.device)
            packing = Packing.of(batch["attention_mask"])
            inputs: list[torch.Tensor] = []
            compact.forward_from(batch, record=inputs)
            done = 0
            for index, layer in enumerate(compact.layers):
                kept = lm.kept_heads[index]
                if not kept:
                    continue
                first_only = index == last
                hidden = inputs[index]
                if index == 0 and compact.start.keeps_first_layer and last > 0:
                    context = compact.start.first_layer(batch, packing).context
                else:
                    context = compact.context(index, hidden, packing, first_only)
                residual = hidden[packing.starts] if first_only else hidden
                out_proj = lm.adapter.out_proj(layer)
                projected = compact.project(index, context)
                for position, head in enumerate(kept):
                    columns = slice(position * lm.head_dim, (position + 1) * lm.head_dim)
                    share = F.linear(context[:, columns], out_proj.weight[:, columns])
                    out = compact.after_projection(index, projected - share, residual)
                    for above in range(index + 1, last + 1):
                        out = compact.layer(above, out, packing, first_only=above == last)
                    logits = lm.adapter.classify(compact.body, out[:, None, :])
                    result[(index, head)][indices] = logits.float().cpu().numpy()
                    done += 1
                    report(
                        (b + done / len(result)) / len(batches), f"leave-one-out: batch {b + 1}/{len(batches)}, head {done}/{len(result)}"
                    )
    return result
