"""Compact evaluation: run a binary keep-mask as the smaller model it describes.

Exact up to float rounding, three savings:

- gated-off heads are sliced out of q/k/v and the output projection, in a structural copy of the
  model that shares every other tensor with the cached model (a few MB per mask, never a write
  into the shared model); each layer's q/k/v run as one product;
- padding is dropped: between the embeddings and the classifier the hidden states are *packed*,
  (tokens, hidden) with only the real tokens, and padded again only inside attention, so the
  position-wise products (q/k/v, output projection, feed-forward) do no work on padding;
- the classifier reads only the first token, so the last layer computes its query, attention,
  output projection and feed-forward for that token alone (keys and values for every token);
- the first layer's input (the embeddings) and its heads' context vectors do not depend on the
  mask: they are computed once per batch of a dataset for every head and kept per model
  (:func:`shared_start`, bounded by ``$BHPVAS_FIRST_LAYER_CACHE_MB``, default 256), so a mask
  costs only its first layer's output projection and feed-forward there.

In bf16 on a CPU the products' weights are prepacked for oneDNN once (the feed-forward's once per
model, the sliced q/k/v and output projections once per mask), the same products bit for bit
(:mod:`pruning_core.prepacked`).

Fractional gates, an all-pruned mask and non-absolute position embeddings use the plain gated
forward instead (:func:`supports_compact`).
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .adapters import ArchAdapter, _get, _set
from .loading import LoadedModel
from .lru import LRUCache
from .prepacked import Product, use_prepacked
from .settings import env_number
from .surgery import shrunk_copy, weight_sharing_copy

COMPACT_MODELS_KEPT = 4
FIRST_LAYER_CACHE_MB = 256
_LOCK = threading.Lock()


@dataclass(frozen=True)
class Packing:
    """Where a collated batch's real tokens are: ``index`` into the flattened (batch x length)
    positions, ``starts`` the packed position of each row's first token, ``key_mask`` for attention."""

    index: torch.Tensor
    starts: torch.Tensor
    key_mask: torch.Tensor
    batch: int
    length: int

    @classmethod
    def of(cls, attention_mask: torch.Tensor) -> Packing:
        mask = attention_mask.bool()
        lengths = mask.sum(1)
        return cls(mask.reshape(-1).nonzero().squeeze(1), torch.cumsum(lengths, 0) - lengths, mask[:, None, None, :], *mask.shape)

    def pack(self, hidden: torch.Tensor) -> torch.Tensor:
        """(batch, length, d) -> (tokens, d); packed input is returned as it is."""
        return hidden if hidden.dim() == 2 else hidden.reshape(self.batch * self.length, -1)[self.index]

    def unpack(self, packed: torch.Tensor) -> torch.Tensor:
        """(tokens, d) -> (batch, length, d) with zeros at padding."""
        padded = packed.new_zeros(self.batch * self.length, packed.shape[-1])
        padded[self.index] = packed
        return padded.view(self.batch, self.length, -1)


@dataclass(frozen=True)
class Feedforward:
    """A layer's feed-forward block: ``output(activation(input(x)))`` (dropout is off in eval mode)."""

    input: Product
    activation: nn.Module
    output: Product

    @classmethod
    def of(cls, adapter: ArchAdapter, layer: nn.Module, prepack: bool) -> Feedforward:
        return cls(Product.of(adapter.ffn_in(layer), prepack), adapter.ffn_activation(layer), Product.of(adapter.ffn_out(layer), prepack))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.output(self.activation(self.input(x)))


