"""One bounded least-recently-used map for every in-memory cache (by entries, by bytes, or both).

Thread-safe. An entry larger than the byte bound is not stored at all, so one huge value never
evicts everything else; the newest entry is never evicted by its own insertion.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from typing import Generic, TypeVar

import numpy as np

V = TypeVar("V")


def nbytes_of(value: object) -> int:
    """Best-effort size in bytes: ``.nbytes`` (arrays, tensors' numpy views), containers summed, else 0."""
    size = getattr(value, "nbytes", None)
    if isinstance(size, (int, np.integer)):
        return int(size)
    numel, element_size = getattr(value, "numel", None), getattr(value, "element_size", None)
    if callable(numel) and callable(element_size):
        return int(numel() * element_size())
    if isinstance(value, dict):
        return sum(nbytes_of(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(nbytes_of(v) for v in value)
    if isinstance(value, (str, bytes)):
        return len(value)
    return 0


class LRUCache(Generic[V]):
    """Map bounded by ``max_entries`` and/or ``max_bytes`` (``sizeof`` measures a value)."""

    def __init__(self, max_entries: int | None = None, max_bytes: int | None = None, sizeof: Callable[[V], int] = nbytes_of):
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._sizeof = sizeof
        self._items: OrderedDict[Hashable, tuple[V, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: Hashable, default: V | None = None) -> V | None:
        with self._lock:
            hit = self._items.get(key)
            if hit is None:
                return default
            self._items.move_to_end(key)
            return hit[0]

    def put(self, key: Hashable, value: V) -> bool:
        """Store ``value``; False when it alone is over the byte bound (then nothing is stored)."""
        size = int(self._sizeof(value))
        if self.max_bytes is not None and size > self.max_bytes:
            return False
        if self.max_entries is not None and self.max_entries <= 0:
            return False
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= old[1]
            self._items[key] = (value, size)
            self._bytes += size
            while len(self._items) > 1 and (
                (self.max_entries is not None and len(self._items) > self.max_entries)
                or (self.max_bytes is not None and self._bytes > self.max_bytes)
            ):
                _, (_, dropped) = self._items.popitem(last=False)
                self._bytes -= dropped
        return True

    def pop(self, key: Hashable, default: V | None = None) -> V | None:
        with self._lock:
            hit = self._items.pop(key, None)
            if hit is None:
                return default
            self._bytes -= hit[1]
            return hit[0]

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0

    def items(self) -> list[tuple[Hashable, V]]:
        """A snapshot, oldest first (does not change recency)."""
        with self._lock:
            return [(k, v) for k, (v, _) in self._items.items()]

    @property
    def nbytes(self) -> int:
        return self._bytes

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._items

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Hashable]:
        return iter([k for k, _ in self.items()])
