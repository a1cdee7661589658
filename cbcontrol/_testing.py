"""Test helpers; the public names are re-exported by ``cbcontrol.testing``."""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

    from cbcontrol._breaker import CircuitBreaker
    from cbcontrol._events import Event

__all__ = ["FakeClock", "capture_events"]


class FakeClock:
    """
    A clock that moves only when told to; pass it as ``CircuitBreaker(clock=...)``.

    Args:
        start: The initial reading, in seconds.

    .. versionadded:: 0.1.0
    """

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        """Move the clock forward by ``seconds`` and return the new reading."""
        if seconds < 0:
            msg = f"a monotonic clock cannot go back, got advance({seconds!r})"
            raise ValueError(msg)
        self.now += seconds
        return self.now

    def sleep(self, seconds: float) -> None:
        """A ``sleep`` that advances the clock instead of waiting."""
        self.advance(seconds)


@contextmanager
def capture_events(
    breaker: CircuitBreaker, *, calls: bool = False
) -> Iterator[list[Event]]:
    """
    Collect the events ``breaker`` emits inside the ``with`` block.

    Args:
        breaker: The breaker to listen to.
        calls: Also capture one :class:`~cbcontrol.CallRecorded` per call.

    .. versionadded:: 0.1.0
    """
    events: list[Event] = []
    unsubscribe = [breaker.on_state_change(events.append)]
    if calls:
        unsubscribe.append(breaker.on_call(events.append))
    try:
        yield events
    finally:
        for undo in unsubscribe:
            undo()
