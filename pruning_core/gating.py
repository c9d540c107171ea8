"""Head gating without ``head_mask``: scale each head's context vector before the attention
output projection with a forward pre-hook; the same hook can record the context vectors.

Gates are per call, not per model: the active gates live in a ``ContextVar`` keyed by the model,
so one cached model serves concurrent callers (threads, Streamlit sessions) with different masks.
Hooks are reference-counted and removed when the last gated or capturing block exits, leaving the
model exactly as it was (:mod:`pruning_core.hooks`).

Context vectors are recorded by the gate hook itself, always *before* the running caller's gates
scale them: a gated-off head's vector is what the head computes on the hidden states of the
gated model below it. The position is fixed by design, so what a caller records never depends on
which other callers' hooks are installed.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar

import numpy as np
import torch
from torch import nn

from .adapters import ArchAdapter
from .hooks import SharedHooks, caller_state, mark, state_of, strip_hooks

_GATES: ContextVar[dict[int, list[torch.Tensor | None]] | None] = ContextVar("bhpvas_active_gates", default=None)
_CONTEXT_CAPTURES: ContextVar[dict[int, tuple[list[torch.Tensor | None], ...]] | None] = ContextVar("bhpvas_context_captures", default=None)
_OUT_PROJ_HOOKS = SharedHooks()


def _make_hook(model_id: int, layer: int, heads_here: int, head_dim: int):
    def hook(module: nn.Module, args: tuple):
        context = args[0]
        for captured in state_of(_CONTEXT_CAPTURES, model_id) or ():
            captured[layer] = context.detach()
        gates = state_of(_GATES, model_id)
        if gates is None or gates[layer] is None or heads_here == 0:
            return None
        shape = context.shape
        gate = gates[layer].to(dtype=context.dtype)
        if gate.dim() == 2:  # one gate row per sample: (batch, heads) against (batch, ..., heads, head_dim)
            gate = gate.view(gate.shape[0], *([1] * (len(shape) - 2)), heads_here)
        scaled = (context.view(*shape[:-1], heads_here, head_dim) * gate[..., None]).view(shape)
        return (scaled, *args[1:])

    return mark(hook)


def strip_gate_hooks(model: nn.Module) -> None:
    """Remove gate (and capture) hooks from a copy of a model (``deepcopy`` copies hooks along with modules)."""
    strip_hooks(model)


def _hooks_installed(model: nn.Module, adapter: ArchAdapter, kept_heads: Sequence[Sequence[int]], head_dim: int):
    def install() -> list:
        return [
            adapter.out_proj(layer).register_forward_pre_hook(_make_hook(id(model), index, len(kept_heads[index]), head_dim))
            for index, layer in enumerate(adapter.layers(model))
        ]

    return _OUT_PROJ_HOOKS.installed(model, install)


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
    with _hooks_installed(model, adapter, kept_heads, head_dim), caller_state(_GATES, model, per_layer):
        yield


@contextmanager
def capture_context(
    model: nn.Module, adapter: ArchAdapter, kept_heads: Sequence[Sequence[int]], head_dim: int
) -> Iterator[list[torch.Tensor | None]]:
    """Record each layer's context vectors (batch, T, heads present x head_dim) of this caller's forward passes.

    The vectors are the input of the attention output projection before this caller's gates act
    (see the module docstring); a nested capture on the same model records too. Each entry holds
    the latest forward pass's tensor (None until the layer ran).
    """
    captured: list[torch.Tensor | None] = [None] * len(kept_heads)
    outer = state_of(_CONTEXT_CAPTURES, id(model)) or ()
    with _hooks_installed(model, adapter, kept_heads, head_dim), caller_state(_CONTEXT_CAPTURES, model, (*outer, captured)):
        yield captured
