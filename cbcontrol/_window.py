"""
Sliding windows over call outcomes, O(1) per call and allocation-free.

Every recorded call (success or failure) takes a *ticket*: the next value of an
``itertools.count`` owned by the breaker. ``next()`` on it is a single C call that the
GIL makes atomic, so the hot path (a success in the closed state) records itself with
that one call and no lock. Windows therefore never see successes; they keep only the
tickets of failures and slow calls (taken under the breaker's lock), and derive "how
many calls" from ticket arithmetic:

* count window of N calls: the window is the tickets ``[now - N, now)``; its failures
  are the failure tickets still in that range, kept in a preallocated ring;
* time window of N seconds: one bucket per second records the ticket at which that
  second began and the failures and slow calls in it; the calls in the window are
  ``ticket_now - first_ticket_of_oldest_bucket``. The breaker calls :meth:`roll` when
  the clock passes :attr:`TimeWindow.roll_at`, at most once a second.

``ticket_now`` is always "the next ticket to be issued", i.e. the number of calls
recorded so far.
"""

from __future__ import annotations

import math
from typing import Final

__all__ = ["CountWindow", "TimeWindow", "Window", "WindowStats"]

WindowStats = tuple[int, int, int]
"""``(calls, failures, slow_calls)`` in the window."""


class _TicketRing:
    """A bounded FIFO of increasing tickets on a preallocated list."""

    __slots__ = ("_buf", "_head", "_len", "_size")

    def __init__(self, size: int) -> None:
        self._buf: list[int] = []  # allocated at the first push: healthy costs nothing
        self._size = size
        self._head = 0
        self._len = 0

    def __len__(self) -> int:
        return self._len

    def push(self, ticket: int) -> None:
        """Append a ticket; the caller has pruned, so there is room."""
        if not self._buf:
            self._buf = [0] * self._size
        self._buf[(self._head + self._len) % self._size] = ticket
        self._len += 1

    def prune(self, oldest: int) -> int:
        """Drop tickets below ``oldest`` and return how many remain."""
        buf, size = self._buf, self._size
        while self._len and buf[self._head] < oldest:
            self._head = (self._head + 1) % size
            self._len -= 1
        return self._len

    def tickets(self) -> list[int]:
        """The tickets, oldest first (for rebuilding a window)."""
        return [self._buf[(self._head + i) % self._size] for i in range(self._len)]


class CountWindow:
    """The last ``size`` recorded calls."""

    __slots__ = ("_fails", "_slow", "size", "start")

    kind: Final = "count"
    roll_at: Final = math.inf

    def __init__(self, size: int, ticket_now: int) -> None:
        self.size = size
        self.start = ticket_now
        self._fails = _TicketRing(size)
        self._slow = _TicketRing(size)

    def roll(self, now: float, ticket_now: int) -> None:
        """Count windows do not depend on time."""

    def add(self, ticket: int, *, failed: bool, slow: bool, now: float) -> None:  # noqa: ARG002
        """Record a failed and/or slow call with its ticket (``now`` is unused)."""
        oldest = ticket + 1 - self.size
        if failed:
            self._fails.prune(oldest)
            self._fails.push(ticket)
        if slow:
            self._slow.prune(oldest)
            self._slow.push(ticket)

    def stats(self, ticket_now: int) -> WindowStats:
        """Calls, failures and slow calls in the window."""
        oldest = ticket_now - self.size
        calls = min(ticket_now - self.start, self.size)
        return calls, self._fails.prune(oldest), self._slow.prune(oldest)

    def reset(self, ticket_now: int, now: float) -> None:  # noqa: ARG002 - same API
        """Forget everything: the window starts empty at ``ticket_now``."""
        self.start = ticket_now
        self._fails.prune(ticket_now)
        self._slow.prune(ticket_now)

    def resized(self, size: int, ticket_now: int) -> CountWindow:
        """A window of another size keeping the calls that still fit."""
        # Growing cannot invent history: only the last `self.size` calls are known.
        new = CountWindow(size, max(self.start, ticket_now - min(size, self.size)))
        for ring, target in ((self._fails, new._fails), (self._slow, new._slow)):
            for t in ring.tickets():
                if t >= new.start:
                    target.push(t)
        return new


class TimeWindow:
    """The calls of the last ``size`` whole seconds, in one-second buckets."""

    __slots__ = (
        "_fails",
        "_first",
        "_second",
        "_slow",
        "fails",
        "roll_at",
        "size",
        "slow",
    )

    kind: Final = "time"
    _first: list[int]
    _fails: list[int]
    _slow: list[int]
    fails: int
    slow: int
    _second: int
    roll_at: float

    def __init__(self, size: int, ticket_now: int, now: float) -> None:
        self.size = size
        self.reset(ticket_now, now)

    def roll(self, now: float, ticket_now: int) -> None:
        """Advance to the current second, emptying the buckets that fell out."""
        second = math.floor(now)
        if second <= self._second:
            return
        size = self.size
        # Beyond `size` seconds every bucket is stale; never loop more than `size`.
        first = max(self._second + 1, second - size + 1)
        for s in range(first, second + 1):
            i = s % size
            self.fails -= self._fails[i]
            self.slow -= self._slow[i]
            self._fails[i] = 0
            self._slow[i] = 0
            self._first[i] = ticket_now
        self._second = second
        self.roll_at = float(second + 1)

    def add(self, ticket: int, *, failed: bool, slow: bool, now: float) -> None:
        """Record a failed and/or slow call in the current second's bucket."""
        self.roll(now, ticket)
        i = self._second % self.size
        if failed:
            self._fails[i] += 1
            self.fails += 1
        if slow:
            self._slow[i] += 1
            self.slow += 1

    def stats(self, ticket_now: int) -> WindowStats:
        """Calls, failures and slow calls in the window (roll it first)."""
        oldest = (self._second + 1) % self.size
        return ticket_now - self._first[oldest], self.fails, self.slow

    def reset(self, ticket_now: int, now: float) -> None:
        """Forget everything: the window starts empty now."""
        size = self.size
        self._first = [ticket_now] * size  # ticket at which each bucket's second began
        self._fails = [0] * size
        self._slow = [0] * size
        self.fails = 0
        self.slow = 0
        self._second = math.floor(now)
        self.roll_at = float(self._second + 1)

    def resized(self, size: int, ticket_now: int, now: float) -> TimeWindow:
        """A window of another length keeping the seconds that still fit."""
        self.roll(now, ticket_now)
        new = TimeWindow(size, ticket_now, now)
        keep = min(size, self.size)
        for back in range(keep):
            s = self._second - back
            i, j = s % self.size, s % size
            new._first[j] = self._first[i]
            new._fails[j] = self._fails[i]
            new._slow[j] = self._slow[i]
            new.fails += self._fails[i]
            new.slow += self._slow[i]
        if keep < size:
            # Seconds before the kept ones are unknown: start them at the oldest kept.
            oldest_kept = self._first[(self._second - keep + 1) % self.size]
            for back in range(keep, size):
                new._first[(self._second - back) % size] = oldest_kept
        return new


Window = CountWindow | TimeWindow
