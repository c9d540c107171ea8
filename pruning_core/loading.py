"""Loading BERT-family sequence classifiers (local folder, hub id, the demo, or a bhpvas-pruned
folder) into a :class:`LoadedModel` that knows where its heads are.

``trust_remote_code`` is never enabled. The model runs on CUDA when present, else on the CPU,
with sdpa attention; an eager twin sharing the same weights is built on demand for attention
weights.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from torch import nn

from .adapters import ArchAdapter, adapter_for, supported_model_types
from .errors import ModelLoadError
from .gating import gated
from .hardware import cpu_has_native_bf16
from .sources import DEMO_ALIASES, looks_like_path
from .surgery import eager_twin, shrink_model

PRUNING_FILE = "bhpvas_pruning.json"
PRUNED_MODEL_TYPE = "bhpvas-pruned (attention heads were physically removed; load this folder with pruning_core.load_model)"


def pick_device(requested: str | None = None) -> torch.device:
    """``requested`` if given, else CUDA when available, else CPU."""
    if requested:
        if requested.startswith("cuda") and not torch.cuda.is_available():
            raise ModelLoadError(f"Device {requested!r} was requested but CUDA is not available here. Use --device cpu.")
        return torch.device(requested)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_precision(device: torch.device, requested: str | None = None) -> str:
    """Evaluation precision: ``requested``, else ``$BHPVAS_PRECISION``, else the hardware's: bf16
    autocast on CUDA (fp16 without bf16 support) and on a CPU with native bf16 units, fp32 elsewhere."""
    value = (requested or os.environ.get("BHPVAS_PRECISION", "")).strip().lower()
    if not value:
        if device.type != "cuda":
            return "bf16" if cpu_has_native_bf16() else "fp32"
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if value not in PRECISIONS:
        raise ModelLoadError(f"Precision {value!r} is not one of {', '.join(PRECISIONS)}.")
    if value == "fp16" and device.type != "cuda":
        raise ModelLoadError("fp16 autocast needs a GPU; use bf16 or fp32 on a CPU.")
    return value


@dataclass(eq=False)
class LoadedModel:
    """A classifier plus everything bhpvas needs to gate, evaluate and prune its heads."""

    name: str
    model: nn.Module
    tokenizer: Any
    adapter: ArchAdapter
    device: torch.device
    fingerprint: str
    num_layers: int
    num_heads: int
    head_dim: int
    kept_heads: list[list[int]]
    notices: list[str] = field(default_factory=list)
    precision: str = "fp32"
    _eager: nn.Module | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    caches: dict = field(default_factory=dict, repr=False)

    @property
    def config(self):
        return self.model.config

    @property
    def num_labels(self) -> int:
        return int(self.model.config.num_labels)

    @property
    def label2id(self) -> dict[str, int]:
        return {str(k): int(v) for k, v in self.model.config.label2id.items()}

    @property
    def id2label(self) -> dict[int, str]:
        return {int(k): str(v) for k, v in self.model.config.id2label.items()}

    @property
    def pad_id(self) -> int:
        """The tokenizer's padding id (0 when it has none)."""
        return self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0

    @property
    def shape(self) -> tuple[int, int]:
        return self.num_layers, self.num_heads

    @property
    def is_pruned(self) -> bool:
        return any(len(k) != self.num_heads for k in self.kept_heads)

    def present_mask(self) -> np.ndarray:
        """Boolean (layers, heads): which original heads physically exist in this model."""
        mask = np.zeros(self.shape, dtype=bool)
        for layer, kept in enumerate(self.kept_heads):
            mask[layer, list(kept)] = True
        return mask

    def autocast(self, precision: str | None = None):
        """Context manager running forwards in this model's precision, or in ``precision`` (weights stay fp32)."""
        dtype = PRECISIONS[precision or self.precision]
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=dtype)

    def with_precision(self, precision: str) -> LoadedModel:
        """This model evaluated in ``precision`` (e.g. an fp32 twin confirming bf16 numbers): the same
        weights, its own caches (hidden states of one precision are never reused in another)."""
        if precision == self.precision:
            return self
        if precision not in PRECISIONS:
            raise ModelLoadError(f"Precision {precision!r} is not one of {', '.join(PRECISIONS)}.")
        with self._lock:
            twins = self.caches.setdefault("precision_twins", {})
            if precision not in twins:
                twins[precision] = replace(self, precision=precision, _eager=self._eager, _lock=threading.Lock(), caches={})
            return twins[precision]

    def gated(self, gates: np.ndarray | torch.Tensor | None, model: nn.Module | None = None):
        """Context manager: run ``model`` (default: this model) with head gates, this thread only."""
        return gated(model or self.model, self.adapter, gates, self.kept_heads, self.head_dim)

    def eager_model(self) -> nn.Module:
        """A twin that returns attention weights (eager attention), sharing this model's weights."""
        with self._lock:
            if self._eager is None:
                self._eager = eager_twin(self.model)
            return self._eager

    def describe(self) -> dict[str, Any]:
        params = sum(p.numel() for p in self.model.parameters())
        return {
            "name": self.name,
            "architecture": self.adapter.name,
            "model_type": self.adapter.model_types[0],
            "layers": self.num_layers,
            "heads_per_layer": self.num_heads,
            "heads_present": int(sum(len(k) for k in self.kept_heads)),
            "head_dim": self.head_dim,
            "hidden_size": self.num_heads * self.head_dim,
            "parameters": int(params),
            "labels": self.id2label,
            "device": str(self.device),
            "precision": self.precision,
            "fingerprint": self.fingerprint,
        }


