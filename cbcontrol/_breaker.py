"""
The breaker shell: lock, clock, sync and async drivers, decorator, listeners.

Decisions live in ``_state.py`` (the machine), ``_window.py`` and ``_policy.py``; this
module owns the lock and the clock, feeds them, and delivers events after releasing the
lock. The lock is a short critical section that never awaits and is never held across
the protected call.

The hot path
------------
A call in the closed (or forced-closed) state with no slow-call detection and no call
listeners takes the *fast path*: it reads one attribute (``_fast``), runs the call, and
records its success with ``next()`` on an ``itertools.count`` (atomic under the GIL; see
``_window.py``). Everything else -- failures, probes, rejections, timed calls -- takes
the locked *general path* through :meth:`CircuitBreaker._enter` /
:meth:`CircuitBreaker._exit_ok` / :meth:`CircuitBreaker._exit_error`, shared by every
driver (``call``, ``acall``, decorators, ``with``, ``async with``), which therefore
differ only in ``await``.

One call in 64 is timed for the response-time statistics of :meth:`snapshot`: the
fast path routes the *next* call through the general path when its ticket says so.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import itertools
import logging
import math
import random
import threading
from array import array
from dataclasses import dataclass
from types import CoroutineType, TracebackType
from typing import TYPE_CHECKING, Any, NoReturn, ParamSpec, Self, TypeVar, overload

from cbcontrol._clock import Clock, monotonic
from cbcontrol._events import CallRecorded, Event, Outcome, State, StateChanged
from cbcontrol._policy import RuleLike, as_rule, trip_reason
from cbcontrol._state import Admission, Machine
from cbcontrol._window import CountWindow, TimeWindow, Window
from cbcontrol.config import BreakerConfig
from cbcontrol.exceptions import CircuitOpenError

if TYPE_CHECKING:
    from collections.abc import (
        AsyncIterator,
        Awaitable,
        Callable,
        Generator,
        Mapping,
    )

__all__ = ["BreakerSnapshot", "CircuitBreaker"]

logger = logging.getLogger("cbcontrol")
logger.addHandler(logging.NullHandler())  # a library stays quiet until configured

P = ParamSpec("P")
T = TypeVar("T")

_CALL = Admission.CALL
_REJECT = Admission.REJECT
_CLOSED = State.CLOSED
_FORCED_CLOSED = State.FORCED_CLOSED
_NEVER = math.inf  # a count window's roll_at
_SAMPLE_MASK = 63  # time one call in 64 for the response-time statistics
_LATENCY_SAMPLES = 256

# `_fast` values: 0 = general path, 1 = fast path, 2 = fast path that must roll a
# time window when the clock passes its bucket boundary.
_GENERAL, _FAST, _FAST_ROLL = 0, 1, 2


def _peek(counter: itertools.count[int]) -> int:
    """The next value ``counter`` will return, without taking it."""
    return int(repr(counter)[6:-1])


def is_async_callable(fn: object) -> bool:
    """True for coroutine functions, their partials, and objects with async __call__."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 - we want the method, not callable()
    )


