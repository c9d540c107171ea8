"""Output folders (pruned checkpoints, pruning reports): written whole or not at all, one per run.

:func:`atomic_folder` lets a writer fill a temporary sibling folder and renames it into place
only when everything was written, so no reader ever sees a half-written folder and a failure (a
full disk, an exception, a kill) leaves what was there before. On a shared server every run gets
its own folder (:func:`new_run_folder`), so one user's run never overwrites another's;
:func:`folder_downloads` reads the files a user may download into memory, so the app can keep
them with the session; :func:`sweep_runs` removes run folders older than
``BHPVAS_PRUNED_TTL_HOURS`` (default 24) and then the oldest ones while all of them together take
more than ``BHPVAS_PRUNED_MAX_GB`` (default 5).
"""

from __future__ import annotations

import datetime as dt
import errno
import io
import os
import re
import secrets
import shutil
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .cache import default_cache_dir, sweep_temporary, temp_name
from .errors import OutputError
from .settings import env_number

MARKERS = ("report.json", "bhpvas_pruning.json")
"""Files that mark a folder as an earlier bhpvas output, which a new run may replace."""
DEFAULT_TTL_HOURS = 24.0
DEFAULT_MAX_GB = 5.0
_RUN_NAME = re.compile(r"^(\d{8}-\d{6}-[0-9a-f]{12}|[0-9a-f]{16})$")
"""Run folders of :func:`new_run_folder`, and the model-and-scheme folders of earlier versions."""


def runs_root() -> Path:
    """``<cache folder>/pruned``: where the app writes one folder per pruning run."""
    return default_cache_dir() / "pruned"


def new_run_folder(root: str | Path | None = None, sweep: bool = True) -> Path:
    """A fresh, not yet existing folder name under ``root`` (default :func:`runs_root`) for one run.

    With ``sweep``, old runs under ``root`` are removed first (:func:`sweep_runs`), so the folder
    stays bounded however many runs there are.
    """
    base = Path(root) if root is not None else runs_root()
    if sweep:
        sweep_runs(base)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    return base / f"{stamp}-{secrets.token_hex(6)}"


def check_target(target: Path) -> None:
    """Refuse an output folder that would overwrite something that is not an earlier bhpvas output."""
    if "\x00" in str(target):
        raise OutputError("The output path contains a NUL byte, which no file name can hold; choose another folder.")
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        raise OutputError(f"{target} already exists and is not a folder; give the name of a new folder for the output.")
    if target.is_dir():
        contents = [p.name for p in target.iterdir()]
        if contents and not any(name in contents for name in MARKERS):
            raise OutputError(
                f"{target} already holds other files ({', '.join(sorted(contents)[:3])}); choose a new folder, "
                "or empty this one. Only an earlier bhpvas output folder is replaced."
            )


def _failure(target: Path, exc: OSError) -> OutputError:
    reason = "the disk is full" if exc.errno == errno.ENOSPC else (exc.strerror or str(exc))
    kept = "what was there before is kept" if target.exists() else "nothing was written"
    return OutputError(f"Could not write {target}: {reason}. The output was not saved ({kept}); free space or choose another folder.")


@contextmanager
def atomic_folder(target: str | Path) -> Iterator[Path]:
    """Yield a temporary folder beside ``target``; on success it replaces ``target`` in one rename.

    On any failure the temporary folder is removed and ``target`` is left as it was; an
    :class:`OSError` (e.g. a full disk) becomes an :class:`OutputError` that says what happened.
    Temporary folders of processes that died are removed first.
    """
    target = Path(target).expanduser()
    check_target(target)
    parent = target.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        sweep_temporary(parent, max_age_seconds=float("inf"))
        staging = parent / temp_name()
        staging.mkdir()
    except OSError as exc:
        raise _failure(target, exc) from None
    try:
        yield staging
        if target.is_dir():
            old = parent / temp_name("-old")
            os.rename(target, old)
            try:
                os.rename(staging, target)
            except OSError:
                os.rename(old, target)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(staging, target)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise _failure(target, exc) from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def zip_folder(folder: str | Path) -> bytes:
    """The folder as a zip archive (stored, not compressed: weights do not compress)."""
    folder = Path(folder)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, f"{folder.name}/{path.relative_to(folder)}")
    return buffer.getvalue()


def folder_downloads(folder: str | Path) -> dict[str, bytes]:
    """The downloadable files of a pruning report folder, read now: ``model.zip`` (the pruned
    checkpoint), ``report.html`` and ``report.json``; missing ones are left out."""
    folder = Path(folder)
    files: dict[str, bytes] = {}
    if (folder / "model").is_dir():
        files["model.zip"] = zip_folder(folder / "model")
    for name in ("report.html", "report.json"):
        if (folder / name).is_file():
            files[name] = (folder / name).read_bytes()
    return files


def pruned_ttl_hours() -> float:
    """``$BHPVAS_PRUNED_TTL_HOURS`` (default 24): age after which a run folder is swept."""
    return env_number("BHPVAS_PRUNED_TTL_HOURS", DEFAULT_TTL_HOURS, minimum=0)


def pruned_max_bytes() -> int:
    """``$BHPVAS_PRUNED_MAX_GB`` (default 5): the most all run folders together may take."""
    return int(env_number("BHPVAS_PRUNED_MAX_GB", DEFAULT_MAX_GB, minimum=0) * 2**30)


def _folder_size(folder: Path) -> int:
    total = 0
    for path in folder.rglob("*"):
        try:
            total += path.lstat().st_size
        except OSError:
            continue
    return total


def sweep_runs(
    root: str | Path | None = None, ttl_hours: float | None = None, max_bytes: int | None = None, now: float | None = None
) -> list[Path]:
    """Remove run folders (named by :func:`new_run_folder`) older than ``ttl_hours``, then the
    oldest while the rest take more than ``max_bytes``; also temporary folders of dead writers.

    Returns the folders removed. Only names this module creates are touched.
    """
    base = Path(root) if root is not None else runs_root()
    ttl = pruned_ttl_hours() if ttl_hours is None else ttl_hours
    limit = pruned_max_bytes() if max_bytes is None else max_bytes
    now = time.time() if now is None else now
    removed = sweep_temporary(base)
    if not base.is_dir():
        return removed
    runs = []
    for folder in base.iterdir():
        if not _RUN_NAME.match(folder.name) or not folder.is_dir() or folder.is_symlink():
            continue
        try:
            runs.append((folder.stat().st_mtime, folder, _folder_size(folder)))
        except OSError:
            continue
    runs.sort(key=lambda r: r[0])
    total = sum(size for _, _, size in runs)
    for mtime, folder, size in runs:
        if now - mtime > ttl * 3600 or total > limit:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
            total -= size
    return removed
