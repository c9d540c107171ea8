"""What a user's source string names: the embedded demo or bundled data, a local path, or a hub id.

Kept apart from :mod:`pruning_core.loading` so that the server's source policy
(:mod:`pruning_core.policy`) can classify a source without loading anything.
"""

from __future__ import annotations

import os
from pathlib import Path

DEMO_ALIASES = ("demo", "bhpvas-demo")
ASSETS = Path(__file__).resolve().parent / "assets"
SST2_DIR = ASSETS / "sst2"
BUNDLED = {"sst2": SST2_DIR / "dev.tsv", "sst2:dev": SST2_DIR / "dev.tsv", "sst2:train": SST2_DIR / "train.tsv"}
"""Bundled dataset names and their files (always allowed, whatever the data roots)."""


def looks_like_path(text: str) -> bool:
    """Whether ``text`` reads as a local path rather than a hub id (``./x``, ``/x``, ``~/x``, ``a/b/c``).

    A hub id has at most one slash (``owner/name``); a folder that exists counts as local anyway.
    """
    return text.startswith((".", "/", "~")) or os.sep in text.strip("/").split("/", 1)[-1] or text.count("/") > 1
