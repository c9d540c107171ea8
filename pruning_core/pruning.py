"""Physical head pruning of a loaded model, and the pruned-folder format it is saved in.

:func:`prune_heads` builds a smaller :class:`LoadedModel` (the module surgery itself is in
:mod:`pruning_core.surgery`); :func:`save_pruned` writes a folder that
:func:`pruning_core.loading.load_model` reads back (:func:`pruning_core.loading.load_pruned`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from .errors import SchemeError
from .loading import PRUNED_MODEL_TYPE, PRUNING_FILE, LoadedModel, model_fingerprint
from .schemes import Scheme
from .surgery import shrunk_copy


def keep_mask_from(scheme_or_mask, lm: LoadedModel) -> np.ndarray:
    """A boolean (layers, heads) keep-mask from a Scheme or an array, checked against the model."""
    if isinstance(scheme_or_mask, Scheme):
        scheme_or_mask.check_fits(lm.num_layers, lm.num_heads)
        return scheme_or_mask.keep_mask()
    mask = np.asarray(scheme_or_mask)
    if mask.shape != lm.shape:
        raise SchemeError(f"Mask shape {mask.shape} does not match the model's {lm.shape} (layers, heads).")
    return mask.astype(bool)


def prune_heads(lm: LoadedModel, scheme_or_mask) -> LoadedModel:
    """A physically pruned copy of ``lm`` (the original is untouched).

    Heads already absent stay absent; at least one head must remain in the whole model.
    """
    keep = keep_mask_from(scheme_or_mask, lm) & lm.present_mask()
    if not keep.any():
        raise SchemeError("The scheme removes every attention head; keep at least one head to build a model.")
    model = shrunk_copy(lm.model, lm.adapter, lm.kept_heads, lm.head_dim, keep)
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
