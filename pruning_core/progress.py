"""Progress reporting without UI dependencies: long functions take a ``ProgressFn`` callback."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol


class ProgressFn(Protocol):
    def __call__(self, fraction: float, message: str) -> None: ...


def no_progress(fraction: float, message: str) -> None:
    """Default callback: ignore progress."""


def scaled(progress: ProgressFn | None, start: float, end: float) -> ProgressFn:
    """Map a sub-task's 0..1 progress into ``start..end`` of the parent's progress."""
    parent = progress or no_progress

    def report(fraction: float, message: str) -> None:
        parent(start + (end - start) * min(max(fraction, 0.0), 1.0), message)

    return report


def throttled(progress: ProgressFn, interval: float, clock: Callable[[], float] = time.monotonic) -> ProgressFn:
    """``progress`` called for the first report, then at most once per ``interval`` seconds, and
    always for a report of completion (fraction >= 1): for callbacks whose every call costs
    something, such as a redrawn progress bar."""
    last: float | None = None

    def report(fraction: float, message: str) -> None:
        nonlocal last
        now = clock()
        if last is not None and fraction < 1.0 and now - last < interval:
            return
        last = now
        progress(fraction, message)

    return report


def tqdm_progress(description: str, disable: bool = False) -> tuple[ProgressFn, Callable[[], None]]:
    """A callback drawing a tqdm bar (for the CLI) and a function that closes the bar."""
    from tqdm.auto import tqdm

    bar = tqdm(total=1000, desc=description, disable=disable, bar_format="{l_bar}{bar}| {elapsed}<{remaining} {postfix}")

    def report(fraction: float, message: str) -> None:
        bar.n = int(1000 * min(max(fraction, 0.0), 1.0))
        bar.set_postfix_str(message[:60], refresh=False)
        bar.refresh()

    return report, bar.close
