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
* time window of N seconds: at most 16 buckets of ``ceil(N / 16)`` seconds each
  (one second each up to 16 s), so memory is bounded whatever N is; each records the
  ticket at which its span began and the failures and slow calls in it; the calls in
  the window are ``ticket_now - first_ticket_of_oldest_bucket``. The window therefore
  covers the last N seconds rounded to whole buckets. The breaker calls
  :meth:`roll` at its first call after :attr:`TimeWindow.roll_at` (told by the timer
  thread, or by reading an injected clock), at most once a bucket.

``ticket_now`` is always "the next ticket to be issued", i.e. the number of calls
recorded so far.
"""

from __future__ import annotations

import math
from array import array
from typing import Final

__all__ = ["MAX_BUCKETS", "CountWindow", "TimeWindow", "Window", "WindowStats"]

MAX_BUCKETS: Final = 16
"""A time window never holds more buckets than this, whatever its length."""

WindowStats = tuple[int, int, int]
"""``(calls, failures, slow_calls)`` in the window."""


class _TicketRing:
    """A bounded FIFO of increasing tickets on a preallocated list."""

    __slots__ = ("_buf", "_head", "_len", "_size")

    def __init__(self, size: int) -> None:
        self._buf: array[int] = array("q")  # allocated at the first push
        self._size = size
        self._head = 0
        self._len = 0

    def __len__(self) -> int:
        return self._len

    def push(self, ticket: int) -> None:
        """Append a ticket; the caller has pruned, so there is room."""
        if not self._buf:
            self._buf = array("q", bytes(8 * self._size))
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
    """The calls of the last ``size`` seconds, in at most ``MAX_BUCKETS`` buckets."""

    __slots__ = (
        "_buckets",
        "_slot",
        "count",
        "fails",
        "roll_at",
        "size",
        "slow",
        "width",
    )

    kind: Final = "time"
    _buckets: array[int]  # per bucket: first ticket, failures, slow calls
    _slot: int  # the current bucket's number: floor(now / width)
    fails: int
    slow: int
    roll_at: float

    def __init__(self, size: int, ticket_now: int, now: float) -> None:
        self.size = size
        self.width = -(-size // MAX_BUCKETS)  # seconds per bucket
        self.count = -(-size // self.width)  # buckets
        self.reset(ticket_now, now)

    def roll(self, now: float, ticket_now: int) -> None:
        """Advance to the current bucket, emptying the buckets that fell out."""
        slot = math.floor(now / self.width)
        if slot <= self._slot:
            return
        count, b = self.count, self._buckets
        # Beyond `count` buckets every one is stale; never loop more than `count`.
        for s in range(max(self._slot + 1, slot - count + 1), slot + 1):
            i = s % count * 3
            self.fails -= b[i + 1]
            self.slow -= b[i + 2]
            b[i] = ticket_now
            b[i + 1] = b[i + 2] = 0
        self._slot = slot
        self.roll_at = float((slot + 1) * self.width)

    def add(self, ticket: int, *, failed: bool, slow: bool, now: float) -> None:
        """Record a failed and/or slow call in the current bucket."""
        self.roll(now, ticket)
        i = self._slot % self.count * 3
        if failed:
            self._buckets[i + 1] += 1
            self.fails += 1
        if slow:
            self._buckets[i + 2] += 1
            self.slow += 1

    def stats(self, ticket_now: int) -> WindowStats:
        """Calls, failures and slow calls in the window (roll it first)."""
        oldest = (self._slot + 1) % self.count * 3
        return ticket_now - self._buckets[oldest], self.fails, self.slow

    def reset(self, ticket_now: int, now: float) -> None:
        """Forget everything: the window starts empty now."""
        self._buckets = array("q", (ticket_now, 0, 0)) * self.count
        self.fails = 0
        self.slow = 0
        self._slot = math.floor(now / self.width)
        self.roll_at = float((self._slot + 1) * self.width)

    def resized(self, size: int, ticket_now: int, now: float) -> TimeWindow:
        """A window of another length keeping the buckets that still fit."""
        self.roll(now, ticket_now)
        new = TimeWindow(size, ticket_now, now)
        merged: dict[int, list[int]] = {}
        oldest_new = new._slot - new.count + 1
        for s in range(self._slot - self.count + 1, self._slot + 1):
            target = s * self.width // new.width
            if target < oldest_new:
                continue
            i = s % self.count * 3
            first, fails, slow = self._buckets[i : i + 3]
            into = merged.setdefault(target, [first, 0, 0])
            into[0] = min(into[0], first)
            into[1] += fails
            into[2] += slow
        # A bucket no old one maps to holds no known call: it starts where the next
        # known one does (the calls in it were counted in an older bucket).
        next_first = ticket_now
        for s in range(new._slot, oldest_new - 1, -1):
            i = s % new.count * 3
            first, fails, slow = merged.get(s, (next_first, 0, 0))
            new._buckets[i : i + 3] = array("q", (first, fails, slow))
            new.fails += fails
            new.slow += slow
            next_first = first
        return new


Window = CountWindow | TimeWindow
