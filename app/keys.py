"""The text forms that go into the URL: data keys and sets of heads."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pruning_core import BhpvasError
from pruning_core.schemes import Scheme

DEFAULT_MODEL = "demo"
DEFAULT_DATA = "sst2"
DATA_OPTIONS = ("text", "pair", "label", "rows")
Head = tuple[int, int]


@dataclass(frozen=True)
class DataChoice:
    """A dataset as the user chose it: source plus optional column names and a row limit.

    Its key is ``source`` or ``source|text=a|pair=b|label=c|rows=N``.
    """

    source: str
    text: str | None = None
    pair: str | None = None
    label: str | None = None
    rows: int | None = None

    def key(self) -> str:
        parts = [self.source]
        for name in DATA_OPTIONS:
            value = getattr(self, name)
            if value not in (None, ""):
                parts.append(f"{name}={value}")
        return "|".join(parts)

    @classmethod
    def parse(cls, key: str) -> DataChoice:
        source, *options = key.split("|")
        values: dict[str, str] = {}
        for option in options:
            name, _, value = option.partition("=")
            if name not in DATA_OPTIONS or not value:
                raise BhpvasError(f"Cannot read the dataset option {option!r} in {key!r}; expected text=, pair=, label= or rows=.")
            values[name] = value
        rows = values.pop("rows", None)
        if rows is not None and not (rows.isascii() and rows.isdigit()):
            raise BhpvasError(f"rows={rows!r} in the dataset {key!r} must be a positive whole number.")
        return cls(source.strip() or DEFAULT_DATA, rows=int(rows) if rows else None, **values)


def head_label(head: Head) -> str:
    return f"{head[0]}.{head[1]}"


def heads_key(heads: Iterable[Head]) -> str:
    """The URL form of a set of heads (as :meth:`Scheme.key`): ``0.3,5.11`` or ``none``."""
    return ",".join(head_label(h) for h in sorted(set(heads))) or "none"


def parse_heads(key: str, num_layers: int, num_heads: int) -> set[Head]:
    return set(Scheme.from_key(key or "none", num_layers, num_heads).pruned)


def all_heads(num_layers: int, num_heads: int) -> list[Head]:
    return [(layer, head) for layer in range(num_layers) for head in range(num_heads)]


def heads_text(count: int) -> str:
    """``1 head`` / ``3 heads``."""
    return f"{count} head" + ("" if count == 1 else "s")
