"""Module surgery on a transformers encoder: remove attention heads, copy a model's structure.

Works on plain ``nn.Module`` trees through an :class:`~pruning_core.adapters.ArchAdapter`, so
loading (pruned folders), physical pruning and the compact evaluation path share one
implementation. transformers 5.x has no ``prune_heads``; :func:`shrink_model` slices q/k/v rows
and output-projection columns for every supported architecture. A layer may lose all its heads:
its attention block then contributes only the output bias.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from .adapters import ArchAdapter
from .gating import strip_gate_hooks


def _slice_linear(linear: nn.Linear, index: torch.Tensor, dim: int) -> nn.Linear:
    """A new Linear keeping ``index`` along ``dim`` of the weight (0: outputs, 1: inputs)."""
    weight = linear.weight.detach().index_select(dim, index).clone()
    bias = None
    if linear.bias is not None:
        bias = linear.bias.detach()[index].clone() if dim == 0 else linear.bias.detach().clone()
    out_features, in_features = weight.shape
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Initializing zero-element tensors")
        new = nn.Linear(in_features, out_features, bias=bias is not None, device="meta")
    new.weight = nn.Parameter(weight, requires_grad=linear.weight.requires_grad)
    if bias is not None:
        new.bias = nn.Parameter(bias, requires_grad=linear.bias.requires_grad)
    return new


class HeadlessAttention(nn.Module):
    """Stand-in for an attention core whose heads were all removed.

    Keeps zero-width q/k/v (and, where the architecture puts it inside the core, the output
    projection) so parameter names stay those of the original model. Returns a zero-width context
    (the output projection then adds only its bias), or the bias itself when it owns the projection.
    """

    def __init__(self, core: nn.Module, qkv_names: Sequence[str], out_name: str | None):
        super().__init__()
        for name in qkv_names:
            setattr(self, name, getattr(core, name))
        self.out_name = out_name
        if out_name is not None:
            setattr(self, out_name, getattr(core, out_name))

    def forward(self, hidden_states: torch.Tensor, *args, **kwargs):
        batch, length = hidden_states.shape[:2]
        if self.out_name is not None:
            bias = getattr(self, self.out_name).bias
            out = bias.expand(batch, length, -1) if bias is not None else hidden_states.new_zeros(batch, length, hidden_states.shape[-1])
            return out, None
        return hidden_states.new_zeros(batch, length, 0), None


def shrink_model(model: nn.Module, adapter: ArchAdapter, keep_positions: Sequence[Sequence[int]], head_dim: int) -> None:
    """In place: keep, per layer, the heads at ``keep_positions`` (indices into that layer's current heads)."""
    out_inside = adapter.out_proj_inside_core()
    out_name = adapter.out_proj_path.rsplit(".", 1)[-1] if out_inside else None
    for layer, positions in zip(adapter.layers(model), keep_positions, strict=False):
        core = adapter.attention_core(layer)
        q, _, _ = adapter.qkv(layer)
        current = q.out_features // head_dim
        positions = sorted(int(p) for p in positions)
        if positions == list(range(current)):
            continue
        device = q.weight.device
        index = torch.tensor([p * head_dim + i for p in positions for i in range(head_dim)], dtype=torch.long, device=device)
        for name in adapter.qkv_names:
            setattr(core, name, _slice_linear(getattr(core, name), index, dim=0))
        out_proj = adapter.out_proj(layer)
        new_out = _slice_linear(out_proj, index, dim=1)
        if out_inside:
            setattr(core, out_name, new_out)
        else:
            parent_path, attr = adapter.out_proj_path.rsplit(".", 1)
            parent = layer
            for part in parent_path.split("."):
                parent = getattr(parent, part)
            setattr(parent, attr, new_out)
        for attr in adapter.heads_count_attrs:
            if hasattr(core, attr):
                setattr(core, attr, len(positions))
        if hasattr(core, "all_head_size"):
            core.all_head_size = len(positions) * head_dim
        if not positions and not isinstance(core, HeadlessAttention):
            adapter.set_attention_core(layer, HeadlessAttention(core, adapter.qkv_names, out_name))


def weight_sharing_copy(model: nn.Module) -> nn.Module:
    """A copy of the module tree that shares every parameter and buffer with ``model`` (no gate hooks).

    Replacing a submodule of the copy leaves ``model`` alone; writing into a shared tensor would not.
    """
    memo = {id(t): t for t in list(model.parameters()) + list(model.buffers())}
    twin = copy.deepcopy(model, memo)
    strip_gate_hooks(twin)
    return twin


def eager_twin(model: nn.Module) -> nn.Module:
    """A weight-sharing twin running eager attention (so it can return attention weights)."""
    twin = weight_sharing_copy(model)
    twin.set_attn_implementation("eager")
    return twin.eval()


def shrunk_copy(
    model: nn.Module,
    adapter: ArchAdapter,
    kept_heads: Sequence[Sequence[int]],
    head_dim: int,
    keep: np.ndarray,
    share_weights: bool = False,
) -> nn.Module:
    """A copy of ``model`` (in eval mode) with only the heads of ``keep`` (layers, original heads).

    ``kept_heads``: the original heads present in ``model`` per layer. ``share_weights``: layers
    whose heads all stay keep the original tensors (cheap, for a read-only view); otherwise
    everything is copied.
    """
    if share_weights:
        copied = weight_sharing_copy(model)
    else:
        copied = copy.deepcopy(model)
        strip_gate_hooks(copied)
    positions = [[i for i, h in enumerate(kept) if keep[layer, h]] for layer, kept in enumerate(kept_heads)]
    shrink_model(copied, adapter, positions, head_dim)
    return copied.eval()
