"""Which model sources a shared server may open.

``BHPVAS_MODEL_ROOTS``: folders (separated by the OS path separator) under which local models
may be opened; unset means any local folder. ``BHPVAS_ALLOW_HUB``: ``0``/``false`` forbids hub
ids. The embedded demo is always allowed; ``trust_remote_code`` is never enabled anyway.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .errors import ModelLoadError
from .loading import DEMO_ALIASES, _looks_like_path


@dataclass(frozen=True)
class SourcePolicy:
    model_roots: tuple[Path, ...] | None = None
    allow_hub: bool = True

    @classmethod
    def from_env(cls) -> SourcePolicy:
        roots = os.environ.get("BHPVAS_MODEL_ROOTS", "").strip()
        allow = os.environ.get("BHPVAS_ALLOW_HUB", "1").strip().lower() not in ("0", "false", "no", "off")
        parsed = tuple(Path(r).expanduser().resolve() for r in roots.split(os.pathsep) if r.strip()) if roots else None
        return cls(parsed, allow)

    def check(self, source: str) -> None:
        """Raise :class:`ModelLoadError` if this server may not open ``source``."""
        text = str(source).strip()
        if text.lower() in DEMO_ALIASES:
            return
        path = Path(text).expanduser()
        if path.exists() or _looks_like_path(text):
            if self.model_roots is None:
                return
            resolved = path.resolve()
            if not any(resolved == root or root in resolved.parents for root in self.model_roots):
                allowed = ", ".join(str(r) for r in self.model_roots)
                raise ModelLoadError(
                    f"This server only opens model folders under: {allowed}. Ask its administrator to add {resolved.parent} to BHPVAS_MODEL_ROOTS."
                )
            return
        if not self.allow_hub:
            raise ModelLoadError(
                f"{text!r} looks like a hub id, and this server does not download models from the hub. Use `demo` or a model folder on the server."
            )