@dataclass(frozen=True, slots=True)
class BreakerSnapshot:
    """
    A consistent, frozen view of one breaker's state and metrics.

    Counters are totals since creation or the last :meth:`CircuitBreaker.reset`;
    rates are over the sliding window, in percent. Times are readings of the
    breaker's clock; response times come from one call in 64 (every slow call).

    .. versionadded:: 0.1.0
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


class CircuitBreaker:
    """
    A circuit breaker around calls to one dependency.

    Args:
        name: The dependency's name (``"payment"``); used in errors, events, metrics.
        config: The :class:`~cbcontrol.config.BreakerConfig`; defaults to
            ``BreakerConfig()``.
        failure_on: Which exceptions count as failures: an exception type, a tuple of
            them, a predicate, or an :class:`~cbcontrol.ExceptionRule`. Default: any
            :class:`Exception`. Others (``KeyboardInterrupt``, cancellation) never do.
        ignore: Exceptions that count as neither success nor failure (checked first).
        fallback: Called with the call's arguments when the breaker rejects a call
            made through ``call``/``acall``/the decorator; its result is returned
            instead of raising :class:`~cbcontrol.CircuitOpenError`.
        clock: A monotonic clock ``() -> float``; tests pass a ``FakeClock``.
        rand: A source of floats in ``[0, 1)`` for jitter.

    Use it as ``breaker.call(fn, *args)``, ``await breaker.acall(afn, *args)``, as a
    decorator on sync, async, generator and async-generator functions, or as
    ``with breaker:`` / ``async with breaker:``.

    .. versionadded:: 0.1.0
    """

    __slots__ = (
        "__weakref__",
        "_call_listeners",
        "_config",
        "_consecutive",
        "_ctx",
        "_failure_on",
        "_failures",
        "_fallback",
        "_fallbacks",
        "_fast",
        "_ignore",
        "_ignored",
        "_last_fail",
        "_latency",
        "_latency_count",
        "_lock",
        "_machine",
        "_rand",
        "_rejections",
        "_sampling",
        "_slow_s",
        "_slow_total",
        "_sources",
        "_state_listeners",
        "_tick",
        "_tickets",
        "_timed",
        "_window",
        "clock",
        "name",
    )

    _tickets: itertools.count[int]
    _tick: Callable[[], int]
    _failures: int
    _ignored: int
    _rejections: int
    _fallbacks: int
    _slow_total: int
    _consecutive: int
    _last_fail: int
    _latency_count: int

    def __init__(
        self,
        name: str,
        config: BreakerConfig | None = None,
        *,
        failure_on: RuleLike = Exception,
        ignore: RuleLike | None = None,
        fallback: Callable[..., Any] | None = None,
        clock: Clock = monotonic,
        rand: Callable[[], float] = random.random,
    ) -> None:
        config = BreakerConfig() if config is None else config
        self.name = name
        self.clock = clock
        self._rand = rand
        self._lock = threading.Lock()
        self._failure_on = as_rule(failure_on, what="failure_on")
        self._ignore = None if ignore is None else as_rule(ignore, what="ignore")
        self._fallback = fallback
        self._state_listeners: tuple[Callable[[StateChanged], object], ...] = ()
        self._call_listeners: tuple[Callable[[CallRecorded], object], ...] = ()
        self._ctx: contextvars.ContextVar[tuple[int, float | None, Any] | None] = (
            contextvars.ContextVar(f"cbcontrol.breaker.{name}", default=None)
        )
        now = clock()
        self._config = config
        self._sources: Mapping[str, str] = {}
        self._machine = Machine(name, config, now)
        self._latency: array[float] | None = None  # allocated at the first sample
        self._sampling = False
        self._zero_counters()
        self._window: Window = self._new_window(config, 0, now)
        self._apply_config(config)

    # -- public API ------------------------------------------------------------------

    @property
    def state(self) -> State:
        """
        The current state, as the next caller would meet it.

        An open breaker whose reset timeout has elapsed reads as ``HALF_OPEN``: the
        next call will be admitted as a probe.
        """
        return self._machine.state_at(self.clock())

    @property
    def config(self) -> BreakerConfig:
        """The effective, immutable config."""
        return self._config

    def call(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """
        Call ``fn(*args, **kwargs)`` through the breaker.

        Raises:
            CircuitOpenError: The breaker rejected the call and there is no fallback.
            TypeError: ``fn`` is a coroutine function; use :meth:`acall`.
        """
        if self._fast:
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                self._exit_error(exc, _CALL, None)
                raise
            if result.__class__ is CoroutineType:
                self._refuse_coroutine(result)
            if self._fast == _FAST_ROLL and self.clock() >= self._window.roll_at:
                self._roll()
            if not self._tick() & _SAMPLE_MASK:
                self._sample_next()
            return result
        try:
            admission, t0 = self._enter()
        except CircuitOpenError as err:
            return self._serve_fallback(err, args, kwargs)  # type: ignore[no-any-return]
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            self._exit_error(exc, admission, t0)
            raise
        if result.__class__ is CoroutineType:
            self._exit_ignored(admission)
            self._refuse_coroutine(result)
        self._exit_ok(admission, t0)
        return result

    async def acall(
        self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """
        Await ``fn(*args, **kwargs)`` through the breaker.

        Raises:
            CircuitOpenError: The breaker rejected the call and there is no fallback.
        """
        if self._fast:
            try:
                result = await fn(*args, **kwargs)
            except BaseException as exc:
                self._exit_error(exc, _CALL, None)
                raise
            if self._fast == _FAST_ROLL and self.clock() >= self._window.roll_at:
                self._roll()
            if not self._tick() & _SAMPLE_MASK:
                self._sample_next()
            return result
        try:
            admission, t0 = self._enter()
        except CircuitOpenError as err:
            served = self._serve_fallback(err, args, kwargs)
            return await served if inspect.isawaitable(served) else served  # type: ignore[no-any-return]
        try:
            result = await fn(*args, **kwargs)
        except BaseException as exc:
            self._exit_error(exc, admission, t0)
            raise
        self._exit_ok(admission, t0)
        return result

    @overload
    def __call__(self, fn: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]: ...
    @overload
    def __call__(self, fn: Callable[P, T]) -> Callable[P, T]: ...
    def __call__(self, fn: Callable[P, Any]) -> Callable[P, Any]:
        """Decorate a sync, async, generator or async-generator function."""
        if inspect.isasyncgenfunction(fn):
            return self._wrap_async_gen(fn)
        if inspect.isgeneratorfunction(fn):
            return self._wrap_gen(fn)
        if is_async_callable(fn):
            return self._wrap_async(fn)
        return self._wrap_sync(fn)

    def __enter__(self) -> Self:
        admission, t0 = self._enter()
        self._ctx.set((admission, t0, self._ctx.get()))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        frame = self._ctx.get()
        if frame is None:  # pragma: no cover - only if __exit__ is called by hand
            msg = f'circuit breaker "{self.name}": __exit__ without __enter__'
            raise RuntimeError(msg)
        admission, t0, outer = frame
        self._ctx.set(outer)
        if exc is None:
            self._exit_ok(admission, t0)
        else:
            self._exit_error(exc, admission, t0)

    async def __aenter__(self) -> Self:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    def explain(self) -> dict[str, tuple[object, str]]:
        """
        ``{field: (value, source)}``: each effective field and where it came from.

        A breaker configured in code reports ``"code"``; one from
        ``plane.breaker()`` reports its layer (``"default"``, ``"preset:payment"``,
        ``"env:PAYMENT_CB_MAX_FAILURES"``, ``"etcd:/cbcontrol/default/...@42"``).
        """
        config, sources = self._config, self._sources
        return {
            name: (getattr(config, name), sources.get(name, "code"))
            for name in type(config).model_fields
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
        with self._lock:
            self._sources = {} if sources is None else dict(sources)
            old = self._config
            now = self.clock()
            if config.window_type != old.window_type:
                self._window = self._new_window(config, _peek(self._tickets), now)
            elif config.window_size != old.window_size:
                ticket = _peek(self._tickets)
                window = self._window
                if isinstance(window, TimeWindow):
                    self._window = window.resized(config.window_size, ticket, now)
                else:
                    self._window = window.resized(config.window_size, ticket)
            self._machine.settings = config
            self._apply_config(config)

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
            self._window = self._new_window(self._config, 0, now)
            return events

        self._operate(reset)

    def snapshot(self) -> BreakerSnapshot:
        """A frozen, consistent view of state and metrics."""
        with self._lock:
            now = self.clock()
            m = self._machine
            ticket = _peek(self._tickets)
            self._window.roll(now, ticket)
            calls, fails, slow = self._window.stats(ticket)
            count = min(self._latency_count, _LATENCY_SAMPLES)
            samples = sorted(self._latency[:count]) if self._latency else []
            failures, ignored = self._failures, self._ignored
            rejections, fallbacks = self._rejections, self._fallbacks
            slow_total, consecutive = self._slow_total, self._consecutive
            retry = None if m.state in (_CLOSED, _FORCED_CLOSED) else m.retry_after(now)
            state, since = m.state_at(now), m.state_since
            times_opened, reason = m.times_opened, m.override_reason
        return BreakerSnapshot(
            name=self.name,
            state=state,
            calls=ticket + ignored,
            successes=ticket - failures,
            failures=failures,
            ignored=ignored,
            rejections=rejections,
            fallbacks=fallbacks,
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
        )

    def on_state_change(
        self, listener: Callable[[StateChanged], object]
    ) -> Callable[[], None]:
        """Call ``listener`` after each state change; returns an unsubscriber."""
        with self._lock:
            self._state_listeners = (*self._state_listeners, listener)

        def unsubscribe() -> None:
            with self._lock:
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

    def __repr__(self) -> str:
        return f"<CircuitBreaker {self.name!r} {self._machine.state.value}>"

    # -- the general path (every driver goes through these three) -------------------

    def _enter(self) -> tuple[int, float | None]:
        """Admit or reject a call; returns the admission and the start time if timed."""
        machine = self._machine
        state = machine.state
        if state is _CLOSED or (
            state is _FORCED_CLOSED and machine.override_until is None
        ):
            # Read without the lock: the machine leaves these states only under the
            # lock, and a call admitted just before a trip is one admitted in time.
            timed = self._timed or self._sampling
            return _CALL, self.clock() if timed else None
        with self._lock:
            now = self.clock()
            admission, events = machine.admit(now)
            if events:
                self._transitioned(events, now)
            if admission == _REJECT:
                self._rejections += 1
                error = CircuitOpenError(
                    self.name,
                    machine.state.value,
                    machine.retry_after(now),
                    machine.override_reason,
                )
            timed = self._timed or self._sampling
        self._emit(events)
        if admission == _REJECT:
            if self._call_listeners:
                self._emit_call(Outcome.REJECTED, now, None, error)
            raise error
        return admission, self.clock() if timed else None

    def _exit_ok(self, admission: int, t0: float | None) -> None:
        """Record a success."""
        if t0 is None and admission == _CALL and not self._call_listeners:
            self._count_success(None)
            return
        now = self.clock()
        duration = None if t0 is None else now - t0
        slow = duration is not None and self._timed and duration >= self._slow_s
        if admission == _CALL and not slow and not self._call_listeners:
            self._count_success(duration)
            return
        with self._lock:
            events = self._record_success(admission, now, duration, slow=slow)
        self._emit(events)
        if self._call_listeners:
            self._emit_call(Outcome.SUCCESS, now, duration, None)

    def _count_success(self, duration: float | None) -> None:
        """An ordinary success: nothing here needs the lock (see ``_window.py``)."""
        roll_at = self._window.roll_at
        if roll_at != _NEVER and self.clock() >= roll_at:
            self._roll()
        ticket = self._tick()
        if duration is not None:
            # A sampled call: keeping it lock-free means it never makes other
            # threads queue behind it.
            self._record_latency(duration, ticket)
        if self._sampling:
            self._end_sampling()

    def _record_success(
        self, admission: int, now: float, duration: float | None, *, slow: bool
    ) -> tuple[StateChanged, ...]:
        """A probe's, a slow call's or a listened-to success (lock held)."""
        if now >= self._window.roll_at:
            self._window.roll(now, _peek(self._tickets))
        ticket = next(self._tickets)
        if duration is not None:
            self._record_latency(duration, ticket)
        if self._sampling:
            self._sampling = False
            self._refresh_fast()
        events: tuple[StateChanged, ...] = ()
        if slow:
            self._slow_total += 1
            self._window.add(ticket, failed=False, slow=True, now=now)
            events = self._judge(now, probe=_CALL, failed=False)
        events += self._machine.on_success(probe=admission, now=now)
        if events:
            self._transitioned(events, now)
        return events

    def _exit_error(self, exc: BaseException, admission: int, t0: float | None) -> None:
        """Record a call that raised: a failure, or ignored per the rules."""
        ignore = self._ignore
        if (ignore is not None and ignore(exc)) or not self._failure_on(exc):
            self._exit_ignored(admission, exc)
            return
        now = self.clock()
        duration = None if t0 is None else now - t0
        slow = duration is not None and self._timed and duration >= self._slow_s
        with self._lock:
            ticket = next(self._tickets)
            self._failures += 1
            self._consecutive = (
                self._consecutive + 1 if ticket == self._last_fail + 1 else 1
            )
            self._last_fail = ticket
            if duration is not None:
                self._record_latency(duration, ticket)
            if self._sampling:
                self._sampling = False
                self._refresh_fast()
            if slow:
                self._slow_total += 1
            self._window.add(ticket, failed=True, slow=slow, now=now)
            events = self._judge(now, probe=admission, failed=True)
            if events:
                self._transitioned(events, now)
        self._emit(events)
        if self._call_listeners:
            self._emit_call(Outcome.FAILURE, now, duration, exc)

    def _exit_ignored(self, admission: int, exc: BaseException | None = None) -> None:
        with self._lock:
            self._ignored += 1
            self._machine.on_ignored(probe=admission)
        if self._call_listeners:
            self._emit_call(Outcome.IGNORED, self.clock(), None, exc)

    # -- internals (called with the lock held unless said otherwise) -----------------

    def _judge(
        self, now: float, *, probe: int, failed: bool
    ) -> tuple[StateChanged, ...]:
        """Ask the window and policy whether to trip, and tell the machine."""
        machine = self._machine
        reason = None
        if machine.state is _CLOSED:
            calls, fails, slow = self._window.stats(_peek(self._tickets))
            consecutive = self._consecutive if failed else 0
            reason = trip_reason(self._config, consecutive, calls, fails, slow)
        if failed or reason is not None:
            return machine.on_failure(
                probe=probe, now=now, rand=self._rand(), trip_reason=reason
            )
        return ()

    def _transitioned(self, events: tuple[StateChanged, ...], now: float) -> None:
        if events[-1].to_state is _CLOSED:
            # A fresh start: the old window described a dependency that was failing.
            self._window.reset(_peek(self._tickets), now)
            self._consecutive = 0
            self._last_fail = -2
        self._refresh_fast()

    def _operate(self, change: Callable[[float], tuple[StateChanged, ...]]) -> None:
        with self._lock:
            now = self.clock()
            events = change(now)
            if events:
                self._transitioned(events, now)
            self._refresh_fast()
        self._emit(events)

    def _apply_config(self, config: BreakerConfig) -> None:
        self._config = config
        self._timed = config.slow_call_rate_threshold is not None
        self._slow_s = config.slow_call_duration
        self._refresh_fast()

    def _refresh_fast(self) -> None:
        state = self._machine.state
        if (
            (state is _CLOSED or state is _FORCED_CLOSED)
            and self._machine.override_until is None  # expiry is checked on admit
            and not self._timed
            and not self._sampling
            and not self._call_listeners
        ):
            self._fast = _FAST_ROLL if isinstance(self._window, TimeWindow) else _FAST
        else:
            self._fast = _GENERAL

    def _zero_counters(self) -> None:
        self._tickets = itertools.count()
        self._tick = self._tickets.__next__
        self._failures = 0
        self._ignored = 0
        self._rejections = 0
        self._fallbacks = 0
        self._slow_total = 0
        self._consecutive = 0
        self._last_fail = -2
        self._latency_count = 0

    @staticmethod
    def _new_window(config: BreakerConfig, ticket: int, now: float) -> Window:
        if config.window_type == "time":
            return TimeWindow(config.window_size, ticket, now)
        return CountWindow(config.window_size, ticket)

    def _roll(self) -> None:
        """Advance a time window past a second boundary (takes the lock)."""
        with self._lock:
            self._window.roll(self.clock(), _peek(self._tickets))

    def _sample_next(self) -> None:
        """Route the next call through the general path, timed (lock-free, racy-ok)."""
        self._sampling = True
        self._fast = _GENERAL

    def _record_latency(self, duration: float, ticket: int) -> None:
        """Keep a response-time sample (lock-free: a racing sample may be lost)."""
        if self._sampling or not ticket & _SAMPLE_MASK or duration >= self._slow_s:
            latency = self._latency
            if latency is None:
                latency = self._latency = array("d", bytes(8 * _LATENCY_SAMPLES))
            latency[self._latency_count % _LATENCY_SAMPLES] = duration
            self._latency_count += 1

    def _end_sampling(self) -> None:
        """Put the fast path back after a sampled call, if the lock is free now."""
        # Never wait: if the lock is busy, the next general-path call tries again.
        # Only a holder of the lock may re-enable the fast path, or it could race a
        # trip and route calls around an open breaker.
        if self._lock.acquire(blocking=False):
            try:
                self._sampling = False
                self._refresh_fast()
            finally:
                self._lock.release()

    def _serve_fallback(
        self, error: CircuitOpenError, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        if self._fallback is None:
            raise error
        with self._lock:
            self._fallbacks += 1
        return self._fallback(*args, **kwargs)

    def _refuse_coroutine(self, result: Any) -> NoReturn:
        result.close()
        msg = (
            f"CircuitBreaker.call() got a coroutine function; "
            f"use `await breaker.acall(...)` (breaker {self.name!r})"
        )
        raise TypeError(msg)

    # -- delivery (never with the lock held) -----------------------------------------

    def _emit(self, events: tuple[StateChanged, ...]) -> None:
        if not events:
            return
        for event in events:
            level = logging.WARNING if event.to_state is State.OPEN else logging.INFO
            logger.log(
                level,
                'circuit breaker "%s": %s -> %s (%s)',
                self.name,
                event.from_state,
                event.to_state,
                event.reason,
            )
            for listener in self._state_listeners:
                _deliver(listener, event)

    def _emit_call(
        self,
        outcome: Outcome,
        now: float,
        duration: float | None,
        exc: BaseException | None,
    ) -> None:
        event = CallRecorded(self.name, outcome, now, duration, exc)
        for listener in self._call_listeners:
            _deliver(listener, event)

    # -- decorators --------------------------------------------------------------------

    def _wrap_sync(self, fn: Callable[P, T]) -> Callable[P, T]:
        breaker = self

        @functools.wraps(fn)
        def guarded(*args: P.args, **kwargs: P.kwargs) -> T:
            fast = breaker._fast
            if fast:
                try:
                    result = fn(*args, **kwargs)
                except BaseException as exc:
                    breaker._exit_error(exc, _CALL, None)
                    raise
                if fast == _FAST_ROLL and breaker.clock() >= breaker._window.roll_at:
                    breaker._roll()
                if not breaker._tick() & _SAMPLE_MASK:
                    breaker._sample_next()
                return result
            return breaker.call(fn, *args, **kwargs)

        return guarded

    def _wrap_async(self, fn: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
        breaker = self

        @functools.wraps(fn)
        async def guarded(*args: P.args, **kwargs: P.kwargs) -> T:
            # The fast path inlined, as in _wrap_sync: awaiting acall() would cost
            # a second coroutine per call.
            fast = breaker._fast
            if fast:
                try:
                    result = await fn(*args, **kwargs)
                except BaseException as exc:
                    breaker._exit_error(exc, _CALL, None)
                    raise
                if fast == _FAST_ROLL and breaker.clock() >= breaker._window.roll_at:
                    breaker._roll()
                if not breaker._tick() & _SAMPLE_MASK:
                    breaker._sample_next()
                return result
            return await breaker.acall(fn, *args, **kwargs)

        return guarded

    def _wrap_gen(
        self, fn: Callable[P, Generator[T, Any, Any]]
    ) -> Callable[P, Generator[T, Any, Any]]:
        breaker = self

        @functools.wraps(fn)
        def guarded(*args: P.args, **kwargs: P.kwargs) -> Generator[T, Any, Any]:
            # The whole iteration is one call, admitted at the first next(); a
            # consumer that stops early raises GeneratorExit, which is ignored.
            admission, t0 = breaker._enter()
            try:
                result = yield from fn(*args, **kwargs)
            except BaseException as exc:
                breaker._exit_error(exc, admission, t0)
                raise
            breaker._exit_ok(admission, t0)
            return result

        return guarded

    def _wrap_async_gen(
        self, fn: Callable[P, AsyncIterator[T]]
    ) -> Callable[P, AsyncIterator[T]]:
        breaker = self

        @functools.wraps(fn)
        async def guarded(*args: P.args, **kwargs: P.kwargs) -> AsyncIterator[T]:
            admission, t0 = breaker._enter()
            try:
                async for item in fn(*args, **kwargs):
                    yield item
            except BaseException as exc:
                breaker._exit_error(exc, admission, t0)
                raise
            breaker._exit_ok(admission, t0)

        return guarded


def _until(now: float, expires_in: float | None) -> float | None:
    return None if expires_in is None else now + expires_in


def _deliver(listener: Callable[[Any], object], event: Event) -> None:
    try:
        listener(event)
    except Exception:
        # A broken listener must never break the application's call.
        logger.exception("circuit breaker listener %r failed on %r", listener, event)
