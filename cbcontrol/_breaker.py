"""
The breaker: construction, configuration, operator controls and listeners.

The parts live by responsibility: admission and recording in ``_recording.py``,
counters and snapshots in ``_metrics.py``, the entry points (``call``, ``acall``,
decorators, ``with``) in ``_drivers.py``, the fallback chain in ``_fallback.py``.
Decisions live in ``_state.py`` (the machine), ``_window.py`` and ``_policy.py``.
The lock is a short critical section that never awaits and is never held across the
protected call.
"""

from __future__ import annotations

import contextvars
import math
import random
import threading
from typing import TYPE_CHECKING, Any

from cbcontrol._clock import Clock, monotonic
from cbcontrol._drivers import Drivers, is_async_callable
from cbcontrol._fallback import NO_VALUE, FallbackChain, result_origin
from cbcontrol._metrics import BreakerSnapshot, Metrics
from cbcontrol._policy import RuleLike, as_rule
from cbcontrol._recording import peek
from cbcontrol._settings import DEFAULT_SETTINGS, Settings, settings_of
from cbcontrol._state import Machine
from cbcontrol._window import TimeWindow
from cbcontrol.config._fields import CONFIG_FIELDS

if TYPE_CHECKING:
    from collections.abc import Callable, Hashable, Mapping
    from contextlib import AbstractContextManager

    from cbcontrol._events import CallRecorded, State, StateChanged
    from cbcontrol._fallback import ResultOrigin
    from cbcontrol.config import BreakerConfig

__all__ = ["BreakerSnapshot", "CircuitBreaker", "is_async_callable"]


