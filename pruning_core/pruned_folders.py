"""Where the app keeps a pruned checkpoint and its report, and the zip a user downloads.

One folder per model and scheme under the result cache (``<cache>/pruned/<digest>``), so pruning
the same scheme twice reuses the folder name.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

from .cache import default_cache_dir


def pruned_folder(model_fingerprint: str, scheme_key: str, root: Path | None = None) -> Path:
    """The folder for the pruned copy of a model (by fingerprint) under a scheme (by key)."""
    digest = hashlib.sha256(f"{model_fingerprint}:{scheme_key}".encode()).hexdigest()[:16]
    return (root or default_cache_dir()) / "pruned" / digest


def zip_folder(folder: Path) -> bytes:
    """Every file under ``folder`` in an uncompressed zip, inside a top folder of the same name."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, f"{folder.name}/{path.relative_to(folder)}")
    return buffer.getvalue()
