"""What a user's model string names: the embedded demo, a local folder, or a hub id.

Kept apart from :mod:`pruning_core.loading` so that the server's source policy
(:mod:`pruning_core.policy`) can classify a source without loading anything.
"""

from __future__ import annotations

import os

DEMO_ALIASES = ("demo", "bhpvas-demo")


def looks_like_path(text: str) -> bool:
    """Whether ``text`` reads as a local path rather than a hub id (``./x``, ``/x``, ``~/x``, ``a/b/c``).

    A hub id has at most one slash (``owner/name``); a folder that exists counts as local anyway.
    """
    return text.startswith((".", "/", "~")) or os.sep in text.strip("/").split("/", 1)[-1] or text.count("/") > 1
