"""Repair (retraining-free): after pruning, refit each layer's attention output projection and
then its feed-forward output projection so that the layer matches the full model's on calibration
tokens (the first fit is the usual layer-wise reconstruction; the second is bhpvas's extension).

Layer by layer from the bottom, inputs coming from the already repaired layers below:

1. the kept heads' columns of the attention output projection (and its bias) are the ridge
   least-squares solution of ``W' x_kept + b' ~ y_full``, where ``x_kept`` is the pruned model's
   context vector and ``y_full`` the full model's attention output (the projection's output,
   before the residual and LayerNorm) on the same non-padding token;
2. (``full`` variant) the feed-forward output projection is the ridge least-squares solution that
   makes the input of the layer's last LayerNorm (feed-forward output plus the attention block's
   output) match the full model's: its target is the full model's sum minus the pruned model's
   residual, so it also absorbs what step 1 could not. On the demo (fp32, 1,000 held-out SST-2
   train sentences) this halved the KL divergence to the full model at 40-60 heads pruned.

A last layer left without heads keeps its attention bias: a refitted constant (the full model's
mean attention output, over all tokens or over the first token the classifier reads) outweighs the
residual stream in the last LayerNorm, and on the demo emptying the last layer then fell to chance
(0.509) where masking alone keeps 0.890. Lower emptied layers refit the bias (on the demo: 0.835
-> 0.848 with layers 0-1 empty). Only ``X^T X`` and ``X^T Y`` are accumulated per layer, never the
tokens' regression rows. The light variant fits one scale per kept head (Kwon et al. 2022's mask
tuning) from the same sums.

The result folds into the weights: :func:`repaired_pruned` is a physically pruned model exactly
as small as :func:`pruning_core.pruning.prune_heads`' (it saves and reloads through
``save_pruned``/``load_model``); :func:`repaired_masked` is a full-shape copy whose kept heads
carry the repaired weights, to be run with the scheme's gates. The cached model is never changed.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
from torch import nn

from .batching import collate, default_max_tokens, encode, length_batches, mask_key, resolve_keep_mask
from .cache import DiskCache, cache_key
from .calibration import data_sets
from .data import TextDataset
from .errors import SchemeError
from .gating import strip_gate_hooks
from .loading import LoadedModel, model_fingerprint
from .progress import ProgressFn, no_progress
from .pruning import prune_heads
from .schemes import Scheme
from .surgery import weight_sharing_copy

VARIANTS = ("full", "attention", "scale")
TARGETS = ("attention", "residual")
DEFAULT_RIDGE = 1e-3
TEACHER_BYTES = 1 << 30
REPAIR_VERSION = 3  # 2: an emptied last layer keeps its bias; 3: "full" refits the feed-forward output too


def calibration_for(dataset: TextDataset) -> TextDataset:
    """The calibration set that goes with an evaluation set (:func:`pruning_core.calibration.data_sets`):
    2,000 seeded SST-2 train sentences for the bundled dev set, else the dataset itself."""
    return data_sets(dataset.name, dataset).calibration


@dataclass
class Repair:
    """Repaired output projections of one scheme: per layer, the kept heads' columns and the bias,
    and for the ``full`` variant the feed-forward output projection.

    ``weights[l]`` is (hidden, kept heads x head size) in the order of the model's present heads;
    ``error_before``/``error_after`` are each layer's relative squared reconstruction error of the
    attention output on the calibration tokens, without and with the repair; the ``ffn_`` fields
    are the same for the feed-forward output (empty / None when it was not refitted).
    """

    keep: np.ndarray
    weights: list[np.ndarray]
    biases: list[np.ndarray]
    variant: str
    ridge: float
    calibration: str
    calibration_fingerprint: str
    tokens: int
    error_before: np.ndarray
    error_after: np.ndarray
    seconds: float
    from_cache: bool = False
    target: str = "attention"
    ffn_weights: list[np.ndarray] = field(default_factory=list)
    ffn_biases: list[np.ndarray] = field(default_factory=list)
    ffn_error_before: np.ndarray | None = None
    ffn_error_after: np.ndarray | None = None

    @property
    def heads_pruned(self) -> int:
        return int((~self.keep).sum())

    def summary(self) -> dict[str, Any]:
        return {
            "variant": self.variant,
            "target": self.target,
            "ridge": self.ridge,
            "heads_pruned": self.heads_pruned,
            "calibration": self.calibration,
            "calibration_fingerprint": self.calibration_fingerprint,
            "calibration_tokens": self.tokens,
            "error_before": [round(float(e), 6) for e in self.error_before],
            "error_after": [round(float(e), 6) for e in self.error_after],
            "feed_forward_refitted": bool(self.ffn_weights),
            "feed_forward_error_before": _rounded(self.ffn_error_before),
            "feed_forward_error_after": _rounded(self.ffn_error_after),
            "seconds": round(self.seconds, 2),
            "from_cache": self.from_cache,
        }


def _rounded(errors: np.ndarray | None) -> list[float] | None:
    return None if errors is None else [round(float(e), 6) for e in errors]


class _Stop(Exception):
    """Raised inside a hook to end a forward pass once what it needs was captured."""


def ridge_solve(gram: np.ndarray, cross: np.ndarray, prior: np.ndarray, ridge: float, free: np.ndarray | None = None) -> np.ndarray:
    """argmin_P ||X P - Y||^2 + lam ||P - prior||^2 over the rows not marked ``free``.

    ``gram`` = X^T X, ``cross`` = X^T Y, lam = ``ridge`` x the mean diagonal of the penalised rows
    (so the strength does not depend on the data's scale). ``free`` rows (the bias) are not
    penalised. Solved in float64.
    """
    n = gram.shape[0]
    if n == 0:
        return prior.copy()
    penalised = np.ones(n, dtype=bool) if free is None else ~free
    scale = float(np.mean(np.diag(gram)[penalised])) if penalised.any() else 0.0
    lam = ridge * max(scale, 1e-12)
    weight = np.where(penalised, lam, 0.0)
    lhs = gram + np.diag(weight)
    rhs = cross + weight[:, None] * prior
    try:
        return np.linalg.solve(lhs, rhs)
    except np.linalg.LinAlgError:
        return np.linalg.lstsq(lhs, rhs, rcond=None)[0]


def _squared_error(gram: np.ndarray, cross: np.ndarray, target_energy: float, params: np.ndarray) -> float:
    """||X P - Y||^2 from the accumulated sums."""
    return float(np.sum(params * (gram @ params)) - 2 * np.sum(params * cross) + target_energy)


def fit_layer(
    gram: np.ndarray,
    cross: np.ndarray,
    target_energy: float,
    weight: np.ndarray,
    bias: np.ndarray,
    head_dim: int,
    variant: str = "full",
    ridge: float = DEFAULT_RIDGE,
    fit_bias: bool = True,
) -> tuple[np.ndarray, np.ndarray, float, float]:
    """One layer's repaired projection from the sums over its calibration tokens.

    ``gram`` = X~^T X~ and ``cross`` = X~^T Y, with X~ the kept context vectors plus a constant-1
    column (last) and Y the full model's attention output; ``weight`` (hidden, kept width) and
    ``bias`` are the current projection. Returns (weight, bias, error before, error after), the
    errors relative to the target's energy.
    """
    width = weight.shape[1]
    prior = np.concatenate([weight.T, bias[None, :]]).astype(np.float64)
    before = _squared_error(gram, cross, target_energy, prior)
    if variant == "full":
        if fit_bias:
            free = np.zeros(width + 1, dtype=bool)
            free[-1] = True
            params = ridge_solve(gram, cross, prior, ridge, free)
        else:
            rhs = cross[:width] - np.outer(gram[:width, -1], bias)
            params = np.concatenate([ridge_solve(gram[:width, :width], rhs, prior[:width], ridge), bias[None, :]])
    elif variant == "scale":
        params = prior.copy()
        heads = width // head_dim
        if heads:
            blocks = [slice(j * head_dim, (j + 1) * head_dim) for j in range(heads)]
            w = weight.astype(np.float64)
            inner = np.array([[np.sum((w[:, a] @ gram[a, b]) * w[:, b]) for b in blocks] for a in blocks])
            residual = cross[:width] - np.outer(gram[:width, -1], bias)
            rhs = np.array([np.sum(w[:, a] * residual[a].T) for a in blocks])
            scales = ridge_solve(inner, rhs[:, None], np.ones((heads, 1)), ridge)[:, 0]
            params[:width] = prior[:width] * np.repeat(scales, head_dim)[:, None]
    else:
        raise ValueError(f"variant must be one of {VARIANTS}, not {variant!r}")
    after = _squared_error(gram, cross, target_energy, params)
    energy = max(target_energy, 1e-30)
    return params[:width].T.copy(), params[width].copy(), before / energy, after / energy


def _layer_call(model: nn.Module, layers: list[nn.Module], batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, tuple, dict]:
    """The first layer's input and the other arguments the encoder passes to every layer."""
    captured: dict = {}

    def grab(module, args, kwargs):
        captured["call"] = (args[0], args[1:], kwargs)
        raise _Stop

    handle = layers[0].register_forward_pre_hook(grab, with_kwargs=True)
    try:
        model.base_model(**batch)
    except _Stop:
        pass
    finally:
        handle.remove()
    return captured["call"]


def _output(result) -> torch.Tensor:
    return result[0] if isinstance(result, tuple) else result


def _capture_context(layer: nn.Module, out_proj: nn.Linear, hidden: torch.Tensor, args: tuple, kwargs: dict) -> torch.Tensor:
    """The input of ``out_proj`` (the kept heads' context vectors) when ``layer`` runs on ``hidden``."""
    captured: dict = {}

    def grab(module, inputs):
        captured["x"] = inputs[0]
        raise _Stop

    handle = out_proj.register_forward_pre_hook(grab)
    try:
        layer(hidden, *args, **kwargs)
    except _Stop:
        pass
    finally:
        handle.remove()
    return captured["x"]


def _run_teacher_layer(
    layer: nn.Module, out_proj: nn.Linear, norm: nn.Module | None, hidden: torch.Tensor, args: tuple, kwargs: dict
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """The layer's output, its attention output and (with ``norm``) the input of its last LayerNorm."""
    captured: dict = {}
    handles = [out_proj.register_forward_hook(lambda module, inputs, output: captured.__setitem__("y", output))]
    if norm is not None:
        handles.append(norm.register_forward_pre_hook(lambda module, inputs: captured.__setitem__("z", inputs[0])))
    try:
        out = _output(layer(hidden, *args, **kwargs))
    finally:
        for handle in handles:
            handle.remove()
    if "y" not in captured:  # a headless layer that returns its bias without calling the projection
        bias = out_proj.bias if out_proj.bias is not None else hidden.new_zeros(hidden.shape[-1])
        captured["y"] = bias.expand_as(hidden)
    return out, captured["y"], captured.get("z")


def _capture_ffn(
    layer: nn.Module, ffn_out: nn.Linear, norm: nn.Module, hidden: torch.Tensor, args: tuple, kwargs: dict
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """When ``layer`` runs on ``hidden``: the feed-forward output projection's input and output, and
    the input of the layer's last LayerNorm (their sum with the residual)."""
    captured: dict = {}

    def grab_ffn(module, inputs, output):
        captured["x"], captured["out"] = inputs[0], output

    def grab_norm(module, inputs):
        captured["z"] = inputs[0]
        raise _Stop

    handles = [ffn_out.register_forward_hook(grab_ffn), norm.register_forward_pre_hook(grab_norm)]
    try:
        layer(hidden, *args, **kwargs)
    except _Stop:
        pass
    finally:
        for handle in handles:
            handle.remove()
    return captured["x"], captured["out"], captured["z"]


Start = tuple[torch.Tensor, tuple, dict, torch.Tensor]
LayerTargets = tuple[list[torch.Tensor], list[torch.Tensor] | None]


def _starts(lm: LoadedModel, teacher: nn.Module, encoded, batches: list[np.ndarray]) -> list[Start]:
    """Per batch: the first layer's input, the other arguments of every layer, and the non-padding mask."""
    starts = []
    for indices in batches:
        batch = collate(encoded, indices, lm.pad_id, lm.device)
        hidden, args, kwargs = _layer_call(teacher, lm.adapter.layers(teacher), batch)
        starts.append((hidden, args, kwargs, batch["attention_mask"].bool()))
    return starts


def _teacher_rows(lm: LoadedModel, teacher: nn.Module, starts: list[Start], target: str, ffn: bool) -> Iterator[LayerTargets]:
    """Per layer, per batch, on non-padding tokens: the full model's attention output (plus the
    layer's input for the ``residual`` target; the pruned model's input is subtracted later) and,
    with ``ffn``, the input of the layer's last LayerNorm."""
    hidden = [start[0] for start in starts]
    for layer in lm.adapter.layers(teacher):
        rows, norm_rows = [], []
        norm = lm.adapter.ffn_norm(layer) if ffn else None
        for b, (_, args, kwargs, mask) in enumerate(starts):
            out, output, norm_input = _run_teacher_layer(layer, lm.adapter.out_proj(layer), norm, hidden[b], args, kwargs)
            if target == "residual":
                output = output + hidden[b]
            rows.append(output[mask])
            if ffn:
                norm_rows.append(norm_input[mask])
            hidden[b] = out
        yield rows, (norm_rows if ffn else None)


class TeacherTargets:
    """What every repair on one calibration set takes from the full model, computed once and reused
    by the schemes repaired with this holder (the points of a curve): the first layer's inputs and
    each layer's targets. Kept only when they fit in ``max_bytes`` (layers x tokens x hidden
    floats); otherwise each repair recomputes them layer by layer. Not shared between threads."""

    def __init__(self, max_bytes: int = TEACHER_BYTES):
        self.max_bytes = max_bytes
        self._key: tuple | None = None
        self._value: tuple[list[Start], list[LayerTargets]] | None = None

    def layers(
        self, lm: LoadedModel, calibration: TextDataset, encoded, batches: list[np.ndarray], target: str, ffn: bool
    ) -> tuple[list[Start], Iterable[LayerTargets]]:
        """The batches' starts and, per layer, the targets' rows (stored, or a generator that
        recomputes them when they do not fit)."""
        key = (lm.fingerprint, calibration.fingerprint, encoded.max_length, [b.tolist() for b in batches], target, ffn)
        if self._key == key and self._value is not None:
            return self._value
        teacher = weight_sharing_copy(lm.model).eval()
        starts = _starts(lm, teacher, encoded, batches)
        rows = _teacher_rows(lm, teacher, starts, target, ffn)
        per_layer = int(encoded.lengths.sum()) * starts[0][0].shape[-1] * starts[0][0].element_size() if starts else 0
        size = lm.num_layers * per_layer * (2 if ffn else 1)
        if size > self.max_bytes:
            return starts, rows
        self._key, self._value = key, (starts, list(rows))
        return self._value


def _set_projection(out_proj: nn.Linear, weight: np.ndarray, bias: np.ndarray) -> None:
    with torch.no_grad():
        out_proj.weight.copy_(torch.as_tensor(weight, dtype=out_proj.weight.dtype))
        if out_proj.bias is not None:
            out_proj.bias.copy_(torch.as_tensor(bias, dtype=out_proj.bias.dtype))


def _projection(out_proj: nn.Linear) -> tuple[np.ndarray, np.ndarray]:
    weight = out_proj.weight.detach().cpu().double().numpy()
    bias = out_proj.bias.detach().cpu().double().numpy() if out_proj.bias is not None else np.zeros(weight.shape[0])
    return weight, bias


def _repair_key(
    lm: LoadedModel, calibration: TextDataset, keep: np.ndarray, variant: str, ridge: float, fit_bias: bool, max_length, target: str
) -> str:
    return cache_key(
        "repair",
        version=REPAIR_VERSION,
        target=target,
        model=lm.fingerprint,
        data=calibration.fingerprint,
        mask=mask_key(keep),
        variant=variant,
        ridge=ridge,
        fit_bias=fit_bias,
        max_length=max_length,
    )


def repair_scheme(
    lm: LoadedModel,
    scheme: Scheme | np.ndarray,
    calibration: TextDataset,
    *,
    variant: str = "full",
    ridge: float = DEFAULT_RIDGE,
    fit_bias: bool = True,
    target: str = "attention",
    max_length: int | None = None,
    max_tokens: int | None = None,
    progress: ProgressFn | None = None,
    cache: DiskCache | None = None,
    teacher: TeacherTargets | None = None,
) -> Repair:
    """Repair the heads kept by ``scheme`` on ``calibration`` (cached on disk).

    ``variant``: ``attention`` (the kept columns of each attention output projection, and with
    ``fit_bias`` its bias, by ridge least squares, shrunk towards the original weights by
    ``ridge``); ``full`` (the default: that, then in the same layer the feed-forward output
    projection, fitted so that the input of the layer's last LayerNorm matches the full model's);
    or ``scale`` (one factor per kept head, the bias unchanged). The cache key is the model's
    fingerprint, the calibration data's fingerprint, the keep-mask and these settings. Reads only
    ``calibration``. Memory: the regression sums per layer, plus the current layer's input hidden
    states of the full and the pruned model for the calibration tokens (2 x tokens x hidden
    floats). ``target``: ``attention`` matches the full model's attention output (SPEC);
    ``residual`` also absorbs the drift of the residual stream from the layers below (full minus
    pruned input), so that the sum entering the LayerNorm matches. ``teacher``: a holder that keeps
    the full model's side across calls (same results, one teacher pass for many schemes).
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, not {variant!r}")
    if target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}, not {target!r}")
    cache = cache if cache is not None else DiskCache()
    report = progress or no_progress
    keep = resolve_keep_mask(lm, scheme)
    if not keep.any():
        raise SchemeError("The scheme removes every attention head; keep at least one head to repair.")
    encoded = encode(lm, calibration, max_length)
    key = _repair_key(lm, calibration, keep, variant, ridge, fit_bias, encoded.max_length, target)
    ffn = variant == "full"
    hit = cache.get(key)
    if hit is not None:
        arrays, meta = hit
        return Repair(
            keep=keep,
            weights=[arrays[f"weight_{i}"] for i in range(lm.num_layers)],
            biases=[arrays[f"bias_{i}"] for i in range(lm.num_layers)],
            variant=variant,
            ridge=ridge,
            calibration=str(meta["calibration"]),
            calibration_fingerprint=calibration.fingerprint,
            tokens=int(meta["tokens"]),
            error_before=arrays["error_before"],
            error_after=arrays["error_after"],
            seconds=float(meta["seconds"]),
            from_cache=True,
            target=target,
            ffn_weights=[arrays[f"ffn_weight_{i}"] for i in range(lm.num_layers)] if ffn else [],
            ffn_biases=[arrays[f"ffn_bias_{i}"] for i in range(lm.num_layers)] if ffn else [],
            ffn_error_before=arrays["ffn_error_before"] if ffn else None,
            ffn_error_after=arrays["ffn_error_after"] if ffn else None,
        )
    started = time.perf_counter()
    student = prune_heads(lm, keep).model
    student_layers = lm.adapter.layers(student)
    batches = length_batches(encoded.lengths, max_tokens or default_max_tokens(lm.device))
    weights, biases, ffn_weights, ffn_biases = [], [], [], []
    before, after = np.zeros(lm.num_layers), np.zeros(lm.num_layers)
    ffn_before, ffn_after = np.zeros(lm.num_layers), np.zeros(lm.num_layers)
    tokens = int(encoded.lengths.sum())
    fit_variant = "scale" if variant == "scale" else "full"
    with torch.inference_mode():
        starts, targets = (teacher or TeacherTargets(max_bytes=0)).layers(lm, calibration, encoded, batches, target, ffn)
        pruned = [start[0] for start in starts]
        for index, (rows, norm_rows) in enumerate(targets):
            layer = student_layers[index]
            out_proj = lm.adapter.out_proj(layer)
            weight, bias = _projection(out_proj)
            width = weight.shape[1]
            sums = _Sums(width)
            for b, (_, args, kwargs, mask) in enumerate(starts):
                y = rows[b] - pruned[b][mask] if target == "residual" else rows[b]
                x = _capture_context(layer, out_proj, pruned[b], args, kwargs)[mask] if width else y.new_zeros(y.shape[0], 0)
                sums.add(x, y)
            refit_bias = fit_bias and out_proj.bias is not None and (width > 0 or index + 1 < lm.num_layers)
            new_weight, new_bias, before[index], after[index] = fit_layer(
                sums.gram, sums.cross, sums.energy, weight, bias, lm.head_dim, fit_variant, ridge, refit_bias
            )
            _set_projection(out_proj, new_weight, new_bias)
            weights.append(new_weight.astype(np.float32))
            biases.append(new_bias.astype(np.float32))
            if ffn:
                new_weight, new_bias, ffn_before[index], ffn_after[index] = _fit_feed_forward(
                    lm, layer, pruned, starts, norm_rows, ridge, fit_bias
                )
                ffn_weights.append(new_weight.astype(np.float32))
                ffn_biases.append(new_bias.astype(np.float32))
            if index + 1 < lm.num_layers:
                for b, (_, args, kwargs, _) in enumerate(starts):
                    pruned[b] = _output(layer(pruned[b], *args, **kwargs))
            report((index + 1) / lm.num_layers, f"repaired layer {index + 1}/{lm.num_layers}")
    result = Repair(
        keep=keep,
        weights=weights,
        biases=biases,
        variant=variant,
        ridge=ridge,
        calibration=calibration.name,
        calibration_fingerprint=calibration.fingerprint,
        tokens=tokens,
        error_before=before,
        error_after=after,
        seconds=time.perf_counter() - started,
        target=target,
        ffn_weights=ffn_weights,
        ffn_biases=ffn_biases,
        ffn_error_before=ffn_before if ffn else None,
        ffn_error_after=ffn_after if ffn else None,
    )
    arrays = {f"weight_{i}": w for i, w in enumerate(weights)} | {f"bias_{i}": b for i, b in enumerate(biases)}
    if ffn:
        arrays |= {f"ffn_weight_{i}": w for i, w in enumerate(ffn_weights)} | {f"ffn_bias_{i}": b for i, b in enumerate(ffn_biases)}
        arrays |= {"ffn_error_before": ffn_before, "ffn_error_after": ffn_after}
    cache.put(
        key,
        {**arrays, "error_before": before, "error_after": after},
        {"calibration": calibration.name, "tokens": tokens, "seconds": result.seconds},
    )
    return result


class _Sums:
    """X~^T X~, X~^T Y and ||Y||^2 over tokens, X~ being X with a constant-1 column last, summed in
    float64. ``dtype`` is that of each batch's products: float64 for the attention projections;
    float32 for the four-times-wider feed-forward one, twice as fast, its rounding far below the
    ridge."""

    def __init__(self, width: int, dtype: torch.dtype = torch.float64):
        self.gram = np.zeros((width + 1, width + 1))
        self.cross: np.ndarray | None = None
        self.energy = 0.0
        self.dtype = dtype

    def add(self, x: torch.Tensor, y: torch.Tensor) -> None:
        y = y.to(self.dtype)
        x1 = torch.ones(y.shape[0], self.gram.shape[0], dtype=self.dtype, device=y.device)
        x1[:, :-1] = x.to(self.dtype)
        self.gram += (x1.T @ x1).cpu().double().numpy()
        cross = (x1.T @ y).cpu().double().numpy()
        self.cross = cross if self.cross is None else self.cross + cross
        self.energy += float((y.double() * y.double()).sum())


def _fit_feed_forward(
    lm: LoadedModel,
    layer: nn.Module,
    pruned: list[torch.Tensor],
    starts: list[Start],
    norm_rows: list[torch.Tensor],
    ridge: float,
    fit_bias: bool,
) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Refit ``layer``'s feed-forward output projection (after its attention was repaired) so that
    the input of its last LayerNorm (feed-forward output plus the attention block's output) matches
    the full model's: the target is the full model's sum minus the pruned model's residual."""
    ffn_out, norm = lm.adapter.ffn_out(layer), lm.adapter.ffn_norm(layer)
    weight, bias = _projection(ffn_out)
    sums = _Sums(weight.shape[1], torch.float32)
    for b, (_, args, kwargs, mask) in enumerate(starts):
        x, out, summed = _capture_ffn(layer, ffn_out, norm, pruned[b], args, kwargs)
        sums.add(x[mask], norm_rows[b] - summed[mask] + out[mask])
    result = fit_layer(sums.gram, sums.cross, sums.energy, weight, bias, lm.head_dim, "full", ridge, fit_bias and ffn_out.bias is not None)
    _set_projection(ffn_out, result[0], result[1])
    return result


def repaired_pruned(lm: LoadedModel, repair: Repair) -> LoadedModel:
    """The physically pruned model of the repair's scheme with the repaired projections folded in.

    Exactly the shape of :func:`pruning_core.pruning.prune_heads`' model; ``lm`` is untouched.
    """
    pruned = prune_heads(lm, repair.keep)
    for layer, weight, bias in zip(lm.adapter.layers(pruned.model), repair.weights, repair.biases, strict=True):
        _set_projection(lm.adapter.out_proj(layer), weight, bias)
    _set_feed_forward(lm, pruned.model, repair)
    fingerprint = model_fingerprint(pruned.model, extra=json.dumps(pruned.kept_heads))
    return replace(pruned, name=f"{pruned.name} + repair", fingerprint=fingerprint, caches={})


def _set_feed_forward(lm: LoadedModel, model: nn.Module, repair: Repair) -> None:
    """Fold the repair's feed-forward output projections (if any) into ``model`` (a copy)."""
    for layer, weight, bias in zip(lm.adapter.layers(model), repair.ffn_weights, repair.ffn_biases):
        _set_projection(lm.adapter.ffn_out(layer), weight, bias)


def repaired_masked(lm: LoadedModel, repair: Repair) -> LoadedModel:
    """A full-shape copy of ``lm`` whose kept heads carry the repaired projection (pruned heads keep
    their old columns): run it with the scheme's gates (``repair.keep``) to get the repaired model."""
    model = copy.deepcopy(lm.model)
    strip_gate_hooks(model)
    for layer_index, layer in enumerate(lm.adapter.layers(model)):
        out_proj = lm.adapter.out_proj(layer)
        present = lm.kept_heads[layer_index]
        kept = [i for i, h in enumerate(present) if repair.keep[layer_index, h]]
        columns = [i * lm.head_dim + j for i in kept for j in range(lm.head_dim)]
        with torch.no_grad():
            if columns:
                out_proj.weight[:, columns] = torch.as_tensor(repair.weights[layer_index], dtype=out_proj.weight.dtype)
            if out_proj.bias is not None:
                out_proj.bias.copy_(torch.as_tensor(repair.biases[layer_index], dtype=out_proj.bias.dtype))
    _set_feed_forward(lm, model, repair)
    model.eval()
    return replace(
        lm,
        name=f"{lm.name} (masked + repair)",
        model=model,
        fingerprint=model_fingerprint(model, extra=json.dumps(lm.kept_heads)),
        notices=list(lm.notices),
        _eager=None,
        caches={},
    )


def repair_and_prune(
    lm: LoadedModel,
    scheme: Scheme | np.ndarray,
    calibration: TextDataset,
    progress: ProgressFn | None = None,
    cache: DiskCache | None = None,
    **options: Any,
) -> tuple[LoadedModel, Repair]:
    """:func:`repair_scheme` then :func:`repaired_pruned`: the repaired, physically pruned model."""
    repair = repair_scheme(lm, scheme, calibration, progress=progress, cache=cache, **options)
    return repaired_pruned(lm, repair), repair


def context_grams(
    lm: LoadedModel,
    calibration: TextDataset,
    progress: ProgressFn | None = None,
    cache: DiskCache | None = None,
    max_tokens: int | None = None,
) -> list[np.ndarray]:
    """Per layer, X~^T X~ of the model's own context vectors (every present head, plus a constant-1
    column last) over the non-padding calibration tokens: what repair-aware selection needs."""
    cache = cache if cache is not None else DiskCache()
    report = progress or no_progress
    encoded = encode(lm, calibration)
    key = cache_key("context-grams", model=lm.fingerprint, data=calibration.fingerprint, max_length=encoded.max_length)
    hit = cache.get(key)
    if hit is not None:
        return [hit[0][f"gram_{i}"] for i in range(lm.num_layers)]
    model = weight_sharing_copy(lm.model).eval()
    layers = lm.adapter.layers(model)
    widths = [len(k) * lm.head_dim for k in lm.kept_heads]
    grams = [np.zeros((w + 1, w + 1)) for w in widths]
    current: dict[str, torch.Tensor] = {}
    handles = []
    for index, layer in enumerate(layers):

        def grab(module, inputs, index=index):
            x = inputs[0][current["mask"]].double()
            x = torch.cat([x, torch.ones(x.shape[0], 1, dtype=x.dtype, device=x.device)], dim=1)
            grams[index] += (x.T @ x).cpu().numpy()

        handles.append(lm.adapter.out_proj(layer).register_forward_pre_hook(grab))
    batches = length_batches(encoded.lengths, max_tokens or default_max_tokens(lm.device))
    try:
        with torch.inference_mode():
            for i, indices in enumerate(batches):
                batch = collate(encoded, indices, lm.pad_id, lm.device)
                current["mask"] = batch["attention_mask"].bool()
                model(**batch)
                report((i + 1) / len(batches), f"calibration Gram matrices {i + 1}/{len(batches)}")
    finally:
        for handle in handles:
            handle.remove()
    cache.put(key, {f"gram_{i}": g for i, g in enumerate(grams)}, {"data": calibration.name})
    return grams
