"""Which model sources a shared server may open.

``BHPVAS_MODEL_ROOTS``: folders (separated by the OS path separator) under which local models
may be opened; unset means any local folder. ``BHPVAS_ALLOW_HUB``: ``0``/``false`` forbids hub
ids. ``BHPVAS_DATA_ROOTS``: folders under which data files on the server may be read (uploads
and the bundled datasets are always allowed); unset means any file. The embedded demo is always
allowed; ``trust_remote_code`` is never enabled anyway.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .errors import DataError, ModelLoadError
from .settings import env_switch
from .sources import BUNDLED, DEMO_ALIASES, looks_like_path


@dataclass(frozen=True)
class SourcePolicy:
    model_roots: tuple[Path, ...] | None = None
    allow_hub: bool = True
    data_roots: tuple[Path, ...] | None = None

    @classmethod
    def from_env(cls) -> SourcePolicy:
        return cls(_roots("BHPVAS_MODEL_ROOTS"), env_switch("BHPVAS_ALLOW_HUB"), _roots("BHPVAS_DATA_ROOTS"))

    def check_data(self, source: str, always_allowed: tuple[Path, ...] = ()) -> None:
        """Raise :class:`DataError` if this server may not read the data file ``source``.

        Bundled dataset names and files under ``always_allowed`` (the upload folder) pass.
        """
        text = str(source).strip()
        if "\x00" in text:
            raise DataError("The data path contains a NUL byte, which no file name can hold; check the path.")
        if self.data_roots is None or text.lower() in BUNDLED:
            return
        resolved = Path(text).expanduser().resolve()
        if not _under(resolved, self.data_roots + tuple(r.resolve() for r in always_allowed)):
            allowed = ", ".join(str(r) for r in self.data_roots)
            raise DataError(
                f"This server only reads data files under: {allowed}, besides uploads. Upload the file instead, "
                f"or ask the administrator to add {resolved.parent} to BHPVAS_DATA_ROOTS."
            )

    def check(self, source: str) -> None:
        """Raise :class:`ModelLoadError` if this server may not open ``source``."""
        text = str(source).strip()
        if "\x00" in text:
            raise ModelLoadError("The model path contains a NUL byte, which no file name can hold; check the path.")
        if text.lower() in DEMO_ALIASES:
            return
        path = Path(text).expanduser()
        if path.exists() or looks_like_path(text):
            if self.model_roots is None:
                return
            resolved = path.resolve()
            if not _under(resolved, self.model_roots):
                allowed = ", ".join(str(r) for r in self.model_roots)
                raise ModelLoadError(
                    f"This server only opens model folders under: {allowed}. Ask its administrator to add {resolved.parent} to BHPVAS_MODEL_ROOTS."
                )
            return
        if not self.allow_hub:
            raise ModelLoadError(
                f"{text!r} looks like a hub id, and this server does not download models from the hub. Use `demo` or a model folder on the server."
            )


def _roots(variable: str) -> tuple[Path, ...] | None:
    value = os.environ.get(variable, "").strip()
    return tuple(Path(r).expanduser().resolve() for r in value.split(os.pathsep) if r.strip()) if value else None


def _under(path: Path, roots: tuple[Path, ...]) -> bool:
    return any(path == root or root in path.parents for root in roots)
