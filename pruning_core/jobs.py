"""A process-wide gate for heavy jobs (analyses, strategy curves, pruning reports).

On a shared server several sessions may ask for heavy work at once; running them all together
only makes each slower and can exhaust memory. :func:`heavy_job` lets at most
``BHPVAS_MAX_JOBS`` (default 1) run at a time; the others wait in arrival order (FIFO) and are told,
through a ``wait`` callback, how many jobs are ahead of them. A thread that already holds a slot
may nest heavy jobs without waiting (no self-deadlock). An exception in a job, or in the wait
callback, releases or gives up the place.

One waiting job per owner (a session): a job given an ``owner`` that already has a job waiting
takes that job's place in line, and the earlier one stops waiting with :class:`JobCancelled`
(a session that reruns or asks for something else never queues a pile of work; a job that is
already running is not affected). :meth:`JobGate.cancel` withdraws an owner's waiting job.
Heavy evaluations (not answered from the cache) go through the same gate: wrap them in
:func:`heavy_job` with the session as ``owner``.

Plain Python (no streamlit): the app turns the callback into a "Waiting for 1 other job…" message.
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager

from .errors import BhpvasError
from .settings import env_number

WaitFn = Callable[[int], None]
"""Called while a job waits, with the number of jobs ahead of it (running or queued earlier)."""

DEFAULT_MAX_JOBS = 1


class JobCancelled(BhpvasError):
    """A waiting job was withdrawn: cancelled by its owner, or replaced by the owner's newer job."""


def max_jobs_from_env() -> int:
    """``$BHPVAS_MAX_JOBS`` as a positive integer (default 1)."""
    return int(env_number("BHPVAS_MAX_JOBS", DEFAULT_MAX_JOBS, minimum=1, integer=True))


class JobGate:
    """At most ``limit`` jobs at once; waiting jobs start in the order they arrived."""

    def __init__(self, limit: int = DEFAULT_MAX_JOBS, poll: float = 0.5):
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self._limit = limit
        self.poll = poll
        self._cond = threading.Condition()
        self._queue: deque[int] = deque()
        self._running: dict[int, str] = {}
        self._tickets = itertools.count()
        self._held = threading.local()
        self._waiting_of: dict[Hashable, int] = {}
        self._withdrawn: dict[int, str] = {}

    @property
    def limit(self) -> int:
        return self._limit

    @limit.setter
    def limit(self, value: int) -> None:
        if value < 1:
            raise ValueError("limit must be at least 1")
        with self._cond:
            if value != self._limit:
                self._limit = value
                self._cond.notify_all()

    @property
    def running(self) -> int:
        with self._cond:
            return len(self._running)

    @property
    def waiting(self) -> int:
        with self._cond:
            return len(self._queue)

    def _ahead(self, ticket: int) -> int:
        return len(self._running) + self._queue.index(ticket)

    def _can_start(self, ticket: int) -> bool:
        return self._queue[0] == ticket and len(self._running) < self._limit

    def is_waiting(self, owner: Hashable) -> bool:
        """Whether ``owner`` has a job waiting in line."""
        with self._cond:
            return owner in self._waiting_of

    def cancel(self, owner: Hashable) -> bool:
        """Withdraw ``owner``'s waiting job (it raises :class:`JobCancelled`); False if none waits."""
        with self._cond:
            ticket = self._waiting_of.pop(owner, None)
            if ticket is None:
                return False
            self._queue.remove(ticket)
            self._withdrawn[ticket] = "Cancelled while waiting for its turn."
            self._cond.notify_all()
            return True

    def _enqueue(self, ticket: int, owner: Hashable | None) -> None:
        earlier = self._waiting_of.get(owner) if owner is not None else None
        if earlier is None:
            self._queue.append(ticket)
        else:
            # The newer request takes the earlier one's place in line.
            self._queue[self._queue.index(earlier)] = ticket
            self._withdrawn[earlier] = "Replaced by a newer request of the same session, which keeps this one's place in line."
        if owner is not None:
            self._waiting_of[owner] = ticket

    def _leave(self, ticket: int, owner: Hashable | None) -> None:
        if ticket in self._queue:
            self._queue.remove(ticket)
        if owner is not None and self._waiting_of.get(owner) == ticket:
            del self._waiting_of[owner]

    def _check_withdrawn(self, ticket: int) -> None:
        reason = self._withdrawn.pop(ticket, None)
        if reason is not None:
            raise JobCancelled(reason)

    @contextmanager
    def slot(self, name: str = "job", wait: WaitFn | None = None, owner: Hashable | None = None) -> Iterator[None]:
        """Hold one slot for the ``with`` block, waiting in line first if all slots are taken.

        ``wait(ahead)`` is called when the job has to wait and then every ``poll`` seconds while it
        does (so a caller can redraw a message, or raise to give up its place). ``owner`` (e.g. a
        session id): at most one waiting job per owner, see the module docstring.
        """
        depth = getattr(self._held, "depth", 0)
        if depth:
            self._held.depth = depth + 1
            try:
                yield
            finally:
                self._held.depth -= 1
            return
        ticket = next(self._tickets)
        with self._cond:
            self._enqueue(ticket, owner)
            try:
                while True:
                    self._check_withdrawn(ticket)
                    if self._can_start(ticket):
                        break
                    if wait is not None:
                        ahead = self._ahead(ticket)
                        self._cond.release()
                        try:
                            wait(ahead)
                        finally:
                            self._cond.acquire()
                        self._check_withdrawn(ticket)
                        if self._can_start(ticket):
                            break
                    self._cond.wait(self.poll)
            except BaseException:
                self._leave(ticket, owner)
                self._cond.notify_all()
                raise
            self._leave(ticket, owner)
            self._running[ticket] = name
            # Another slot may be free for the next in line too.
            self._cond.notify_all()
        self._held.depth = 1
        try:
            yield
        finally:
            self._held.depth = 0
            with self._cond:
                del self._running[ticket]
                self._cond.notify_all()


_GATE = JobGate()


def job_gate() -> JobGate:
    """The process-wide gate, its limit refreshed from ``BHPVAS_MAX_JOBS``."""
    _GATE.limit = max_jobs_from_env()
    return _GATE


@contextmanager
def heavy_job(name: str = "job", wait: WaitFn | None = None, owner: Hashable | None = None) -> Iterator[None]:
    """Run the ``with`` block as one heavy job of the process-wide gate (see :class:`JobGate`).

    ``owner`` (the session): a newer job of the same owner replaces its waiting one.
    """
    with job_gate().slot(name, wait, owner):
        yield


def cancel_waiting(owner: Hashable) -> bool:
    """Withdraw ``owner``'s waiting job on the process-wide gate; False if it has none waiting."""
    return _GATE.cancel(owner)
