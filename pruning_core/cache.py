"""On-disk result cache: NumPy arrays plus JSON metadata, keyed by explicit strings.

Writes are atomic (temporary file + rename). An entry that cannot be read, fails its checksum,
was written by another code version, is not a regular file, or does not have the shape its
reader expects is deleted and treated as missing, never trusted.

Bounded: ``$BHPVAS_CACHE_MAX_GB`` (default 20) caps the entries' total size; beyond it the least
recently used entries (by modification time, refreshed on every hit) are deleted. Temporary files
of writers that died (a killed process leaves ``.tmp-<pid>-*``) are removed when a cache folder is
first opened by a process: at once when their process is gone, else after a day.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import re
import secrets
import shutil
import stat
import threading
import time
import zipfile
from collections.abc import Callable, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from .errors import CacheError
from .settings import env_number

CODE_VERSION = "1"
T = TypeVar("T")
DEFAULT_MAX_GB = 20.0
TEMP_PREFIX = ".tmp-"
STALE_TEMP_SECONDS = 24 * 3600
Shape = Sequence[int | None]
"""An expected array shape; ``None`` matches any length along that axis."""


def cache_max_bytes() -> int:
    """``$BHPVAS_CACHE_MAX_GB`` (default 20) in bytes; 0 turns the disk cache off."""
    return int(env_number("BHPVAS_CACHE_MAX_GB", DEFAULT_MAX_GB, minimum=0) * 2**30)


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
    """A folder of ``<key>.npz`` entries, bounded in bytes (``max_bytes``; default from the environment)."""

    def __init__(self, root: str | Path | None = None, enabled: bool = True, max_bytes: int | None = None):
        self.root = Path(root) if root is not None else default_cache_dir()
        self.max_bytes = cache_max_bytes() if max_bytes is None else max_bytes
        self.enabled = enabled and self.max_bytes > 0
        self.last_error: str | None = None
        if enabled:
            _sweep_once(self.root)

    def path(self, key: str) -> Path:
        return self.root / f"{key}.npz"

    def discard(self, key: str) -> None:
        """Delete an entry (also one that is a folder or another non-file)."""
        _remove(self.path(key))

    def get(self, key: str, shapes: Mapping[str, Shape] | None = None) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
        """Arrays and metadata of an entry, or None if absent or not trustworthy (then deleted).

        ``shapes``: the shape each named array must have (``None`` for any length on an axis); an
        entry without such an array or of another shape is deleted, so a caller never indexes
        into a result made for other data.
        """
        if not self.enabled:
            return None
        path = self.path(key)
        try:
            info = path.lstat()
        except (OSError, ValueError):
            return None
        if not stat.S_ISREG(info.st_mode):
            _remove(path)
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {name: data[name] for name in data.files if name not in ("__meta__", "__checksum__")}
                meta_json = str(data["__meta__"])
                checksum = str(data["__checksum__"])
            meta = json.loads(meta_json)
            if meta.get("__key__") != key or meta.get("__code__") != CODE_VERSION or checksum != _checksum(arrays, meta_json):
                raise ValueError("stale or mismatched entry")
            if shapes is not None and not all(name in arrays and _fits(arrays[name].shape, shape) for name, shape in shapes.items()):
                raise ValueError("entry of another shape")
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, json.JSONDecodeError):
            _remove(path)
            return None
        with suppress(OSError):
            os.utime(path)
        return arrays, meta

    def put(self, key: str, arrays: dict[str, np.ndarray], meta: dict[str, Any] | None = None, strict: bool = False) -> bool:
        """Write an entry atomically; returns whether it was written.

        A failed write (disk full, read-only folder) keeps any previous entry, records the reason
        in ``last_error`` and, with ``strict``, raises :class:`CacheError`. Afterwards the least
        recently used entries are deleted while the folder is over ``max_bytes``.
        """
        if not self.enabled:
            return False
        meta_json = json.dumps({**(meta or {}), "__key__": key, "__code__": CODE_VERSION}, default=str)
        payload = {name: np.asarray(a) for name, a in arrays.items()}
        buffer = io.BytesIO()
        np.savez(buffer, __meta__=np.array(meta_json), __checksum__=np.array(_checksum(payload, meta_json)), **payload)
        if buffer.tell() > self.max_bytes:
            self.last_error = (
                f"A result of {buffer.tell() / 2**20:.0f} MiB is larger than the cache limit (BHPVAS_CACHE_MAX_GB); it was not saved."
            )
            if strict:
                raise CacheError(self.last_error)
            return False
        tmp = self.root / temp_name()
        target = self.path(key)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            with open(tmp, "xb") as handle:
                handle.write(buffer.getvalue())
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, target)
        except OSError as exc:
            _remove(tmp)
            reason = "the disk is full" if exc.errno == errno.ENOSPC else str(exc)
            self.last_error = (
                f"Could not write to the cache at {self.root}: {reason}. Results were computed but not saved "
                "(earlier entries are kept); free space or set BHPVAS_CACHE_DIR."
            )
            if strict:
                raise CacheError(self.last_error) from None
            return False
        self._account(target)
        return True

    def _account(self, written: Path) -> None:
        """Add the new entry to this folder's running total; evict when the total passes the limit."""
        with _USAGE_LOCK:
            total = _USAGE.get(self.root)
            if total is None:
                total = _USAGE[self.root] = self.size()
            else:
                with suppress(OSError):
                    total = _USAGE[self.root] = total + written.stat().st_size
            if total > self.max_bytes:
                _USAGE[self.root] = self.evict(self.max_bytes, keep=written)

    def size(self) -> int:
        """Total bytes of the entries now on disk."""
        return sum(size for _, _, size in self._entries())

    def _entries(self) -> list[tuple[float, Path, int]]:
        found = []
        if self.root.is_dir():
            for path in self.root.glob("[!.]*.npz"):
                with suppress(OSError):
                    info = path.stat()
                    found.append((info.st_mtime, path, info.st_size))
        return found

    def evict(self, max_bytes: int, keep: Path | None = None) -> int:
        """Delete least recently used entries until at most ``max_bytes`` remain; returns the bytes left."""
        entries = sorted(self._entries(), key=lambda e: e[0])
        total = sum(size for _, _, size in entries)
        for _, path, size in entries:
            if total <= max_bytes:
                break
            if path == keep:
                continue
            _remove(path)
            total -= size
        return total

    def clear(self) -> int:
        """Delete every entry; returns how many were removed."""
        count = 0
        if self.root.exists():
            for path in self.root.glob("[!.]*.npz"):
                _remove(path)
                count += 1
        with _USAGE_LOCK:
            _USAGE.pop(self.root, None)
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


