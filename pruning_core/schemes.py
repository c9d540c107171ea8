"""Pruning schemes: which heads go, as JSON ``{"model", "num_layers", "num_heads", "pruned"}``."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import SchemeError
from .safe_files import read_user_file

MAX_SCHEME_BYTES = 16 * 2**20
MAX_COUNT = 10_000
"""No supported model has more layers or heads per layer; larger counts are refused as typos."""


@dataclass(frozen=True)
class Scheme:
    """A set of pruned heads of a model with ``num_layers`` x ``num_heads`` heads."""

    num_layers: int
    num_heads: int
    pruned: frozenset[tuple[int, int]] = field(default_factory=frozenset)
    model: str = ""
    name: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "pruned", frozenset((int(layer), int(head)) for layer, head in self.pruned))
        for layer, head in self.pruned:
            if not (0 <= layer < self.num_layers and 0 <= head < self.num_heads):
                raise SchemeError(
                    f"Head ({layer}, {head}) is outside a model with {self.num_layers} layers x {self.num_heads} heads "
                    "(layers and heads count from 0)."
                )

    @classmethod
    def from_mask(cls, keep: np.ndarray, model: str = "", name: str = "") -> Scheme:
        keep = np.asarray(keep, dtype=bool)
        layers, heads = keep.shape
        pruned = {(int(l_), int(h)) for l_, h in zip(*np.nonzero(~keep), strict=False)}
        return cls(layers, heads, frozenset(pruned), model=model, name=name)

    @classmethod
    def empty(cls, num_layers: int, num_heads: int, model: str = "") -> Scheme:
        return cls(num_layers, num_heads, frozenset(), model=model)

    def keep_mask(self) -> np.ndarray:
        mask = np.ones((self.num_layers, self.num_heads), dtype=bool)
        for layer, head in self.pruned:
            mask[layer, head] = False
        return mask

    @property
    def total_heads(self) -> int:
        return self.num_layers * self.num_heads

    def toggled(self, layer: int, head: int) -> Scheme:
        """The same scheme with one head's state flipped."""
        pruned = set(self.pruned) ^ {(int(layer), int(head))}
        return Scheme(self.num_layers, self.num_heads, frozenset(pruned), self.model, self.name)

    def check_fits(self, num_layers: int, num_heads: int) -> None:
        if (self.num_layers, self.num_heads) != (num_layers, num_heads):
            raise SchemeError(
                f"This scheme is for a model with {self.num_layers} layers x {self.num_heads} heads, but the loaded model "
                f"has {num_layers} x {num_heads}. Use a scheme made for this model."
            )

    def key(self) -> str:
        """A short string identifying the pruned set (for cache keys and URLs)."""
        return ",".join(f"{layer}.{head}" for layer, head in sorted(self.pruned)) or "none"

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "model": self.model,
            "num_layers": self.num_layers,
            "num_heads": self.num_heads,
            "pruned": [[layer, head] for layer, head in sorted(self.pruned)],
        }
        if self.name:
            data["name"] = self.name
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, data: Any) -> Scheme:
        if not isinstance(data, dict):
            raise SchemeError('A scheme must be a JSON object like {"num_layers": 6, "num_heads": 12, "pruned": [[0, 3]]}.')
        missing = [k for k in ("num_layers", "num_heads", "pruned") if k not in data]
        if missing:
            raise SchemeError(f"The scheme lacks the field(s) {missing}; it needs num_layers, num_heads and pruned.")
        layers, heads = _whole_number(data["num_layers"], "num_layers"), _whole_number(data["num_heads"], "num_heads")
        if layers <= 0 or heads <= 0:
            raise SchemeError("num_layers and num_heads in the scheme must be positive.")
        pruned = data["pruned"]
        if not isinstance(pruned, list) or not all(_is_pair(p) for p in pruned):
            raise SchemeError('"pruned" must be a list of [layer, head] integer pairs, e.g. [[0, 3], [5, 11]].')
        return cls(layers, heads, frozenset((int(a), int(b)) for a, b in pruned), str(data.get("model", "")), str(data.get("name", "")))

    @classmethod
    def from_json(cls, text: str | bytes) -> Scheme:
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise SchemeError(f"The scheme is not valid JSON ({getattr(exc, 'msg', exc)}).") from None
        return cls.from_dict(data)

    @classmethod
    def from_file(cls, path: str | Path) -> Scheme:
        """Read a scheme JSON file (a regular file of at most 16 MiB; see :func:`read_user_file`)."""
        return cls.from_json(read_user_file(path, max_bytes=MAX_SCHEME_BYTES, error=SchemeError, what="Scheme file"))

    @classmethod
    def from_key(cls, key: str, num_layers: int, num_heads: int, model: str = "") -> Scheme:
        """Inverse of :meth:`key` (used for URLs)."""
        if key in ("", "none"):
            return cls.empty(num_layers, num_heads, model)
        try:
            pairs = [tuple(int(x) for x in item.split(".")) for item in key.split(",")]
        except ValueError:
            raise SchemeError(f"Cannot read the scheme {key!r}; expected items like 0.3,5.11 (layer.head).") from None
        if any(len(p) != 2 for p in pairs):
            raise SchemeError(f"Cannot read the scheme {key!r}; expected items like 0.3,5.11 (layer.head).")
        return cls(num_layers, num_heads, frozenset(pairs), model)


def _whole_number(value: Any, name: str) -> int:
    """``value`` as an int if it is a whole number (``6`` or ``6.0``); 3.9, 1e400, "6" and true are refused."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SchemeError(f"{name} in the scheme must be a whole number, not {value!r}.")
    if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
        raise SchemeError(f"{name} in the scheme must be a whole number, not {value!r}.")
    if value > MAX_COUNT:
        raise SchemeError(f"{name} in the scheme is {value!r}; no model has more than {MAX_COUNT}.")
    return int(value)


def _is_pair(item: Any) -> bool:
    return isinstance(item, (list, tuple)) and len(item) == 2 and all(isinstance(x, int) and not isinstance(x, bool) for x in item)