def model_fingerprint(model: nn.Module, extra: str = "") -> str:
    """Content hash of the weights and config (so caches follow the model, not its path)."""
    digest = hashlib.blake2b(digest_size=16)
    config = model.config.to_dict()
    for where in ("_name_or_path", "transformers_version"):  # where it was loaded from and by which version: not the model
        config.pop(where, None)
    digest.update(json.dumps(config, sort_keys=True, default=str).encode())
    digest.update(extra.encode())
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()


def resolve_source(source: str | os.PathLike) -> str:
    """The folder or hub id behind a user's model string (``demo`` is the embedded model)."""
    text = str(source).strip()
    if text.lower() in DEMO_ALIASES:
        from .demo import DEMO_DIR, demo_available

        if not demo_available(DEMO_DIR):
            raise ModelLoadError(
                f"The demo model is missing from {DEMO_DIR}. Build it with `python -m pruning_core prepare-demo` "
                "(about 30 minutes on a laptop CPU)."
            )
        return str(DEMO_DIR)
    return text


def _check_local(path: Path) -> None:
    if not path.exists():
        raise ModelLoadError(f"Model folder {path} does not exist. Check the path, or use `demo` for the embedded model.")
    if not path.is_dir():
        raise ModelLoadError(f"{path} is a file; give the folder that holds config.json and the weights.")
    if not (path / "config.json").exists():
        raise ModelLoadError(
            f"{path} is not a model folder: it has no config.json. Give a folder written by save_pretrained "
            "(config.json + model.safetensors + tokenizer files)."
        )


TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "sentencepiece.bpe.model", "spiece.model", "tokenizer.model")
"""A local model folder needs one of these; without them transformers builds a useless 5-token vocabulary."""
MIN_VOCABULARY = 100


