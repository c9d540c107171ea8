"""Compact evaluation: run a binary keep-mask as the smaller model it describes.

Two savings, exact up to float rounding:

- gated-off heads are sliced out of q/k/v and the output projection, in a structural copy of the
  model that shares every other tensor with the cached model (a few MB per mask, never a write
  into the shared model);
- the classifier reads only the first token, so the last layer computes its query, attention,
  output projection and feed-forward for that token alone (keys and values for every token).

Fractional gates, an all-pruned mask and non-absolute position embeddings use the plain gated
forward instead (:func:`supports_compact`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .adapters import ArchAdapter, _get, _set
from .loading import LoadedModel
from .lru import LRUCache
from .surgery import shrunk_copy

COMPACT_MODELS_KEPT = 4
_LOCK = threading.Lock()


@dataclass
class CompactModel:
    """A mask's model: ``body`` stops before the last encoder layer; ``layers`` are all of them."""

    body: nn.Module
    layers: list[nn.Module]
    adapter: ArchAdapter
    head_dim: int

    def hidden_before_last(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The input of the last encoder layer for a collated batch."""
        out = self.body.base_model(**batch)
        return out[0] if isinstance(out, tuple) else out.last_hidden_state

    def finish(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Logits from the last layer's input: that layer for the first token, then the classifier."""
        first = first_token_layer(self.adapter, self.layers[-1], hidden, attention_mask.bool()[:, None, None, :], self.head_dim)
        return self.adapter.classify(self.body, first)

    def logits(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.finish(self.hidden_before_last(batch), batch["attention_mask"])


def _as_array(gates) -> np.ndarray:
    return gates.detach().cpu().numpy() if isinstance(gates, torch.Tensor) else np.asarray(gates)


def is_binary(gates) -> bool:
    if gates is None:
        return True
    if isinstance(gates, torch.Tensor) and gates.requires_grad:
        return False
    values = _as_array(gates)
    return values.dtype == bool or bool(np.isin(values, (0, 1)).all())


def supports_compact(lm: LoadedModel, gates=None) -> bool:
    """Whether ``gates`` on ``lm`` can run compact (binary, some head kept, absolute positions)."""
    if not is_binary(gates):
        return False
    if gates is not None and not _as_array(gates).astype(bool).any():
        return False
    return getattr(lm.config, "position_embedding_type", "absolute") in (None, "absolute")


def _build(lm: LoadedModel, keep: np.ndarray) -> CompactModel:
    model = shrunk_copy(lm.model, lm.adapter, lm.kept_heads, lm.head_dim, keep, share_weights=True)
    layers = lm.adapter.layers(model)
    _set(model.base_model, lm.adapter.layers_path, nn.ModuleList(layers[:-1]))
    return CompactModel(model, layers, lm.adapter, lm.head_dim)


def compact_model(lm: LoadedModel, gates=None) -> CompactModel:
    """The compact model of a binary keep-mask (None: every present head), a few kept per model."""
    keep = lm.present_mask() if gates is None else _as_array(gates).astype(bool) & lm.present_mask()
    key = keep.tobytes()
    with _LOCK:
        store: LRUCache[CompactModel] = lm.caches.setdefault("compact_models", LRUCache(max_entries=COMPACT_MODELS_KEPT))
    hit = store.get(key)
    if hit is not None:
        return hit
    built = _build(lm, keep)
    store.put(key, built)
    return built


def _first_token_context(
    core: nn.Module, q_lin: nn.Linear, k_lin: nn.Linear, v_lin: nn.Linear, hidden: torch.Tensor, key_mask: torch.Tensor, head_dim: int
) -> torch.Tensor:
    batch, length, _ = hidden.shape
    heads = q_lin.out_features // head_dim
    if heads == 0:
        return hidden.new_zeros(batch, 1, 0)
    query = q_lin(hidden[:, :1]).view(batch, 1, heads, head_dim).transpose(1, 2)
    key = k_lin(hidden).view(batch, length, heads, head_dim).transpose(1, 2)
    value = v_lin(hidden).view(batch, length, heads, head_dim).transpose(1, 2)
    scale = getattr(core, "scaling", head_dim**-0.5)
    context = F.scaled_dot_product_attention(query, key, value, attn_mask=key_mask, scale=scale)
    return context.transpose(1, 2).reshape(batch, 1, heads * head_dim)


def first_token_layer(adapter: ArchAdapter, layer: nn.Module, hidden: torch.Tensor, key_mask: torch.Tensor, head_dim: int) -> torch.Tensor:
    """One encoder layer's output for the first token only, shape (batch, 1, hidden)."""
    core = adapter.attention_core(layer)
    q_lin, k_lin, v_lin = adapter.qkv(layer)
    first = hidden[:, :1]
    context = _first_token_context(core, q_lin, k_lin, v_lin, hidden, key_mask, head_dim)
    out_proj = adapter.out_proj(layer)
    if hasattr(layer, "sa_layer_norm"):
        attended = layer.sa_layer_norm(out_proj(context) + first)
        return layer.output_layer_norm(layer.ffn(attended) + attended)
    self_output = _get(layer, adapter.out_proj_path.rsplit(".", 1)[0])
    attended = self_output(context, first)
    return layer.output(layer.intermediate(attended), attended)
