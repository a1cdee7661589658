"""Test helpers; the public names are re-exported by ``cbcontrol.testing``."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import TYPE_CHECKING

from cbcontrol.config.sources._base import RawEntry, SourceSnapshot

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

    from cbcontrol._breaker import CircuitBreaker
    from cbcontrol._events import Event
    from cbcontrol.config.sources._base import Kind

__all__ = ["FakeClock", "InMemoryConfigSource", "capture_events"]


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


class InMemoryConfigSource:
    """
    A live config source held in memory: the fake of a file or etcd store.

    ``put()`` and ``delete()`` deliver a fresh snapshot to the running plane at once,
    synchronously, so a test needs no waiting::

        source = InMemoryConfigSource()
        plane = cbcontrol.connect(source=source)
        source.put("breakers", "payment", {"max_failures": 3})

    .. versionadded:: 0.1.0
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[tuple[Kind, str], RawEntry] = {}
        self._revision = 0
        self._error: str | None = None
        self._on_change: Callable[[SourceSnapshot], None] | None = None

    @property
    def name(self) -> str:
        """The display name used in provenance."""
        return "memory"

    def put(self, kind: Kind, name: str, data: Mapping[str, object]) -> None:
        """Store a document (``kind`` is ``"breakers"`` or ``"presets"``)."""
        with self._lock:
            self._revision += 1
            origin = f"memory:/{kind}/{name}@{self._revision}"
            self._entries[kind, name] = RawEntry(kind, name, dict(data), origin)
        self._deliver()

    def delete(self, kind: Kind, name: str) -> None:
        """Remove a document."""
        with self._lock:
            self._revision += 1
            self._entries.pop((kind, name), None)
        self._deliver()

    def fail(self, error: str | None) -> None:
        """Report a whole-source error (None clears it); documents are kept."""
        with self._lock:
            self._error = error
        self._deliver()

    def read(self) -> SourceSnapshot:
        """The current snapshot."""
        with self._lock:
            return SourceSnapshot(
                "memory", str(self._revision), dict(self._entries), self._error
            )

    def run(
        self, on_change: Callable[[SourceSnapshot], None], stop: threading.Event
    ) -> None:
        """Deliver changes until ``stop`` is set."""
        self._on_change = on_change
        self._deliver()  # catch up on what changed before the watch started
        try:
            stop.wait()
        finally:
            self._on_change = None

    def close(self) -> None:
        """Nothing to release."""

    def _deliver(self) -> None:
        on_change = self._on_change
        if on_change is not None:
            on_change(self.read())
