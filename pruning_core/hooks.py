"""Hooks on a model shared between concurrent callers (threads, Streamlit sessions).

One set of hooks per model is installed while any caller needs it (reference-counted) and removed
when the last one leaves, so the model ends exactly as it was. What a hook does is decided per
caller: each caller puts its own state into a ``ContextVar`` keyed by the model, and a hook acts
only on the state of the caller whose forward pass is running. Threads start with an empty
context, so no caller ever sees another's state.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from torch import nn

HOOK_MARK = "_bhpvas_hook"
"""Attribute set on every hook function installed through :class:`SharedHooks`."""


def mark(hook: Callable) -> Callable:
    """Mark ``hook`` as a bhpvas hook (so :func:`strip_hooks` can remove it from a copied model)."""
    setattr(hook, HOOK_MARK, True)
    return hook


def strip_hooks(model: nn.Module) -> None:
    """Remove bhpvas hooks from a copy of a model (``deepcopy`` copies hooks along with modules)."""
    for module in model.modules():
        for hooks in (module._forward_pre_hooks, module._forward_hooks):
            for key, hook in list(hooks.items()):
                if getattr(hook, HOOK_MARK, False):
                    del hooks[key]


class SharedHooks:
    """Reference-counted installation of one kind of hook per model."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._installed: dict[int, tuple[list, int]] = {}

    @contextmanager
    def installed(self, model: nn.Module, install: Callable[[], list]) -> Iterator[None]:
        """Keep the hooks that ``install()`` registers (it returns their handles) on ``model`` for this block."""
        key = id(model)
        with self._lock:
            handles, users = self._installed.get(key, ([], 0))
            if users == 0:
                handles = install()
            self._installed[key] = (handles, users + 1)
        try:
            yield
        finally:
            with self._lock:
                handles, users = self._installed[key]
                if users == 1:
                    for handle in handles:
                        handle.remove()
                    del self._installed[key]
                else:
                    self._installed[key] = (handles, users - 1)

    def users(self, model: nn.Module) -> int:
        """How many blocks currently hold the hooks of ``model``."""
        with self._lock:
            return self._installed.get(id(model), ([], 0))[1]


@contextmanager
def caller_state(var: ContextVar[dict[int, Any] | None], model: nn.Module, value: Any) -> Iterator[None]:
    """Set this caller's state for ``model`` in ``var`` for the block (other models' states stay)."""
    current = var.get() or {}
    token = var.set({**current, id(model): value})
    try:
        yield
    finally:
        var.reset(token)


def state_of(var: ContextVar[dict[int, Any] | None], model_id: int) -> Any:
    """The running caller's state for the model with ``id`` ``model_id`` (None if it set none)."""
    states = var.get()
    return states.get(model_id) if states else None
