"""A breaker's counters and its frozen snapshot."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING

from cbcontrol._fallback import FALLBACK_SOURCES
from cbcontrol._recording import LATENCY_SAMPLES, BreakerCore, peek
from cbcontrol._state import CLOSED, FORCED_CLOSED

if TYPE_CHECKING:
    from collections.abc import Mapping

    from cbcontrol._events import State

__all__ = ["BreakerSnapshot", "Metrics"]

_NO_FALLBACKS: Mapping[str, int] = MappingProxyType(dict.fromkeys(FALLBACK_SOURCES, 0))
_NO_TRANSITIONS: Mapping[tuple[str, str], int] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class BreakerSnapshot:
    """
    A consistent, frozen view of one breaker's state and metrics.

    Counters are totals since creation or the last :meth:`CircuitBreaker.reset`;
    rates are over the sliding window, in percent. Times are readings of the
    breaker's clock; response times come from one call in 64 (every slow call).

    Attributes:
        fallbacks_by_source: Rejected calls each part of the fallback chain served,
            ``{"cache": n, "static": n, "alternative": n}`` (they sum to
            ``fallbacks``).
        cache_hits: Rejected calls the response cache answered.
        cache_misses: Rejected calls it had no fresh answer for.
        transitions: ``(from_state, to_state) -> count`` of every state change since
            the breaker was created (a reset does not clear it).

    .. versionadded:: 0.1.0
    .. versionchanged:: 0.2.0
       ``fallbacks_by_source``, ``cache_hits``, ``cache_misses`` and ``transitions``.
    """

    name: str
    state: State
    calls: int
    successes: int
    failures: int
    ignored: int
    rejections: int
    fallbacks: int
    slow_calls: int
    window_calls: int
    failure_rate: float | None
    slow_call_rate: float | None
    consecutive_failures: int
    times_opened: int
    last_state_change: float
    retry_after_s: float | None
    avg_response_time_s: float | None
    p99_response_time_s: float | None
    override_reason: str | None
    fallbacks_by_source: Mapping[str, int] = field(
        default_factory=lambda: _NO_FALLBACKS
    )
    cache_hits: int = 0
    cache_misses: int = 0
    transitions: Mapping[tuple[str, str], int] = field(
        default_factory=lambda: _NO_TRANSITIONS
    )


class Metrics(BreakerCore):
    """Counters and snapshots (a mixin of :class:`~cbcontrol.CircuitBreaker`)."""

    __slots__ = ()

    def snapshot(self) -> BreakerSnapshot:
        """A frozen, consistent view of state and metrics."""
        with self._lock:
            now = self.clock()
            m = self._machine
            ticket = peek(self._tickets)
            self._window.roll(now, ticket)
            calls, fails, slow = self._window.stats(ticket)
            count = min(self._latency_count, LATENCY_SAMPLES)
            samples = sorted(self._latency[:count]) if self._latency else []
            failures, ignored = self._failures, self._ignored
            rejections, slow_total = peek(self._rejected), self._slow_total
            # Successes do not touch the run (they take no lock): it is current only
            # if the last recorded call was its last failure.
            consecutive = self._consecutive if self._last_fail == ticket - 1 else 0
            state = m.state_at(now)
            retry = None if state in (CLOSED, FORCED_CLOSED) else m.retry_after(now)
            since, times_opened, reason = (
                m.state_since,
                m.times_opened,
                m.override_reason,
            )
            hits, misses = self._cache_hits, self._cache_misses
            counts = self._fallbacks  # counted lock-free; the cache's are its hits
            if counts is None and not hits:
                by_source = _NO_FALLBACKS
            else:
                found = {
                    source: 0 if counts is None else peek(counts[source])
                    for source in FALLBACK_SOURCES
                }
                found["cache"] = hits
                by_source = MappingProxyType(found)
            transitions = (
                _NO_TRANSITIONS
                if self._transitions is None
                else MappingProxyType(dict(self._transitions))
            )
        return BreakerSnapshot(
            name=self.name,
            state=state,
            calls=ticket + ignored,
            successes=ticket - failures,
            failures=failures,
            ignored=ignored,
            rejections=rejections,
            fallbacks=sum(by_source.values()),
            slow_calls=slow_total,
            window_calls=calls,
            failure_rate=fails * 100.0 / calls if calls else None,
            slow_call_rate=slow * 100.0 / calls if calls else None,
            consecutive_failures=consecutive,
            times_opened=times_opened,
            last_state_change=since,
            retry_after_s=retry,
            avg_response_time_s=sum(samples) / count if count else None,
            p99_response_time_s=samples[min(count - 1, int(count * 0.99))]
            if count
            else None,
            override_reason=reason,
            fallbacks_by_source=by_source,
            cache_hits=hits,
            cache_misses=misses,
            transitions=transitions,
        )

    def _zero_counters(self) -> None:
        self._tickets = itertools.count()
        self._failures = 0
        self._ignored = 0
        self._rejected = itertools.count()
        self._fallbacks = None
        self._cache_hits = 0
        self._cache_misses = 0
        self._slow_total = 0
        self._consecutive = 0
        self._last_fail = -2
        self._latency_count = 0
