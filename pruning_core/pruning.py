"""Physical head pruning: slice q/k/v rows and output-projection columns, save and reload.

transformers 5.x has no ``prune_heads``; this module does it for every supported architecture.
A layer may lose all its heads: its attention block then contributes only the output bias.
"""

from __future__ import annotations

import copy
import json
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .adapters import ArchAdapter
from .errors import SchemeError
from .gating import strip_gate_hooks
from .loading import PRUNED_MODEL_TYPE, PRUNING_FILE, LoadedModel, model_fingerprint, weight_sharing_copy


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


def keep_mask_from(scheme_or_mask, lm: LoadedModel) -> np.ndarray:
    """A boolean (layers, heads) keep-mask from a Scheme or an array, checked against the model."""
    from .schemes import Scheme

    if isinstance(scheme_or_mask, Scheme):
        scheme_or_mask.check_fits(lm.num_layers, lm.num_heads)
        return scheme_or_mask.keep_mask()
    mask = np.asarray(scheme_or_mask)
    if mask.shape != lm.shape:
        raise SchemeError(f"Mask shape {mask.shape} does not match the model's {lm.shape} (layers, heads).")
    return mask.astype(bool)


def shrunk_copy(lm: LoadedModel, keep: np.ndarray, share_weights: bool = False) -> nn.Module:
    """A copy of ``lm.model`` (in eval mode) with only the heads of ``keep`` (layers, original heads).

    ``share_weights``: layers whose heads all stay keep the original tensors (cheap, for a
    read-only view); otherwise everything is copied.
    """
    if share_weights:
        model = weight_sharing_copy(lm.model)
    else:
        model = copy.deepcopy(lm.model)
        strip_gate_hooks(model)
    positions = [[i for i, h in enumerate(kept) if keep[layer, h]] for layer, kept in enumerate(lm.kept_heads)]
    shrink_model(model, lm.adapter, positions, lm.head_dim)
    return model.eval()


def prune_heads(lm: LoadedModel, scheme_or_mask) -> LoadedModel:
    """A physically pruned copy of ``lm`` (the original is untouched).

    Heads already absent stay absent; at least one head must remain in the whole model.
    """
    keep = keep_mask_from(scheme_or_mask, lm) & lm.present_mask()
    if not keep.any():
        raise SchemeError("The scheme removes every attention head; keep at least one head to build a model.")
    model = shrunk_copy(lm, keep)
    new_kept = [[h for h in kept if keep[layer, h]] for layer, kept in enumerate(lm.kept_heads)]
    return LoadedModel(
        name=f"{lm.name} (pruned {int(lm.present_mask().sum() - keep.sum())} heads)",
        model=model,
        tokenizer=lm.tokenizer,
        adapter=lm.adapter,
        device=lm.device,
        fingerprint=model_fingerprint(model, extra=json.dumps(new_kept)),
        num_layers=lm.num_layers,
        num_heads=lm.num_heads,
        head_dim=lm.head_dim,
        kept_heads=new_kept,
        precision=lm.precision,
    )


EXPLANATION = (
    "This folder holds a BERT-family classifier whose attention heads were physically removed by bhpvas; "
    "layers have different head counts, which plain transformers cannot build. Load it with "
    "pruning_core.load_model(folder) or `python -m pruning_core evaluate --model folder`."
)


def save_pruned(lm: LoadedModel, out_dir: str | Path, extra: dict[str, Any] | None = None) -> Path:
    """Save weights (safetensors), config, tokenizer and the map of kept heads.

    ``extra`` entries (e.g. what repair or recovery did) are added to the pruning map.

    The config's ``model_type`` is replaced by a sentence saying how to load the folder, so that
    plain ``AutoModel*.from_pretrained`` stops with that sentence in its error instead of a shape
    error; :func:`load_model` restores the real type from the pruning map.
    """
    from safetensors.torch import save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu").contiguous() for k, v in lm.model.state_dict().items()}
    save_file(state, str(out / "model.safetensors"), metadata={"format": "pt", "bhpvas": "pruned"})
    config = lm.model.config.to_dict()
    base_type = config["model_type"]
    config["model_type"] = PRUNED_MODEL_TYPE
    config["bhpvas_note"] = EXPLANATION
    (out / "config.json").write_text(json.dumps(config, indent=2, default=str) + "\n")
    lm.tokenizer.save_pretrained(out)
    pruned = [[layer, h] for layer in range(lm.num_layers) for h in range(lm.num_heads) if h not in lm.kept_heads[layer]]
    meta = {
        "format": 1,
        "base_model_type": base_type,
        "num_layers": lm.num_layers,
        "num_heads": lm.num_heads,
        "head_dim": lm.head_dim,
        "kept_heads": lm.kept_heads,
        "pruned": pruned,
        "source": lm.name,
        "note": EXPLANATION,
        **(extra or {}),
    }
    (out / PRUNING_FILE).write_text(json.dumps(meta, indent=2) + "\n")
    (out / "README.md").write_text(
        f"# Pruned classifier\n\n{EXPLANATION}\n\nHeads removed: {len(pruned)} of {lm.num_layers * lm.num_heads}.\n"
    )
    return out