@dataclass
class CompactModel:
    """A mask's model: ``layers`` the shrunk layers, ``qkv`` each layer's q/k/v stacked into one
    product (with its number of heads), ``out`` each layer's attention output projection,
    ``start`` the model's mask-independent start (shared by every mask, the feed-forward blocks
    too) and ``first_columns`` the kept heads' columns of the first layer's stored context vectors."""

    body: nn.Module
    layers: list[nn.Module]
    qkv: list[tuple[Product, int]]
    out: list[Product]
    adapter: ArchAdapter
    head_dim: int
    start: SharedStart
    first_columns: torch.Tensor

    def context(self, index: int, hidden: torch.Tensor, packing: Packing, first_only: bool = False) -> torch.Tensor:
        """Layer ``index``'s context vectors of its kept heads from packed hidden states (see :func:`_packed_attention`)."""
        product, heads = self.qkv[index]
        core = self.adapter.attention_core(self.layers[index])
        scale = getattr(core, "scaling", self.head_dim**-0.5)
        return _packed_attention(hidden, product, heads, self.head_dim, scale, packing, first_only)

    def project(self, index: int, context: torch.Tensor) -> torch.Tensor:
        """Layer ``index``'s attention output projection of its kept heads' context vectors."""
        return self.out[index](context)

    def after_projection(self, index: int, projected: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        """Layer ``index`` from its output projection's result on (see :func:`after_projection`)."""
        return after_projection(self.adapter, self.layers[index], projected, residual, self.start.feedforwards[index])

    def layer(self, index: int, hidden: torch.Tensor, packing: Packing, first_only: bool = False) -> torch.Tensor:
        """One layer on packed hidden states; ``first_only``: its output for each row's first token (rows, d)."""
        context = self.context(index, hidden, packing, first_only)
        return self.after_projection(index, self.project(index, context), hidden[packing.starts] if first_only else hidden)

    def forward_from(
        self, batch: dict[str, torch.Tensor], start: int = 0, hidden: torch.Tensor | None = None, record: list[torch.Tensor] | None = None
    ) -> torch.Tensor:
        """Logits of a collated batch, from layer ``start`` with that layer's input ``hidden``
        (packed or padded; default: the embeddings; from layer 0 the first-layer store's own copy
        of them is used). ``record`` receives the input of every layer from ``start`` on, packed."""
        packing = Packing.of(batch["attention_mask"])
        last = len(self.layers) - 1
        if start == 0 and self.start.keeps_first_layer and last > 0:
            known = self.start.first_layer(batch, packing)
            if record is not None:
                record.append(known.hidden)
            context = known.context.index_select(1, self.first_columns)
            hidden = self.after_projection(0, self.project(0, context), known.hidden)
            start = 1
        elif hidden is None:
            hidden = self.start.embed(batch, packing)
        else:
            hidden = packing.pack(hidden)
        for index in range(start, last):
            if record is not None:
                record.append(hidden)
            hidden = self.layer(index, hidden, packing)
        if record is not None:
            record.append(hidden)
        first = self.layer(last, hidden, packing, first_only=True)
        return self.adapter.classify(self.body, first[:, None, :])

    def logits(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.forward_from(batch)


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


@dataclass(frozen=True)
class FirstLayer:
    """One batch's first-layer input (packed) and the context vectors of every present head there."""

    hidden: torch.Tensor
    context: torch.Tensor

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (self.hidden, self.context))


@dataclass(frozen=True)
class SharedStart:
    """What no mask changes, built once per loaded model: the model without its encoder layers
    (``embedder``: its output is the first layer's input), the first layer's stacked q/k/v for
    every present head, every layer's feed-forward block, the store of each batch's
    :class:`FirstLayer`, and whether products are prepacked (:mod:`pruning_core.prepacked`)."""

    embedder: nn.Module
    qkv: Product
    heads: int
    head_dim: int
    scale: float
    store: LRUCache[FirstLayer]
    feedforwards: list[Feedforward]
    prepack: bool

    @property
    def keeps_first_layer(self) -> bool:
        return bool(self.store.max_bytes)

    def embed(self, batch: dict[str, torch.Tensor], packing: Packing) -> torch.Tensor:
        """The first layer's input, packed."""
        out = self.embedder.base_model(**batch)
        return packing.pack(out[0] if isinstance(out, tuple) else out.last_hidden_state)

    def first_layer(self, batch: dict[str, torch.Tensor], packing: Packing) -> FirstLayer:
        """The batch's first-layer input and every head's context vectors there (from the store)."""
        key = _batch_key(batch)
        known = self.store.get(key)
        if known is None:
            hidden = self.embed(batch, packing)
            context = _packed_attention(hidden, self.qkv, self.heads, self.head_dim, self.scale, packing, False)
            known = FirstLayer(hidden, context)
            self.store.put(key, known)
        return known


def _batch_key(batch: dict[str, torch.Tensor]) -> str:
    digest = hashlib.blake2b(digest_size=16)
    for name in sorted(batch):
        tensor = batch[name]
        digest.update(f"{name}{tuple(tensor.shape)}".encode())
        digest.update(tensor.detach().cpu().numpy().tobytes())
    return digest.hexdigest()


def shared_start(lm: LoadedModel) -> SharedStart:
    """The mask-independent start of ``lm`` (built on first use); its first-layer store is bounded
    by ``$BHPVAS_FIRST_LAYER_CACHE_MB`` (0: nothing kept, every mask runs its own first layer)."""
    with _LOCK:
        start = lm.caches.get("shared_start")
        if start is None:
            embedder = weight_sharing_copy(lm.model)
            _set(embedder.base_model, lm.adapter.layers_path, nn.ModuleList())
            layers = lm.adapter.layers(lm.model)
            prepack = use_prepacked(lm.precision, lm.device)
            qkv, heads = _stacked_qkv(lm.adapter, layers[0], lm.head_dim, prepack)
            scale = getattr(lm.adapter.attention_core(layers[0]), "scaling", lm.head_dim**-0.5)
            limit = int(env_number("BHPVAS_FIRST_LAYER_CACHE_MB", FIRST_LAYER_CACHE_MB, minimum=0) * 2**20)
            store = LRUCache(max_bytes=limit, sizeof=lambda entry: entry.nbytes)
            feedforwards = [Feedforward.of(lm.adapter, layer, prepack) for layer in layers]
            start = SharedStart(embedder.eval(), qkv, heads, lm.head_dim, scale, store, feedforwards, prepack)
            lm.caches["shared_start"] = start
        return start


def _stacked_qkv(adapter: ArchAdapter, layer: nn.Module, head_dim: int, prepack: bool) -> tuple[Product, int]:
    q_lin, k_lin, v_lin = adapter.qkv(layer)
    weight = torch.cat([q_lin.weight, k_lin.weight, v_lin.weight])
    bias = torch.cat([q_lin.bias, k_lin.bias, v_lin.bias]) if q_lin.bias is not None else None
    return Product(weight, bias, prepack), q_lin.out_features // head_dim


def _build(lm: LoadedModel, keep: np.ndarray) -> CompactModel:
    model = shrunk_copy(lm.model, lm.adapter, lm.kept_heads, lm.head_dim, keep, share_weights=True)
    layers = lm.adapter.layers(model)
    start = shared_start(lm)
    stacked = [_stacked_qkv(lm.adapter, layer, lm.head_dim, start.prepack) for layer in layers]
    out = [Product.of(lm.adapter.out_proj(layer), start.prepack) for layer in layers]
    positions = [i for i, h in enumerate(lm.kept_heads[0]) if keep[0, h]]
    columns = torch.tensor(
        [p * lm.head_dim + j for p in positions for j in range(lm.head_dim)], dtype=torch.long, device=start.qkv.weight.device
    )
    return CompactModel(model, layers, stacked, out, lm.adapter, lm.head_dim, start, columns)


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


def _packed_attention(
    hidden: torch.Tensor,
    qkv: Product,
    heads: int,
    head_dim: int,
    scale: float,
    packing: Packing,
    first_only: bool,
) -> torch.Tensor:
    """The heads' context vectors from packed hidden states: (tokens, heads x head_dim), or one
    row per sequence (its first token) with ``first_only``."""
    rows = packing.batch if first_only else hidden.shape[0]
    if heads == 0:
        return hidden.new_zeros(rows, 0)
    stacked = packing.unpack(qkv(hidden))
    stacked = stacked.view(packing.batch, packing.length, 3, heads, head_dim).permute(2, 0, 3, 1, 4)
    query, key, value = stacked[0], stacked[1], stacked[2]
    if first_only:
        query = query[:, :, :1]
    context = F.scaled_dot_product_attention(query, key, value, attn_mask=packing.key_mask, scale=scale).transpose(1, 2)
    if first_only:
        return context.reshape(packing.batch, heads * head_dim)
    return context.reshape(packing.batch * packing.length, heads * head_dim)[packing.index]


def after_projection(
    adapter: ArchAdapter, layer: nn.Module, projected: torch.Tensor, residual: torch.Tensor, feedforward: Feedforward
) -> torch.Tensor:
    """An encoder layer from its attention output projection's result ``projected`` on: residual
    and LayerNorm, ``feedforward`` (the layer's), residual and LayerNorm (dropout is off in eval
    mode; position-wise, so packed rows work as they are)."""
    if hasattr(layer, "sa_layer_norm"):
        attended = layer.sa_layer_norm(projected + residual)
    else:
        self_output = _get(layer, adapter.out_proj_path.rsplit(".", 1)[0])
        attended = self_output.LayerNorm(self_output.dropout(projected) + residual)
    return adapter.ffn_norm(layer)(feedforward(attended) + attended)
