"""Out-of-memory handling shared by every batched loop: halve the token budget and retry.

:func:`halving_retry` runs ``run(budget)``; when the device runs out of memory it frees what it
can and tries again with half the budget, down to ``minimum``, then stops with an
:class:`~pruning_core.errors.OutOfMemory` message instead of a traceback. Any loop whose result
does not depend on its batch size can use it (attention statistics, incremental evaluation).
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from typing import TypeVar

import torch

from .errors import OutOfMemory

T = TypeVar("T")


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is an out-of-memory error of the device or of the host allocator."""
    return isinstance(exc, (torch.OutOfMemoryError, MemoryError)) or (isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower())


def release_memory(device: torch.device | None = None) -> None:
    """Give freed memory back: collect garbage and empty the CUDA cache when on a GPU."""
    gc.collect()
    if device is not None and device.type == "cuda":
        torch.cuda.empty_cache()


def halving_retry(
    run: Callable[[int], T], budget: int, minimum: int = 1, device: torch.device | None = None, what: str = "this computation"
) -> T:
    """``run(budget)``, retried with half the budget after each out-of-memory error, down to ``minimum``."""
    while True:
        try:
            return run(budget)
        except (torch.OutOfMemoryError, MemoryError, RuntimeError) as exc:
            if not is_out_of_memory(exc):
                raise
            release_memory(device)
            if budget // 2 < max(1, minimum):
                raise OutOfMemory(
                    f"The device ran out of memory during {what}, even with batches of {budget} tokens. "
                    "Use fewer rows or shorter texts, close other work on this machine, or use one with more memory."
                ) from None
            budget //= 2
