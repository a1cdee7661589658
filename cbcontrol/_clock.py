"""Time as the breaker sees it: an injected monotonic clock."""

from __future__ import annotations

import time
from typing import Protocol

__all__ = ["REAL_CLOCKS", "Clock", "monotonic"]


class Clock(Protocol):
    """
    A monotonic clock: ``clock()`` returns seconds as a float.

    The breaker reads time only through its clock, so tests drive it with
    :class:`cbcontrol.testing.FakeClock` and never sleep.

    .. versionadded:: 0.1.0
    """

    def __call__(self) -> float: ...


monotonic: Clock = time.perf_counter
"""The default clock: monotonic, with the best resolution the platform has."""

REAL_CLOCKS: tuple[Clock, ...] = (time.perf_counter, time.monotonic)
"""Clocks known to move with real time, so the timer thread can wait for them."""
