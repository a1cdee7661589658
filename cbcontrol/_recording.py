"""
Admission and recording: the breaker's lock, its counters, and the one general path.

:class:`BreakerCore` holds every attribute of a breaker (the other parts are mixins
over it) and the three steps every driver goes through off the fast path:
:meth:`BreakerCore._enter` admits or rejects, :meth:`BreakerCore._exit_ok` and
:meth:`BreakerCore._exit_error` record the outcome. Decisions are delegated to the
machine (``_state.py``), the window (``_window.py``) and the trip rules
(``_policy.py``); events are delivered after the lock is released.

The fast path
-------------
A call in the closed (or forced-closed) state needs no lock when nothing has to look
at its outcome: no slow-call timing, no call listener, no response cache, no rate
verdict pending. ``_fast`` says so (0: general path; 1: fast path; 2: fast path that
must roll a time window when an injected clock passes its bucket boundary), and a
success on it is one ``next()`` on an ``itertools.count`` (atomic under the GIL; see
``_window.py``). On the real clock a time window's calls take path 1: the timer
thread ends the fast path when a bucket ends (:meth:`BreakerCore._roll_due`). One
call in 64 is routed through the general path, timed, for the response-time
statistics of ``snapshot()``.

Outcomes: an exception matching ``ignore`` counts as neither success nor failure; one
matching ``failure_on`` is a failure; any other :class:`Exception` is a success (as
Resilience4j, pybreaker and circuitbreaker count it). A :class:`BaseException` that
is not an :class:`Exception` (cancellation, ``KeyboardInterrupt``) says nothing about
the dependency and is ignored. A rule that raises is logged and the call counts as a
failure, so a broken rule never leaks a half-open probe slot.
"""

from __future__ import annotations

import logging
import math
import weakref
from array import array
from typing import TYPE_CHECKING, Any, NoReturn

from cbcontrol._clock import REAL_CLOCKS
from cbcontrol._events import CallRecorded, Event, Outcome, State, StateChanged
from cbcontrol._policy import trip_reason
from cbcontrol._state import CLOSED, FORCED_CLOSED, Admission, Machine
from cbcontrol._timers import TIMERS
from cbcontrol._window import CountWindow, TimeWindow, Window
from cbcontrol.exceptions import CircuitOpenError

if TYPE_CHECKING:
    import contextvars
    import itertools
    import threading
    from collections.abc import Callable, Mapping

    from cbcontrol._clock import Clock
    from cbcontrol._fallback import FallbackChain
    from cbcontrol._policy import ExceptionRule
    from cbcontrol._settings import Settings
    from cbcontrol.config import BreakerConfig

__all__ = ["BreakerCore", "logger"]

logger = logging.getLogger("cbcontrol")
logger.addHandler(logging.NullHandler())  # a library stays quiet until configured

CALL = Admission.CALL
REJECT = Admission.REJECT
SAMPLE_MASK = 63  # time one call in 64 for the response-time statistics
LATENCY_SAMPLES = 256
NEVER = math.inf  # a count window's roll_at

# `_fast` values: general path, fast path, fast path rolling a time window.
GENERAL, FAST, FAST_ROLL = 0, 1, 2

# How a call ended, for _classify.
_FAILED, _SUCCEEDED, _IGNORED = 0, 1, 2


def peek(counter: itertools.count[int]) -> int:
    """The next value ``counter`` will return, without taking it."""
    return int(repr(counter)[6:-1])


