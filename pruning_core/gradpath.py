"""Gate gradients on the packed model: the differentiable forward behind importance, Michel's
recomputations and DSP.

The same savings as the compact evaluation (:mod:`pruning_core.fastpath`), with every present
head kept and its context vector scaled by a gate that may require grad:

- hidden states are *packed* between the embeddings and the classifier (only the real tokens), so
  the position-wise products and their backward do no work on padding;
- the classifier reads only the first token, so the last layer computes its query, attention,
  output projection and feed-forward for that token alone (keys and values for every token);
- attention is plain matmul-softmax-matmul (as the eager attention): on a CPU the fused kernel's
  backward costs several times its forward.

A gated-off head still runs, so its gate's gradient is defined (as with ``head_mask``). Models
whose positions are not absolute run the eager-attention twin with gate hooks instead.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .fastpath import Packing, SharedStart, _block_output, _stacked_qkv, shared_start, supports_compact
from .gating import as_gate_tensor, layer_gates
from .loading import LoadedModel

_LOCK = threading.Lock()


@dataclass(frozen=True)
class GatedPacked:
    """Per loaded model: each layer's q/k/v stacked into one product, and the embeddings."""

    lm: LoadedModel
    qkv: list[tuple[torch.Tensor, torch.Tensor | None, int]]
    scales: list[float]
    start: SharedStart

    def logits(self, batch: dict[str, torch.Tensor], gates: torch.Tensor) -> torch.Tensor:
        """Logits of a collated batch under ``gates``: (layers, heads) or (batch, layers, heads)
        over the model's original heads, float (possibly requiring grad)."""
        lm = self.lm
        packing = Packing.of(batch["attention_mask"])
        per_layer = layer_gates(gates, lm.kept_heads, skip_ones=False)
        layers = lm.adapter.layers(lm.model)
        hidden = self.start.embed(batch, packing)
        last = len(layers) - 1
        for index, layer in enumerate(layers):
            first_only = index == last
            weight, bias, heads = self.qkv[index]
            context = _gated_attention(hidden, weight, bias, heads, lm.head_dim, self.scales[index], packing, per_layer[index], first_only)
            hidden = _block_output(lm.adapter, layer, context, hidden[packing.starts] if first_only else hidden)
        return lm.adapter.classify(lm.model, hidden[:, None, :])


def gated_packed(lm: LoadedModel) -> GatedPacked:
    """The packed gated forward of ``lm`` (built on first use, kept with the model)."""
    with _LOCK:
        built = lm.caches.get("gated_packed")
        if built is None:
            layers = lm.adapter.layers(lm.model)
            qkv = [_stacked_qkv(lm.adapter, layer, lm.head_dim) for layer in layers]
            scales = [getattr(lm.adapter.attention_core(layer), "scaling", lm.head_dim**-0.5) for layer in layers]
            built = lm.caches["gated_packed"] = GatedPacked(lm, qkv, scales, shared_start(lm))
        return built


def gated_logits(
    lm: LoadedModel, batch: dict[str, torch.Tensor], gates: np.ndarray | torch.Tensor, precision: str | None = None
) -> torch.Tensor:
    """Logits of a collated batch under head ``gates`` ((layers, heads), or (batch, layers, heads)
    for a gate row per sample), differentiable in the gates; ``precision``: autocast (default: the
    model's own). Dropout is off (the model is in eval mode)."""
    gate_tensor = as_gate_tensor(gates, lm.device)
    if not supports_compact(lm):
        model = lm.eager_model()
        with lm.gated(gate_tensor, model=model), lm.autocast(precision):
            return model(**batch).logits
    forward = gated_packed(lm)
    with lm.autocast(precision):
        return forward.logits(batch, gate_tensor)


def _gated_attention(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    heads: int,
    head_dim: int,
    scale: float,
    packing: Packing,
    gate: torch.Tensor,
    first_only: bool,
) -> torch.Tensor:
    """Gated context vectors from packed hidden states: (tokens, heads x head_dim), or one row per
    sequence (its first token) with ``first_only``. ``gate``: (heads,) or (batch, heads)."""
    rows = packing.batch if first_only else hidden.shape[0]
    if heads == 0:
        return hidden.new_zeros(rows, 0)
    qkv = packing.unpack(F.linear(hidden, weight, bias))
    qkv = qkv.view(packing.batch, packing.length, 3, heads, head_dim).permute(2, 0, 3, 1, 4)
    query, key, value = qkv[0], qkv[1], qkv[2]
    if first_only:
        query = query[:, :, :1]
    scores = torch.matmul(query, key.transpose(-1, -2)) * scale
    scores = scores.masked_fill(~packing.key_mask, torch.finfo(scores.dtype).min)
    context = torch.matmul(torch.softmax(scores, dim=-1), value)
    gate = gate.to(context.dtype)
    context = context * (gate.view(-1, heads, 1, 1) if gate.dim() == 2 else gate.view(heads, 1, 1))
    context = context.transpose(1, 2)
    if first_only:
        return context.reshape(packing.batch, heads * head_dim)
    return context.reshape(packing.batch * packing.length, heads * head_dim)[packing.index]
