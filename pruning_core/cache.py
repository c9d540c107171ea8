"""On-disk result cache: NumPy arrays plus JSON metadata, keyed by explicit strings.

Writes are atomic (temporary file + rename). An entry that cannot be read, fails its checksum,
or was written by another code version is deleted and treated as missing, never trusted.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import tempfile
import threading
import zipfile
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from .errors import CacheError

CODE_VERSION = "1"
T = TypeVar("T")


def default_cache_dir() -> Path:
    """``$BHPVAS_CACHE_DIR``, else ``~/.cache/bhpvas``."""
    env = os.environ.get("BHPVAS_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "bhpvas"


def cache_key(kind: str, **parts: Any) -> str:
    """A stable key from a kind and named parts (model fingerprint, data fingerprint, mask, ...)."""
    payload = json.dumps({"kind": kind, "code": CODE_VERSION, **parts}, sort_keys=True, default=str)
    return f"{kind}-{hashlib.sha256(payload.encode()).hexdigest()[:32]}"


def _checksum(arrays: dict[str, np.ndarray], meta_json: str) -> str:
    digest = hashlib.sha256(meta_json.encode())
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(name.encode())
        digest.update(str(array.dtype).encode())
        digest.update(str(array.shape).encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


class DiskCache:
    """A folder of ``<key>.npz`` entries."""

    def __init__(self, root: str | Path | None = None, enabled: bool = True):
        self.root = Path(root) if root is not None else default_cache_dir()
        self.enabled = enabled
        self.last_error: str | None = None

    def path(self, key: str) -> Path:
        return self.root / f"{key}.npz"

    def get(self, key: str) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
        """Arrays and metadata of an entry, or None if absent or not trustworthy (then deleted)."""
        if not self.enabled:
            return None
        path = self.path(key)
        if not path.exists():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {name: data[name] for name in data.files if name not in ("__meta__", "__checksum__")}
                meta_json = str(data["__meta__"])
                checksum = str(data["__checksum__"])
            meta = json.loads(meta_json)
            if meta.get("__key__") != key or meta.get("__code__") != CODE_VERSION or checksum != _checksum(arrays, meta_json):
                raise ValueError("stale or mismatched entry")
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, json.JSONDecodeError):
            path.unlink(missing_ok=True)
            return None
        return arrays, meta

    def put(self, key: str, arrays: dict[str, np.ndarray], meta: dict[str, Any] | None = None, strict: bool = False) -> bool:
        """Write an entry atomically; returns whether it was written.

        A failed write (disk full, read-only folder) keeps any previous entry, records the reason
        in ``last_error`` and, with ``strict``, raises :class:`CacheError`.
        """
        if not self.enabled:
            return False
        meta_json = json.dumps({**(meta or {}), "__key__": key, "__code__": CODE_VERSION}, default=str)
        payload = {name: np.asarray(a) for name, a in arrays.items()}
        buffer = io.BytesIO()
        np.savez(buffer, __meta__=np.array(meta_json), __checksum__=np.array(_checksum(payload, meta_json)), **payload)
        tmp_name = None
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=self.root, prefix=".tmp-", suffix=".npz", delete=False) as tmp:
                tmp_name = tmp.name
                tmp.write(buffer.getvalue())
                tmp.flush()
                os.fsync(tmp.fileno())
            os.replace(tmp_name, self.path(key))
        except OSError as exc:
            if tmp_name:
                Path(tmp_name).unlink(missing_ok=True)
            reason = "the disk is full" if exc.errno == errno.ENOSPC else str(exc)
            self.last_error = (
                f"Could not write to the cache at {self.root}: {reason}. Results were computed but not saved "
                "(earlier entries are kept); free space or set BHPVAS_CACHE_DIR."
            )
            if strict:
                raise CacheError(self.last_error) from None
            return False
        return True

    def clear(self) -> int:
        """Delete every entry; returns how many were removed."""
        count = 0
        if self.root.exists():
            for path in self.root.glob("*.npz"):
                path.unlink(missing_ok=True)
                count += 1
        return count


def cached_part(
    cache: DiskCache,
    key: str,
    compute: Callable[[], T],
    to_entry: Callable[[T], tuple[dict[str, np.ndarray], dict[str, Any]]],
    from_entry: Callable[[dict[str, np.ndarray], dict[str, Any]], T],
) -> T:
    """The part stored under ``key``, or ``compute()`` stored there and returned.

    ``to_entry`` turns a result into (arrays, JSON metadata); ``from_entry`` rebuilds it. A write
    that fails leaves the reason in ``cache.last_error`` and still returns the result.
    """
    hit = cache.get(key)
    if hit is not None:
        return from_entry(*hit)
    result = compute()
    arrays, meta = to_entry(result)
    cache.put(key, arrays, meta)
    return result


_FLIGHTS: dict[str, threading.Lock] = {}
_FLIGHTS_LOCK = threading.Lock()


@contextmanager
def single_flight(key: str):
    """Serialise work on one key: a second caller waits for the first, then finds its cached result."""
    with _FLIGHTS_LOCK:
        lock = _FLIGHTS.setdefault(key, threading.Lock())
    with lock:
        yield