class BreakerCore:
    """Every attribute of a breaker, admission, recording and event delivery."""

    __slots__ = (
        "__weakref__",
        "_cache_hits",
        "_cache_misses",
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
        "_pending",
        "_rand",
        "_rejected",
        "_roll_armed",
        "_sampling",
        "_settings",
        "_slow_s",
        "_slow_total",
        "_sources",
        "_state_listeners",
        "_tickets",
        "_timed",
        "_timely",
        "_transitions",
        "_wake_at",
        "_window",
        "clock",
        "name",
    )

    name: str
    clock: Clock
    _rand: Callable[[], float]
    _lock: threading.Lock
    _failure_on: ExceptionRule
    _ignore: ExceptionRule | None
    _fallback: FallbackChain
    _state_listeners: tuple[Callable[[StateChanged], object], ...]
    _timely: int  # how many state listeners asked to hear timer transitions on time
    _call_listeners: tuple[Callable[[CallRecorded], object], ...]
    _ctx: contextvars.ContextVar[tuple[int, float | None, Any] | None]
    _settings: Settings
    _config: BreakerConfig | None  # built from _settings on first read if None
    _sources: Mapping[str, str]
    _machine: Machine
    _window: Window
    _latency: array[float] | None
    _sampling: bool
    _pending: bool  # a success may reach minimum_calls with a rate over its threshold
    _timed: bool
    _slow_s: float
    _fast: int
    _wake_at: float  # the deadline the timer thread will wake this breaker for
    _roll_armed: float  # the bucket end the timer thread will end the fast path at
    _tickets: itertools.count[int]
    _failures: int
    _ignored: int
    _rejected: itertools.count[int]  # rejections so far, counted without the lock
    _fallbacks: dict[str, itertools.count[int]] | None  # counted without the lock
    _cache_hits: int
    _cache_misses: int
    _transitions: dict[tuple[str, str], int] | None
    _slow_total: int
    _consecutive: int
    _last_fail: int
    _latency_count: int

    # -- admission ---------------------------------------------------------------------

    def _enter(self) -> tuple[int, float | None]:
        """Admit a call or raise; returns the admission and the start time if timed."""
        admission, t0 = self._admit()
        if admission == REJECT:
            raise self._rejection(t0)
        return admission, t0

    def _admit(self) -> tuple[int, Any]:
        """
        Admit or reject a call: the admission, and the start time if timed.

        For a rejection the second item is the time it happened: the error is built
        only if no fallback serves the call (:meth:`_rejection`).
        """
        machine = self._machine
        state = machine.state
        if state is CLOSED or (
            state is FORCED_CLOSED and machine.override_until is None
        ):
            # Read without the lock: the machine leaves these states only under the
            # lock, and a call admitted just before a trip is one admitted in time.
            timed = self._timed or self._sampling
            return CALL, self.clock() if timed else None
        now = self.clock()
        if machine.rejects(now) and not self._call_listeners:
            # Plainly open: nothing changes, so no lock (the count is atomic).
            next(self._rejected)
            return REJECT, now
        with self._lock:
            now = self.clock()
            admission, events = machine.admit(now, self._rand)
            if events:
                self._transitioned(events, now)
            if admission == REJECT:
                next(self._rejected)
            timed = self._timed or self._sampling
        if events:
            self._emit(events)
        if admission == REJECT:
            if self._call_listeners:
                error = self._rejection(now)
                self._emit_call(Outcome.REJECTED, now, None, error)
            return admission, now
        return admission, self.clock() if timed else None

    def _rejection(self, now: float) -> CircuitOpenError:
        """The error for a call rejected at ``now`` (read racily: it is a message)."""
        machine = self._machine
        return CircuitOpenError(
            self.name,
            machine.state._value_,
            machine.retry_after(now),
            machine.override_reason,
        )

    # -- recording ---------------------------------------------------------------------

    def _exit_ok(self, admission: int, t0: float | None) -> None:
        """Record a success."""
        plain = admission == CALL and not self._call_listeners and not self._pending
        if t0 is None and plain:
            self._count_success(None)
            return
        now = self.clock()
        duration = None if t0 is None else now - t0
        slow = duration is not None and self._timed and duration >= self._slow_s
        if plain and not slow:
            self._count_success(duration)
            return
        with self._lock:
            events = self._record_success(admission, now, duration, slow=slow)
        self._emit(events)
        if self._call_listeners:
            self._emit_call(Outcome.SUCCESS, now, duration, None)

    def _count_success(self, duration: float | None) -> None:
        """An ordinary success: nothing here needs the lock (see ``_window.py``)."""
        if self._window.roll_at != NEVER and self.clock() >= self._window.roll_at:
            ticket = self._roll()
        else:
            ticket = next(self._tickets)
        if duration is not None:
            # A sampled call: keeping it lock-free means it never makes other
            # threads queue behind it.
            self._record_latency(duration, ticket)
        if self._sampling:
            self._end_sampling()

    def _record_success(
        self, admission: int, now: float, duration: float | None, *, slow: bool
    ) -> tuple[StateChanged, ...]:
        """A probe's, a slow call's or a judged success (lock held)."""
        return self._record(admission, now, duration, failed=False, slow=slow)

    def _record(
        self,
        admission: int,
        now: float,
        duration: float | None,
        *,
        failed: bool,
        slow: bool,
    ) -> tuple[StateChanged, ...]:
        """Take a ticket for a call, count it, judge the window (lock held)."""
        if now >= self._window.roll_at:
            self._window.roll(now, peek(self._tickets))
        ticket = next(self._tickets)
        if failed:
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
        if failed or slow:
            self._window.add(ticket, failed=failed, slow=slow, now=now)
        events = self._judge(now, admission, failed=failed, slow=slow)
        if events:
            self._transitioned(events, now)
        return events

    def _exit_error(
        self, exc: BaseException, admission: int, t0: float | None
    ) -> tuple[StateChanged, ...]:
        """Record a call that raised; returns the state changes a failure caused."""
        verdict = self._classify(exc)
        if verdict == _IGNORED:
            self._exit_ignored(admission, exc)
            return ()
        if verdict == _SUCCEEDED:
            self._exit_ok(admission, t0)
            return ()
        return self._record_failure(exc, admission, t0)

    def _record_failure(
        self, exc: BaseException, admission: int, t0: float | None
    ) -> tuple[StateChanged, ...]:
        now = self.clock()
        duration = None if t0 is None else now - t0
        slow = duration is not None and self._timed and duration >= self._slow_s
        with self._lock:
            events = self._record(admission, now, duration, failed=True, slow=slow)
        self._emit(events)
        if self._call_listeners:
            self._emit_call(Outcome.FAILURE, now, duration, exc)
        return events

    def _exit_ignored(self, admission: int, exc: BaseException | None = None) -> None:
        with self._lock:
            self._ignored += 1
            self._machine.on_ignored(probe=admission)
        if self._call_listeners:
            self._emit_call(Outcome.IGNORED, self.clock(), None, exc)

    def _classify(self, exc: BaseException) -> int:
        """Failure, success or ignored, per the rules; a raising rule means failure."""
        if not isinstance(exc, Exception):
            return _IGNORED
        try:
            if self._ignore is not None and self._ignore(exc):
                return _IGNORED
            return _FAILED if self._failure_on(exc) else _SUCCEEDED
        except Exception:
            logger.exception(
                'circuit breaker "%s": an exception rule raised on %r; counting the '
                "call as a failure",
                self.name,
                exc,
            )
            return _FAILED

    # -- verdicts (lock held) ----------------------------------------------------------

    def _judge(
        self, now: float, admission: int, *, failed: bool, slow: bool
    ) -> tuple[StateChanged, ...]:
        """Ask the window and the trip rules whether to trip, and tell the machine."""
        machine = self._machine
        if admission > 0:  # a half-open probe: the machine judges the episode
            if failed:
                return machine.on_failure(
                    probe=admission,
                    now=now,
                    rand=self._rand(),
                    trip_reason=None,
                    slow=slow,
                )
            return machine.on_success(
                probe=admission, now=now, slow=slow, rand=self._rand()
            )
        reason = None
        if machine.state is CLOSED:
            s = self._settings
            calls, fails, slows = self._window.stats(peek(self._tickets))
            consecutive = self._consecutive if failed else 0
            reason = trip_reason(s, consecutive, calls, fails, slows)
            pending = (
                reason is None
                and s.uses_rates
                and (fails > 0 or slows > 0)
                and calls < s.minimum_calls
            )
            if pending != self._pending:
                self._pending = pending
                self._refresh_fast()
        if reason is not None:
            return machine.on_failure(
                probe=admission, now=now, rand=self._rand(), trip_reason=reason
            )
        return ()

    def _transitioned(self, events: tuple[StateChanged, ...], now: float) -> None:
        counts = self._transitions
        if counts is None:
            counts = self._transitions = {}
        for event in events:
            key = (event.from_state.value, event.to_state.value)
            counts[key] = counts.get(key, 0) + 1
        if events[-1].to_state is CLOSED:
            # A fresh start: the old window described a dependency that was failing.
            self._window.reset(peek(self._tickets), now)
            self._consecutive = 0
            self._last_fail = -2
            self._pending = False
        self._refresh_fast()

    def _refresh_fast(self) -> None:
        state = self._machine.state
        if (
            (state is CLOSED or state is FORCED_CLOSED)
            and self._machine.override_until is None  # expiry is checked on admit
            and not self._timed
            and not self._sampling
            and not self._pending
            and not self._call_listeners
            and self._fallback.cache is None
        ):
            if not isinstance(self._window, TimeWindow):
                self._fast = FAST
            elif self.clock in REAL_CLOCKS:
                # The timer thread ends the fast path when the bucket ends
                # (_roll_due), so a call on it never reads the clock.
                self._fast = FAST
                self._arm_roll()
            else:
                # An injected clock (a test's FakeClock) moves when its owner says
                # so: no timer can wait for it, so each call reads it.
                self._fast = FAST_ROLL
        else:
            self._fast = GENERAL

    def _arm_roll(self) -> None:
        """Ask the timer thread to call :meth:`_roll_due` when the bucket ends."""
        roll_at = self._window.roll_at
        if roll_at != self._roll_armed:
            self._roll_armed = roll_at
            TIMERS.call_later(
                roll_at - self.clock(), weakref.WeakMethod(self._roll_due)
            )

    def _roll_due(self) -> None:
        """
        On the timer thread: the current bucket has ended.

        The next call takes the general path (as a sampled call), which rolls the
        window and judges it, then puts the fast path back and arms the next roll.
        An idle breaker therefore costs one wake after its last call, not one a
        bucket. If this comes late, the one call in 64 that is sampled rolls anyway.
        """
        with self._lock:
            self._roll_armed = math.nan
            if self._fast == FAST and isinstance(self._window, TimeWindow):
                self._sampling = True
                self._fast = GENERAL

    def _roll(self) -> int:
        """
        Record a success that crossed a bucket boundary: roll, then judge.

        Old successes leaving the window can raise the rates, so the window is judged
        with this success in it. Returns the success's ticket.
        """
        with self._lock:
            now = self.clock()
            self._window.roll(now, peek(self._tickets))
            ticket = next(self._tickets)
            events = self._judge(now, CALL, failed=False, slow=False)
            if events:
                self._transitioned(events, now)
        self._emit(events)
        return ticket

    @staticmethod
    def _new_window(settings: Settings, ticket: int, now: float) -> Window:
        if settings.window_type == "time":
            return TimeWindow(settings.window_size, ticket, now)
        return CountWindow(settings.window_size, ticket)

    # -- sampling ----------------------------------------------------------------------

    def _sample_next(self) -> None:
        """Route the next call through the general path, timed (lock-free, racy-ok)."""
        self._sampling = True
        self._fast = GENERAL

    def _record_latency(self, duration: float, ticket: int) -> None:
        """Keep a response-time sample (lock-free: a racing sample may be lost)."""
        if self._sampling or not ticket & SAMPLE_MASK or duration >= self._slow_s:
            latency = self._latency
            if latency is None:
                latency = self._latency = array("d", bytes(8 * LATENCY_SAMPLES))
            latency[self._latency_count % LATENCY_SAMPLES] = duration
            self._latency_count += 1

    def _end_sampling(self) -> None:
        """Put the fast path back after a sampled call."""
        # Only a holder of the lock may re-enable the fast path, or it could race a
        # trip and route calls around an open breaker. Wait for it: it is held for
        # bookkeeping only, never across a call. Not waiting was worse: when the GIL
        # moved while one thread held it here, every other thread's calls took the
        # general path for a whole switch interval (5 ms; ~1.4% of the calls of
        # 4 threads in bench/overhead.py's thread rows), all of them timed.
        lock = self._lock
        lock.acquire()
        try:
            self._sampling = False
            self._refresh_fast()
        finally:
            lock.release()

    def _refuse_coroutine(self, result: Any, admission: int) -> NoReturn:
        self._exit_ignored(admission)
        result.close()
        msg = (
            f"CircuitBreaker.call() got a coroutine function; "
            f"use `await breaker.acall(...)` (breaker {self.name!r})"
        )
        raise TypeError(msg)

    # -- timers ------------------------------------------------------------------------

    def _schedule(self) -> None:
        """Ask the timer thread to wake this breaker at its machine's next deadline."""
        if not self._timely:
            return
        deadline = self._machine.next_deadline()
        if deadline is None or deadline == self._wake_at:
            return
        self._wake_at = deadline
        TIMERS.call_later(deadline - self.clock(), weakref.WeakMethod(self._wake))

    def _wake(self) -> None:
        """On the timer thread: apply the timers that are due, deliver the events."""
        with self._lock:
            now = self.clock()
            self._wake_at = math.nan
            events = self._machine.advance(now, self._rand)
            if events:
                self._transitioned(events, now)
        self._emit(events)
        self._schedule()

    # -- delivery (never with the lock held) -------------------------------------------

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
        self._schedule()

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


def _deliver(listener: Callable[[Any], object], event: Event) -> None:
    try:
        listener(event)
    except Exception:
        # A broken listener must never break the application's call.
        logger.exception("circuit breaker listener %r failed on %r", listener, event)