def _fits(actual: tuple[int, ...], expected: Shape) -> bool:
    return len(actual) == len(expected) and all(e is None or a == e for a, e in zip(actual, expected, strict=True))


def _remove(path: Path) -> None:
    """Delete a file, link or folder; a missing one is fine."""
    with suppress(OSError):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def temp_name(suffix: str = "") -> str:
    """A temporary name that records this process: ``.tmp-<pid>-<random><suffix>`` (see :func:`sweep_temporary`)."""
    return f"{TEMP_PREFIX}{os.getpid()}-{secrets.token_hex(6)}{suffix}"


_TEMP_NAME = re.compile(rf"^{re.escape(TEMP_PREFIX)}(\d+)-[0-9a-f]{{12}}")


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def sweep_temporary(folder: str | Path, max_age_seconds: float = STALE_TEMP_SECONDS, now: float | None = None) -> list[Path]:
    """Remove ``.tmp-*`` files and folders in ``folder`` left by writers that died.

    One is removed when the process named in it is gone (a kill mid-write), or, whatever its
    name, when it is older than ``max_age_seconds`` (another machine's writer, an old format).
    """
    root = Path(folder)
    now = time.time() if now is None else now
    removed: list[Path] = []
    if not root.is_dir():
        return removed
    for path in root.glob(f"{TEMP_PREFIX}*"):
        named = _TEMP_NAME.match(path.name)
        orphan = named is not None and not _process_alive(int(named.group(1)))
        try:
            old = now - path.lstat().st_mtime > max_age_seconds
        except OSError:
            continue
        if orphan or old:
            _remove(path)
            removed.append(path)
    return removed


_SWEPT: set[Path] = set()
_USAGE: dict[Path, int] = {}
_USAGE_LOCK = threading.Lock()


def _sweep_once(root: Path) -> None:
    with _USAGE_LOCK:
        if root in _SWEPT:
            return
        _SWEPT.add(root)
    sweep_temporary(root)


_FLIGHTS: dict[str, list] = {}
_FLIGHTS_LOCK = threading.Lock()


@contextmanager
def single_flight(key: str):
    """Serialise work on one key: a second caller waits for the first, then finds its cached result.

    A key's lock lives only while someone holds or waits for it, so the table does not grow.
    """
    with _FLIGHTS_LOCK:
        entry = _FLIGHTS.setdefault(key, [threading.Lock(), 0])
        entry[1] += 1
    try:
        with entry[0]:
            yield
    finally:
        with _FLIGHTS_LOCK:
            entry[1] -= 1
            if entry[1] == 0:
                del _FLIGHTS[key]


def flights_in_use() -> int:
    """How many keys have a holder or waiter now (for tests and monitoring)."""
    with _FLIGHTS_LOCK:
        return len(_FLIGHTS)
