"""
One shared timer thread for every breaker in the process.

A breaker whose state listeners asked to hear timer-driven transitions on time
(open to half-open, an expired override, overdue probes) registers its next deadline
here, as Resilience4j's automatic transition does; a time window registers the end of
its current bucket, so that calls need not read the clock. There is one thread,
started on first use, never one per breaker; it holds breakers only weakly, and a
callback that raises is logged and the thread goes on.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["TIMERS", "Timers"]

logger = logging.getLogger("cbcontrol")


class Timers:
    """
    A heap of ``(when, callback)`` served by one daemon thread.

    Args:
        clock: The thread's monotonic clock (real time: deadlines are given as delays).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._cond = threading.Condition(threading.Lock())
        self._heap: list[tuple[float, int, Callable[[], Callable[[], object] | None]]]
        self._heap = []
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None

    def call_later(
        self, delay: float, ref: Callable[[], Callable[[], object] | None]
    ) -> None:
        """
        Call ``ref()()`` in about ``delay`` seconds on the timer thread.

        ``ref`` is a weak reference (e.g. :class:`weakref.WeakMethod`): a breaker that
        is gone by then is skipped.
        """
        when = self._clock() + max(0.0, delay)
        with self._cond:
            heapq.heappush(self._heap, (when, next(self._seq), ref))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="cbcontrol-timers", daemon=True
                )
                self._thread.start()
            if self._heap[0][2] is ref:
                self._cond.notify()

    def pending(self) -> int:
        """How many callbacks are waiting (for tests and status)."""
        with self._cond:
            return len(self._heap)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._heap or self._heap[0][0] > self._clock():
                    timeout = self._heap[0][0] - self._clock() if self._heap else None
                    # An override "until 9999-12-31" is a deadline wait() refuses
                    # (OverflowError): wake at the limit and look again instead.
                    if timeout is not None:
                        timeout = min(timeout, threading.TIMEOUT_MAX)
                    self._cond.wait(timeout)
                _, _, ref = heapq.heappop(self._heap)
            callback = ref()
            if callback is None:
                continue
            try:
                callback()
            except Exception:
                logger.exception("cbcontrol timer callback %r failed", callback)


TIMERS = Timers()
"""The process's timer thread (started on first use)."""
