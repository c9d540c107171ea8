"""Numbers and on/off switches read from environment variables, with one clear message for a bad number."""

from __future__ import annotations

import os

from .errors import BhpvasError


def env_number(name: str, default: float, minimum: float = 0, integer: bool = False) -> float:
    """``$name`` as a number of at least ``minimum`` (a whole number when ``integer``), else ``default``."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    kind = "a whole number" if integer else "a number"
    try:
        value = int(text) if integer else float(text)
    except ValueError:
        raise BhpvasError(f"{name}={text!r} must be {kind} of at least {minimum:g}.") from None
    if value < minimum:
        raise BhpvasError(f"{name}={text!r} must be {kind} of at least {minimum:g}.")
    return value


def env_switch(name: str) -> bool:
    """``$name`` as an on/off switch, on unless set to ``0``, ``false``, ``no`` or ``off``."""
    return os.environ.get(name, "1").strip().lower() not in ("0", "false", "no", "off")