def _load_tokenizer(source: str, config=None):
    from transformers import AutoTokenizer

    folder = Path(source)
    if folder.is_dir() and not any((folder / name).is_file() for name in TOKENIZER_FILES):
        raise ModelLoadError(
            f"{source} has no tokenizer files (none of {', '.join(TOKENIZER_FILES)}), so every word would become [UNK]. "
            "Save the tokenizer into the folder too (tokenizer.save_pretrained(folder))."
        )
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, config=config, trust_remote_code=False)
    except Exception as exc:
        raise ModelLoadError(
            f"Could not load a tokenizer from {source}: {type(exc).__name__}: {str(exc)[:200]}. "
            "The folder needs tokenizer files (tokenizer.json or vocab.txt + tokenizer_config.json)."
        ) from None
    if len(tokenizer) < MIN_VOCABULARY:
        raise ModelLoadError(
            f"The tokenizer of {source} knows only {len(tokenizer)} tokens, so nearly every word would become unknown. "
            "Its tokenizer files are incomplete; save the model's full tokenizer into the folder."
        )
    return tokenizer


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hugging Face Hub answers (a quick TCP probe, so offline use fails fast)."""
    import socket
    from urllib.parse import urlparse

    endpoint = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    try:
        with socket.create_connection((endpoint.hostname or "huggingface.co", endpoint.port or 443), timeout=timeout):
            return True
    except OSError:
        return False


def _hub_error(source: str, exc: Exception, offline: bool) -> ModelLoadError:
    if offline:
        return ModelLoadError(
            f"Could not load {source!r}: it is not a local folder, the Hugging Face Hub cannot be reached from this "
            "machine (no network), and it is not in the local Hub cache. Use a local model folder or `demo`."
        )
    return ModelLoadError(
        f"Could not load {source!r} from the Hugging Face Hub ({type(exc).__name__}: {str(exc).splitlines()[0][:200]}). "
        "Check the model id, or use a local folder or `demo`."
    )


def load_model(
    source: str | os.PathLike = "demo",
    device: str | None = None,
    attn_implementation: str = "sdpa",
    allow_new_head: bool = False,
    precision: str | None = None,
) -> LoadedModel:
    """Load a BERT-family sequence classifier for gating, evaluation and pruning.

    ``source``: ``demo``, a local folder (also one written by :func:`save_pruned`), or a hub id.
    ``precision``: evaluation autocast, see :func:`resolve_precision`.
    Raises :class:`ModelLoadError` with an actionable message for every expected problem.
    """
    from transformers import AutoConfig, AutoModelForSequenceClassification

    if "\x00" in str(source):
        raise ModelLoadError("The model path contains a NUL byte, which no file name can hold; check the path.")
    resolved = resolve_source(source)
    path = Path(resolved).expanduser()
    is_local = path.exists() or looks_like_path(resolved)
    if is_local:
        _check_local(path)
        resolved = str(path)
        if (path / PRUNING_FILE).exists():
            return load_pruned(path, device=device, attn_implementation=attn_implementation, precision=precision)
    target = pick_device(device)
    offline = not is_local and not hub_reachable()
    try:
        config = AutoConfig.from_pretrained(resolved, trust_remote_code=False, local_files_only=offline)
    except ValueError as exc:
        raise ModelLoadError(
            f"{resolved} has a config of an architecture transformers does not know ({str(exc)[:160]}). "
            f"bhpvas supports: {', '.join(supported_model_types())}."
        ) from None
    except OSError as exc:
        if is_local:
            raise ModelLoadError(f"Could not read the config of {resolved}: {str(exc)[:200]}.") from None
        raise _hub_error(resolved, exc, offline) from None
    adapter = adapter_for(config.model_type)
    try:
        model, info = AutoModelForSequenceClassification.from_pretrained(
            resolved,
            trust_remote_code=False,
            attn_implementation=attn_implementation,
            dtype=torch.float32,
            output_loading_info=True,
            local_files_only=offline,
        )
    except OSError as exc:
        if is_local:
            raise ModelLoadError(
                f"{resolved} has a config but its weights could not be read ({str(exc)[:200]}). "
                "It needs model.safetensors (or pytorch_model.bin)."
            ) from None
        raise _hub_error(resolved, exc, offline) from None
    except (RuntimeError, ValueError) as exc:
        raise ModelLoadError(f"Could not build the model from {resolved}: {str(exc)[:300]}") from None
    except SafetensorError as exc:
        raise ModelLoadError(
            f"The weights file of {resolved} is damaged or incomplete ({str(exc)[:160]}); it may have been cut off while "
            "copying. Copy or save model.safetensors again."
        ) from None
    missing = [k for k in info.get("missing_keys", []) if "classifier" in k or "pooler" in k]
    notices = []
    if missing and not allow_new_head:
        raise ModelLoadError(
            f"{resolved} has no trained classification head (missing {', '.join(sorted(missing)[:4])}). "
            "bhpvas analyses fine-tuned sequence classifiers: fine-tune the encoder on your task first "
            "(see `python -m pruning_core prepare-demo` for a recipe)."
        )
    if missing:
        notices.append(f"New, untrained classification head: {', '.join(sorted(missing)[:4])}.")
    tokenizer = _load_tokenizer(resolved)
    model.to(target).eval()
    num_heads = adapter.num_heads(config)
    num_layers = adapter.num_layers(config)
    return LoadedModel(
        name=str(source),
        model=model,
        tokenizer=tokenizer,
        adapter=adapter,
        device=target,
        fingerprint=model_fingerprint(model),
        num_layers=num_layers,
        num_heads=num_heads,
        head_dim=adapter.head_dim(config),
        kept_heads=[list(range(num_heads)) for _ in range(num_layers)],
        notices=notices,
        precision=resolve_precision(target, precision),
    )


def _check_head_map(path: Path, kept: list[list[int]], meta: dict, num_layers: int, num_heads: int) -> None:
    """Refuse a pruning map that does not describe this config: one list per layer, each of distinct heads in range."""
    problem = None
    if (meta.get("num_layers", num_layers), meta.get("num_heads", num_heads)) != (num_layers, num_heads):
        problem = f"it is for {meta.get('num_layers')} layers x {meta.get('num_heads')} heads, the config for {num_layers} x {num_heads}"
    elif len(kept) != num_layers:
        problem = f"it lists kept heads for {len(kept)} layers, the model has {num_layers}"
    else:
        for layer, heads in enumerate(kept):
            if len(set(heads)) != len(heads):
                problem = f"layer {layer} names a head twice ({heads})"
            elif any(not 0 <= h < num_heads for h in heads):
                problem = f"layer {layer} names a head outside 0..{num_heads - 1} ({heads})"
            elif heads != sorted(heads):
                problem = f"layer {layer} lists its heads out of order ({heads})"
            if problem:
                break
    if problem:
        raise ModelLoadError(f"The head map {PRUNING_FILE} in {path} is damaged: {problem}. Prune and save the model again.")


def load_pruned(path: Path, device: str | None = None, attn_implementation: str = "sdpa", precision: str | None = None) -> LoadedModel:
    """Load a folder written by :func:`pruning_core.pruning.save_pruned`."""
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoModelForSequenceClassification

    try:
        meta = json.loads((path / PRUNING_FILE).read_text())
        config_dict = json.loads((path / "config.json").read_text())
        kept = [list(map(int, k)) for k in meta["kept_heads"]]
        model_type = meta["base_model_type"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelLoadError(f"{path} looks like a bhpvas-pruned model but its {PRUNING_FILE} or config.json is damaged ({exc}).") from None
    adapter = adapter_for(model_type)
    config_dict = {k: v for k, v in config_dict.items() if not k.startswith("bhpvas_")}
    config_dict["model_type"] = model_type
    config = AutoConfig.for_model(**config_dict)
    _check_head_map(path, kept, meta, adapter.num_layers(config), adapter.num_heads(config))
    model = AutoModelForSequenceClassification.from_config(config, trust_remote_code=False, attn_implementation=attn_implementation)
    shrink_model(model, adapter, kept, adapter.head_dim(config))
    try:
        model.load_state_dict(load_file(str(path / "model.safetensors")), strict=True)
    except (OSError, RuntimeError, SafetensorError) as exc:
        raise ModelLoadError(f"Weights in {path} do not match its pruning map, or are damaged: {str(exc)[:300]}") from None
    target = pick_device(device)
    model.to(target).eval()
    num_layers = adapter.num_layers(config)
    return LoadedModel(
        name=str(path),
        model=model,
        tokenizer=_load_tokenizer(str(path), config),
        adapter=adapter,
        device=target,
        fingerprint=model_fingerprint(model, extra=json.dumps(kept)),
        num_layers=num_layers,
        num_heads=int(meta["num_heads"]),
        head_dim=adapter.head_dim(config),
        kept_heads=kept,
        precision=resolve_precision(target, precision),
    )
