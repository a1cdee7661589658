"""
``request_timeout`` for awaited calls, at no cost per call.

A timer per call (``asyncio.timeout``) costs several times a whole breaker call, so
calls are not timed one by one. Instead each event loop gets one watcher, a callback
that runs every ``tick`` seconds (an eighth of the shortest ``request_timeout`` seen,
between 10 ms and 1 s). It walks the loop's tasks, finds the frames of the breaker's
async drivers among their awaits, and remembers when it first saw each. A call still
running ``request_timeout`` after it was first seen has its task cancelled; the driver
recognises that cancellation as its own, un-cancels the task, records a failure and
raises :class:`TimeoutError`. A call therefore never times out early and at most two
ticks late.

The watcher of a loop starts at the first general-path call on it (every breaker's
first call, and one call in 64, take that path), and stops with the loop.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from types import CodeType, FrameType

__all__ = ["claim", "register_drivers", "watch"]

MIN_TICK_S = 0.01
MAX_TICK_S = 1.0

_DRIVERS: set[CodeType] = set()  # the frames that run a protected call
_INNER: set[CodeType] = set()  # drivers other drivers may await (the general path)


def register_drivers(outer: list[CodeType], inner: list[CodeType]) -> None:
    """Tell the watcher which code objects run protected calls."""
    _DRIVERS.update(outer, inner)
    _INNER.update(inner)


class _Watch:
    """The watcher of one event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, tick: float) -> None:
        self.loop = loop
        self.tick = tick
        self.seen: dict[FrameType, float] = {}
        self.expired: dict[FrameType, float] = {}  # frame -> its request_timeout

    def scan(self) -> None:
        if self.loop.is_closed():
            return
        try:
            self._scan()
        finally:
            self.loop.call_later(self.tick, self.scan)

    def _scan(self) -> None:
        now = self.loop.time()
        seen: dict[FrameType, float] = {}
        for task in asyncio.all_tasks(self.loop):
            for frame, breaker in _protected_calls(task.get_coro()):
                timeout = breaker._settings.request_timeout  # noqa: SLF001
                if timeout is None:
                    continue
                first = seen[frame] = self.seen.get(frame, now)
                if now - first >= timeout and frame not in self.expired:
                    self.expired[frame] = timeout
                    task.cancel(f"cbcontrol: request_timeout of {breaker.name!r}")
        self.seen = seen
        for frame in list(self.expired):
            if frame not in seen:
                del self.expired[frame]


def _protected_calls(coro: Any) -> list[tuple[FrameType, Any]]:
    """The driver frames awaiting on this coroutine chain, each with its breaker."""
    found = []
    while coro is not None:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "ag_frame", None)
        if frame is None:
            break
        awaited = getattr(coro, "cr_await", None) or getattr(coro, "ag_await", None)
        if frame.f_code in _DRIVERS:
            inner = getattr(awaited, "cr_code", None)
            if inner not in _INNER:  # else the general path's frame records it
                local = frame.f_locals
                breaker = local.get("self", local.get("breaker"))
                if breaker is not None:
                    found.append((frame, breaker))
        coro = awaited
    return found


_WATCHES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Watch] = (
    weakref.WeakKeyDictionary()
)


def watch(timeout: float) -> None:
    """Make sure the running loop has a watcher ticking fast enough for ``timeout``."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # another event loop (trio): no watcher, no enforcement
        return
    tick = min(MAX_TICK_S, max(MIN_TICK_S, timeout / 8))
    current = _WATCHES.get(loop)
    if current is None:
        current = _WATCHES[loop] = _Watch(loop, tick)
        loop.call_later(tick, current.scan)
    elif tick < current.tick:
        current.tick = tick


def claim(frame: FrameType) -> float | None:
    """If the watcher cancelled the call running in ``frame``: its request_timeout."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # pragma: no cover - drivers run inside a loop
        return None
    current = _WATCHES.get(loop)
    if current is None:
        return None
    return current.expired.pop(frame, None)
