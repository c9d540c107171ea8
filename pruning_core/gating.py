"""Head gating without ``head_mask``: scale each head's context vector before the attention
output projection with a forward pre-hook.

Gates are per call, not per model: the active gates live in a ``ContextVar`` keyed by the model,
so one cached model serves concurrent callers (threads, Streamlit sessions) with different masks.
Hooks are reference-counted and removed when the last gated block exits, leaving the model
exactly as it was.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from .adapters import ArchAdapter

_ACTIVE: ContextVar[dict[int, list[torch.Tensor | None]] | None] = ContextVar("bhpvas_active_gates", default=None)
_REGISTRY_LOCK = threading.Lock()


@dataclass
class _Installed:
    handles: list = field(default_factory=list)
    users: int = 0


_INSTALLED: dict[int, _Installed] = {}


def _make_hook(model_id: int, layer: int, heads_here: int, head_dim: int):
    def hook(module: nn.Module, args: tuple):
        active = _ACTIVE.get()
        if not active:
            return None
        gates = active.get(model_id)
        if gates is None or gates[layer] is None or heads_here == 0:
            return None
        context = args[0]
        shape = context.shape
        gate = gates[layer].to(dtype=context.dtype)
        if gate.dim() == 2:  # one gate row per sample: (batch, heads) against (batch, ..., heads, head_dim)
            gate = gate.view(gate.shape[0], *([1] * (len(shape) - 2)), heads_here)
        scaled = (context.view(*shape[:-1], heads_here, head_dim) * gate[..., None]).view(shape)
        return (scaled, *args[1:])

    hook._bhpvas_gate = True
    return hook


def strip_gate_hooks(model: nn.Module) -> None:
    """Remove gate hooks from a copy of a model (``deepcopy`` copies hooks along with modules)."""
    for module in model.modules():
        for key, hook in list(module._forward_pre_hooks.items()):
            if getattr(hook, "_bhpvas_gate", False):
                del module._forward_pre_hooks[key]


def _install(model: nn.Module, adapter: ArchAdapter, kept_heads: Sequence[Sequence[int]], head_dim: int) -> None:
    key = id(model)
    with _REGISTRY_LOCK:
        entry = _INSTALLED.setdefault(key, _Installed())
        if entry.users == 0:
            for index, layer in enumerate(adapter.layers(model)):
                hook = _make_hook(key, index, len(kept_heads[index]), head_dim)
                entry.handles.append(adapter.out_proj(layer).register_forward_pre_hook(hook))
        entry.users += 1


def _uninstall(model: nn.Module) -> None:
    key = id(model)
    with _REGISTRY_LOCK:
        entry = _INSTALLED[key]
        entry.users -= 1
        if entry.users == 0:
            for handle in entry.handles:
                handle.remove()
            del _INSTALLED[key]


def layer_gates(gates: torch.Tensor, kept_heads: Sequence[Sequence[int]], skip_ones: bool = True) -> list[torch.Tensor | None]:
    """Per-layer gate vectors over the heads present in each layer (None where nothing changes).

    ``gates`` is (layers, heads), or (batch, layers, heads) for a gate per sample (then each
    layer's entry is (batch, present heads)).
    """
    result: list[torch.Tensor | None] = []
    for layer, kept in enumerate(kept_heads):
        vector = gates[..., layer, list(kept)] if len(kept) else gates[..., layer, :0]
        if skip_ones and not vector.requires_grad and bool(torch.all(vector == 1)):
            result.append(None)
        else:
            result.append(vector)
    return result


def as_gate_tensor(mask: np.ndarray | torch.Tensor, device: torch.device | str) -> torch.Tensor:
    """A (layers, heads) float gate tensor from a boolean keep-mask or float gates."""
    if isinstance(mask, torch.Tensor):
        return mask.to(device=device) if mask.dtype.is_floating_point else mask.to(device=device, dtype=torch.float32)
    return torch.as_tensor(np.asarray(mask, dtype=np.float32), device=device)


@contextmanager
def gated(
    model: nn.Module,
    adapter: ArchAdapter,
    gates: np.ndarray | torch.Tensor | None,
    kept_heads: Sequence[Sequence[int]],
    head_dim: int,
) -> Iterator[None]:
    """Run the model with head gates applied, for the current thread/context only.

    ``gates`` has shape (layers, original heads): a boolean keep-mask or float gates (which may
    require grad, for importance and learned pruning); or (batch, layers, original heads), one
    gate row per sample of the batch being run (per-example gradients in one backward pass). ``kept_heads`` lists, per layer, the
    original indices of the heads physically present (all of them for an unpruned model).
    ``None`` gates run the model unchanged.
    """
    if gates is None:
        yield
        return
    device = next(model.parameters()).device
    per_layer = layer_gates(as_gate_tensor(gates, device), kept_heads)
    if all(g is None for g in per_layer):
        yield
        return
    _install(model, adapter, kept_heads, head_dim)
    current = _ACTIVE.get() or {}
    token = _ACTIVE.set({**current, id(model): per_layer})
    try:
        yield
    finally:
        _ACTIVE.reset(token)
        _uninstall(model)