class CircuitBreaker(Drivers, Metrics):
    """
    A circuit breaker around calls to one dependency.

    Args:
        name: The dependency's name (``"payment"``); used in errors, events, metrics.
        config: The :class:`~cbcontrol.config.BreakerConfig`; defaults to
            ``BreakerConfig()`` (built without importing pydantic).
        failure_on: Which exceptions count as failures: an exception type, a tuple of
            them, a predicate, or an :class:`~cbcontrol.ExceptionRule`. Default: any
            :class:`Exception`. Other exceptions count as successes.
        ignore: Exceptions that count as neither success nor failure (checked first).
            Cancellation and ``KeyboardInterrupt`` are always ignored.
        fallback: The alternative: called with the call's arguments when the breaker
            rejects a call made through ``call``/``acall``/a decorator; its result is
            returned instead of raising :class:`~cbcontrol.CircuitOpenError`.
        static_fallback: A static answer for rejected calls; a callable is called
            with no arguments to make one.
        cache_key: Maps a call's arguments to its response-cache key (default: the
            arguments themselves, when hashable); used with ``fallback: cache``.
        clock: A monotonic clock ``() -> float``; tests pass a ``FakeClock``.
        rand: A source of floats in ``[0, 1)`` for jitter.

    Use it as ``breaker.call(fn, *args)``, ``await breaker.acall(afn, *args)``, as a
    decorator on sync, async, generator and async-generator functions, or as
    ``with breaker:`` / ``async with breaker:``.

    .. versionadded:: 0.1.0
    .. versionchanged:: 0.2.0
       ``static_fallback`` and ``cache_key``.
    """

    __slots__ = ()

    def __init__(
        self,
        name: str,
        config: BreakerConfig | None = None,
        *,
        failure_on: RuleLike = Exception,
        ignore: RuleLike | None = None,
        fallback: Callable[..., Any] | None = None,
        static_fallback: Any = NO_VALUE,
        cache_key: Callable[..., Hashable] | None = None,
        clock: Clock = monotonic,
        rand: Callable[[], float] = random.random,
    ) -> None:
        settings = DEFAULT_SETTINGS if config is None else settings_of(config)
        self.name = name
        self.clock = clock
        self._rand = rand
        self._lock = threading.Lock()
        self._failure_on = as_rule(failure_on, what="failure_on")
        self._ignore = None if ignore is None else as_rule(ignore, what="ignore")
        self._fallback = FallbackChain(
            fallback,
            static_fallback,
            static_factory=callable(static_fallback),
            cache_key=cache_key,
        )
        self._state_listeners = ()
        self._timely = 0
        self._wake_at = math.nan
        self._roll_armed = math.nan
        self._call_listeners = ()
        self._ctx = contextvars.ContextVar(f"cbcontrol.breaker.{name}", default=None)
        now = clock()
        self._config = config
        self._sources = {}
        self._transitions = None
        self._machine = Machine(name, settings, now)
        self._latency = None  # allocated at the first sample
        # The first call takes the general path: it is timed, and it starts the
        # request_timeout watcher of its event loop (see _deadline.py).
        self._sampling = True
        self._pending = False
        self._zero_counters()
        self._window = self._new_window(settings, 0, now)
        self._apply(settings)

    # -- state and config ------------------------------------------------------------

    @property
    def state(self) -> State:
        """
        The current state, as the next caller would meet it.

        An open breaker whose reset timeout has elapsed reads as ``HALF_OPEN``: the
        next call will be admitted as a probe.
        """
        return self._machine.state_at(self.clock())

    @property
    def retry_after(self) -> float | None:
        """
        Seconds until a call would be admitted: 0 when it would be now.

        ``None`` while forced open without an expiry.

        .. versionadded:: 0.2.0
        """
        with self._lock:
            return self._machine.retry_after(self.clock())

    @property
    def config(self) -> BreakerConfig:
        """The effective, immutable config."""
        config = self._config
        if config is None:
            from cbcontrol.config import BreakerConfig  # pydantic: only at the edge

            config = self._config = BreakerConfig(
                **{f: getattr(self._settings, f) for f in CONFIG_FIELDS}
            )
        return config

    def explain(self) -> dict[str, tuple[object, str]]:
        """
        ``{field: (value, source)}``: each effective field and where it came from.

        A breaker configured in code reports ``"code"``; one from
        ``plane.breaker()`` reports its layer (``"default"``, ``"preset:payment"``,
        ``"env:PAYMENT_CB_MAX_FAILURES"``, ``"etcd:/cbcontrol/default/...@42"``).
        """
        settings, sources = self._settings, self._sources
        return {
            name: (getattr(settings, name), sources.get(name, "code"))
            for name in CONFIG_FIELDS
        }

    def reconfigure(
        self, config: BreakerConfig, *, sources: Mapping[str, str] | None = None
    ) -> None:
        """
        Swap in a new config atomically; state, counters and window survive.

        A change of window size keeps the calls that still fit; a change of window
        type starts an empty window (a count window has no timestamps to keep).

        Args:
            config: The new config.
            sources: The provenance of each field, for :meth:`explain`.
        """
        settings = settings_of(config)
        with self._lock:
            self._sources = {} if sources is None else dict(sources)
            old = self._settings
            now = self.clock()
            ticket = self._tick_now()
            if settings.window_type != old.window_type:
                self._window = self._new_window(settings, ticket, now)
            elif settings.window_size != old.window_size:
                window = self._window
                if isinstance(window, TimeWindow):
                    self._window = window.resized(settings.window_size, ticket, now)
                else:
                    self._window = window.resized(settings.window_size, ticket)
            self._config = config
            self._machine.settings = settings
            # New thresholds: the next recorded success judges the window again.
            self._pending = settings.uses_rates
            self._apply(settings)
        self._schedule()

    def _apply(self, settings: Settings) -> None:
        self._settings = settings
        self._timed = settings.slow_call_rate_threshold is not None
        self._slow_s = settings.slow_call_duration
        self._fallback.configure(settings)
        self._refresh_fast()

    def _tick_now(self) -> int:
        return peek(self._tickets)

    # -- operator controls -------------------------------------------------------------

    def force_open(
        self, reason: str | None = None, *, expires_in: float | None = None
    ) -> None:
        """
        Reject every call until :meth:`clear_override`, :meth:`reset` or expiry.

        Args:
            reason: Shown in :class:`CircuitOpenError` and status (``"INC-42"``).
            expires_in: Seconds after which the override lifts by itself.
        """
        self._operate(
            lambda now: self._machine.force_open(now, reason, _until(now, expires_in))
        )

    def force_closed(
        self, reason: str | None = None, *, expires_in: float | None = None
    ) -> None:
        """
        Admit every call (outcomes still recorded) until cleared or expiry.

        Args:
            reason: Why, for status.
            expires_in: Seconds after which the override lifts by itself.
        """
        self._operate(
            lambda now: self._machine.force_closed(now, reason, _until(now, expires_in))
        )

    def clear_override(self) -> None:
        """Leave a forced mode for a fresh CLOSED breaker; no-op otherwise."""
        self._operate(self._machine.clear_override)

    def reset(self) -> None:
        """Close the breaker, clear any override and backoff, zero every counter."""

        def reset(now: float) -> tuple[StateChanged, ...]:
            events = self._machine.reset(now)
            self._zero_counters()
            self._pending = False
            self._window = self._new_window(self._settings, 0, now)
            return events

        self._operate(reset)

    def _manual(
        self, move: Callable[[Machine, float, float], tuple[StateChanged, ...]]
    ) -> None:
        """Apply a manual move of the machine (the pybreaker shim's open())."""
        self._operate(lambda now: move(self._machine, now, self._rand()))

    def _operate(self, change: Callable[[float], tuple[StateChanged, ...]]) -> None:
        with self._lock:
            now = self.clock()
            events = change(now)
            if events:
                self._transitioned(events, now)
            self._refresh_fast()
        self._emit(events)
        self._schedule()

    # -- listeners and fallbacks -------------------------------------------------------

    def on_state_change(
        self, listener: Callable[[StateChanged], object], *, on_time: bool = False
    ) -> Callable[[], None]:
        """
        Call ``listener`` after each state change; returns an unsubscriber.

        Args:
            listener: Called with each :class:`~cbcontrol.StateChanged`, outside the
                breaker's lock.
            on_time: Also hear the changes that timers make (open to half-open, an
                expired override, overdue probes) when they fall due, without waiting
                for a call: the breaker is then woken by the process's one timer
                thread, as Resilience4j's automatic transition does.

        .. versionchanged:: 0.2.0
           ``on_time``.
        """
        with self._lock:
            self._state_listeners = (*self._state_listeners, listener)
            self._timely += on_time
        if on_time:
            self._schedule()

        def unsubscribe() -> None:
            with self._lock:
                if listener in self._state_listeners:
                    self._timely -= on_time
                self._state_listeners = tuple(
                    x for x in self._state_listeners if x is not listener
                )

        return unsubscribe

    def on_call(self, listener: Callable[[CallRecorded], object]) -> Callable[[], None]:
        """
        Call ``listener`` after every call's outcome; returns an unsubscribe function.

        Call listeners move every call off the fast path; use them for metrics
        exporters, not for one-off debugging in production.
        """
        with self._lock:
            self._call_listeners = (*self._call_listeners, listener)
            self._refresh_fast()

        def unsubscribe() -> None:
            with self._lock:
                self._call_listeners = tuple(
                    x for x in self._call_listeners if x is not listener
                )
                self._refresh_fast()

        return unsubscribe

    def result_origin(self) -> AbstractContextManager[ResultOrigin]:
        """
        Learn where the results of this breaker's calls in a block came from.

        ::

            with payment.result_origin() as origin:
                receipt = charge(order)
            origin.source  # "primary", "cache", "static" or "alternative"

        A fallback of this breaker that served a call in the block sets
        ``origin.source``; it stays ``"primary"`` otherwise. Costs nothing per call.

        .. versionadded:: 0.2.0
        """
        return result_origin(self)

    def __repr__(self) -> str:
        return f"<CircuitBreaker {self.name!r} {self._machine.state.value}>"

    def __str__(self) -> str:
        return self.name


def _until(now: float, expires_in: float | None) -> float | None:
    return None if expires_in is None else now + expires_in
