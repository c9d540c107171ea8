"""Uploaded data files, kept per session and removed when the session ends.

An upload is stored as ``<root>/<session token>/<sha256[:16]>/<file name>`` (root: the cache folder's
``uploads``), so its path can go into the URL while the session lives. The session's folder is
removed by :class:`EndedSessionSweeper` once the session has been gone longer than the server keeps
it for reconnecting, when its :class:`UploadSession` is garbage-collected, or when the process
exits; :func:`sweep_uploads`
removes folders left behind by a crash once they are older than ``BHPVAS_UPLOAD_TTL_HOURS``.

Plain Python (no streamlit).
"""

from __future__ import annotations

import errno
import hashlib
import os
import secrets
import shutil
import threading
import time
import weakref
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path

from .cache import default_cache_dir, sweep_temporary, temp_name
from .errors import DataError
from .settings import env_number

DEFAULT_TTL_HOURS = 24.0


def uploads_root() -> Path:
    """``<cache folder>/uploads`` (see :func:`pruning_core.cache.default_cache_dir`)."""
    return default_cache_dir() / "uploads"


def upload_ttl_hours() -> float:
    """``$BHPVAS_UPLOAD_TTL_HOURS`` (default 24): age after which a left-over upload folder is swept."""
    return env_number("BHPVAS_UPLOAD_TTL_HOURS", DEFAULT_TTL_HOURS, minimum=0)


class UploadSession:
    """One session's upload folder; the folder is deleted when this object is collected."""

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root is not None else uploads_root()
        self.token = secrets.token_hex(12)
        self.folder = self.root / self.token
        self._finalizer = weakref.finalize(self, shutil.rmtree, str(self.folder), True)

    def save(self, raw: bytes, filename: str) -> Path:
        """Store ``raw`` under this session's folder and return its path."""
        digest = hashlib.sha256(raw).hexdigest()[:16]
        folder = self.folder / digest
        name = Path(filename.replace("\x00", "")).name or "upload.csv"
        path = folder / name
        tmp = folder / temp_name()
        try:
            folder.mkdir(parents=True, exist_ok=True)
            if not path.exists():
                with open(tmp, "xb") as handle:
                    handle.write(raw)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(tmp, path)
        except OSError as exc:
            with suppress(OSError):
                tmp.unlink(missing_ok=True)
            reason = "the server's disk is full" if exc.errno == errno.ENOSPC else (exc.strerror or str(exc))
            raise DataError(
                f"Could not store the upload {name!r}: {reason}. Nothing was saved; try again later or use a smaller file."
            ) from None
        return path

    def close(self) -> None:
        """Delete the folder now (also done automatically when the object is collected)."""
        self._finalizer()

    @property
    def alive(self) -> bool:
        return self._finalizer.alive


class EndedSessionSweeper:
    """Removes the upload folders of sessions that ended, while the server runs.

    A tracked folder is deleted once its session has not been active for ``grace_seconds`` (the
    time the server keeps a closed tab's session for reconnecting). This does not rely on garbage
    collection, and it touches only folders this process created. Folder tokens are random, not
    the session id, because upload paths go into shareable URLs.
    """

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root is not None else uploads_root()
        self._tracked: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def track(self, token: str, session_id: str, now: float | None = None) -> None:
        """Remember that folder ``token`` belongs to ``session_id``, active now."""
        with self._lock:
            self._tracked[token] = (session_id, time.time() if now is None else now)

    @property
    def tracked(self) -> set[str]:
        with self._lock:
            return set(self._tracked)

    def sweep(self, is_active: Callable[[str], bool], grace_seconds: float, now: float | None = None) -> list[Path]:
        """Delete the folders of tracked sessions inactive for longer than ``grace_seconds``."""
        now = time.time() if now is None else now
        removed: list[Path] = []
        with self._lock:
            for token, (session_id, last) in list(self._tracked.items()):
                if is_active(session_id):
                    self._tracked[token] = (session_id, now)
                elif now - last > grace_seconds:
                    shutil.rmtree(self.root / token, ignore_errors=True)
                    del self._tracked[token]
                    removed.append(self.root / token)
        return removed


def _newest_mtime(folder: Path) -> float:
    newest = folder.stat().st_mtime
    for path in folder.rglob("*"):
        try:
            newest = max(newest, path.stat().st_mtime)
        except OSError:
            continue
    return newest


def sweep_uploads(root: str | Path | None = None, ttl_hours: float | None = None, now: float | None = None) -> list[Path]:
    """Remove upload session folders whose newest file is older than ``ttl_hours``; return them.

    Also removes the temporary files of uploads whose writer was killed mid-write.
    """
    root = Path(root) if root is not None else uploads_root()
    ttl = upload_ttl_hours() if ttl_hours is None else ttl_hours
    now = time.time() if now is None else now
    removed: list[Path] = []
    if not root.is_dir():
        return removed
    for folder in root.iterdir():
        try:
            if folder.is_dir():
                for stored in folder.iterdir():
                    if stored.is_dir():
                        sweep_temporary(stored, max_age_seconds=ttl * 3600, now=now)
            if not folder.is_dir() or now - _newest_mtime(folder) <= ttl * 3600:
                continue
        except OSError:
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    return removed


def is_upload_path(source: str | Path, root: str | Path | None = None) -> bool:
    """Whether ``source`` points into the uploads folder."""
    base = (Path(root) if root is not None else uploads_root()).expanduser().resolve()
    try:
        path = Path(str(source).strip()).expanduser().resolve()
    except (OSError, RuntimeError):
        return False
    return base in path.parents


def check_upload_exists(source: str | Path, root: str | Path | None = None) -> None:
    """Raise :class:`DataError` when ``source`` is an upload whose session has ended (its file is gone)."""
    if is_upload_path(source, root) and not Path(str(source).strip()).expanduser().exists():
        raise DataError(
            f"{Path(str(source)).name!r}: this uploaded file belonged to a session that ended; upload it again "
            "(Overview → Model and dataset → Upload a file). Uploads are removed when their session ends."
        )
