"""
The breaker's state machine, without I/O.

Theory of operation
-------------------

Rule 1: this module never reads a clock, takes a lock, sleeps, logs or imports a
client library. Time arrives as the ``now`` argument, randomness (for jitter) as the
``rand`` argument in ``[0, 1)`` (for :meth:`Machine.admit` and
:meth:`Machine.advance`, which rarely need it, a function returning one). The breaker
shell owns the clock and the lock and calls in here while holding the lock.

Rule 2: every change of state goes through :meth:`Machine._fire`, which looks the
``(state, trigger)`` pair up in :data:`TRANSITIONS`. A pair that is not in the table
raises :class:`~cbcontrol.exceptions.TransitionError` naming the breaker, the state and
the trigger, and leaves every attribute unchanged.

Rule 3: methods return the events they emitted (a tuple of
:class:`~cbcontrol._events.StateChanged`); they never deliver them. The shell delivers
them to listeners after it released the lock.

What the machine decides, and what it does not: it admits or rejects a call
(:meth:`Machine.admit`), moves OPEN to HALF_OPEN when the reset timeout has elapsed
(:meth:`Machine.advance`, which the shell also calls from a timer so that listeners
hear it on time), judges half-open probes, re-opens when probes outlive
``probe_wait``, and computes the reset timeout with backoff and jitter.

Probes are judged like closed-state calls. With the consecutive rule on
(``max_failures`` set), one failed probe re-opens at once. The episode is decided
once ``success_threshold`` probes have completed, or earlier when the verdict is
certain: it re-opens when the probes' failure or slow-call rate reaches its
threshold (over ``success_threshold`` probes), and closes otherwise.

Whether a failure *trips* the closed breaker is decided by the
window and trip policy (``_window.py``, ``_policy.py``); the machine is told the verdict
through the ``trip_reason`` argument of :meth:`Machine.on_failure`. This keeps the hot
path (a success in the closed state) entirely out of this module.

Backoff: the n-th consecutive re-open without an intervening close waits
``min(reset_timeout * backoff_multiplier ** n, max(max_reset_timeout, reset_timeout))``,
then scaled by ``1 + jitter * (2 * rand - 1)``. Closing resets n to 0.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cbcontrol._events import State, StateChanged, Trigger
from cbcontrol._policy import rate_breach
from cbcontrol._settings import Settings
from cbcontrol.exceptions import TransitionError

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["TRANSITIONS", "Admission", "Machine", "MachineSettings"]


def _HALF() -> float:  # noqa: N802 - a constant, as a function
    return 0.5


_ALL = tuple(State)
# Enum members as module globals: `State.OPEN` is a slow class-attribute lookup in
# 3.11, and admit/rejects/retry_after run on every call to an open breaker.
CLOSED, OPEN, HALF_OPEN = State.CLOSED, State.OPEN, State.HALF_OPEN
FORCED_OPEN, FORCED_CLOSED = State.FORCED_OPEN, State.FORCED_CLOSED

TRANSITIONS: dict[tuple[State, Trigger], State] = {
    (State.CLOSED, Trigger.TRIP): State.OPEN,
    (State.OPEN, Trigger.TIMEOUT): State.HALF_OPEN,
    (State.HALF_OPEN, Trigger.PROBE_FAILED): State.OPEN,
    (State.HALF_OPEN, Trigger.PROBE_TIMEOUT): State.OPEN,
    (State.HALF_OPEN, Trigger.PROBES_PASSED): State.CLOSED,
    (State.FORCED_OPEN, Trigger.CLEAR_OVERRIDE): State.CLOSED,
    (State.FORCED_CLOSED, Trigger.CLEAR_OVERRIDE): State.CLOSED,
    **{(s, Trigger.FORCE_OPEN): State.FORCED_OPEN for s in _ALL},
    **{(s, Trigger.FORCE_CLOSED): State.FORCED_CLOSED for s in _ALL},
    **{(s, Trigger.RESET): State.CLOSED for s in _ALL},
}
"""Every legal move: ``(from, trigger) -> to``. Anything else is a bug."""


MachineSettings = Settings
"""The config fields the machine reads: the core's plain settings object."""


class Admission:
    """
    Verdicts of :meth:`Machine.admit`: plain ints, as the shell compares them often.

    A positive verdict is a half-open *probe* ticket: the number of the half-open
    episode that admitted it. Its outcome is reported with that number, so a probe
    that outlives its episode (the breaker re-opened and half-opened again meanwhile)
    cannot free a slot of, or count a success for, the next one.
    """

    CALL = 0
    """Admitted as an ordinary call (closed or forced closed)."""
    REJECT = -1
    """Rejected; :attr:`Machine.retry_after` says for how long."""


class Machine:
    """
    The mutable state of one breaker's automatic machine and operator override.

    Not thread-safe: the caller serialises access (the breaker shell holds its lock).
    """

    __slots__ = (
        "episode",
        "name",
        "open_until",
        "opened_level",
        "override_reason",
        "override_until",
        "probe_calls",
        "probe_deadline",
        "probe_fails",
        "probe_slow",
        "probes_in_flight",
        "settings",
        "state",
        "state_since",
        "times_opened",
    )

    def __init__(self, name: str, settings: MachineSettings, now: float) -> None:
        self.name = name
        self.settings = settings
        self.state = CLOSED
        self.state_since = now
        self.open_until = 0.0
        self.opened_level = 0  # re-opens since the last close: the backoff exponent
        self.probes_in_flight = 0
        self.probe_deadline = 0.0  # when the probes in flight must have ended
        self.probe_calls = 0  # probes of this episode that completed ...
        self.probe_fails = 0  # ... failed ...
        self.probe_slow = 0  # ... and were slow
        self.episode = 0  # half-open episodes so far: probes carry theirs
        self.times_opened = 0
        self.override_reason: str | None = None
        self.override_until: float | None = None

    # -- queries ---------------------------------------------------------------------

    def state_at(self, now: float) -> State:
        """The state a call at ``now`` would meet, timers applied (nothing moves)."""
        if self.override_until is not None and now >= self.override_until:
            return CLOSED
        state = self.state
        if state is OPEN and now >= self.open_until:
            return HALF_OPEN
        if state is HALF_OPEN and self._probes_overdue(now):
            return OPEN
        return state

    def retry_after(self, now: float) -> float | None:
        """
        Seconds until a call would be admitted; None while forced open for good.

        0 when a call would be admitted now. Half-open with every probe slot taken:
        the time the breaker would stay open if the probes fail, the honest bound.
        """
        if self.state is OPEN and now < self.open_until:
            return self.open_until - now  # the common case: a rejection while open
        state = self.state_at(now)
        if state is FORCED_OPEN:
            until = self.override_until
            return None if until is None else until - now
        if state is OPEN:
            if self.state is HALF_OPEN:  # overdue probes: about to re-open
                return self._timeout(self.opened_level + 1, 0.5)
            return max(0.0, self.open_until - now)
        if state is HALF_OPEN and (
            self.state is HALF_OPEN
            and self.probes_in_flight >= self.settings.half_open_max_calls
        ):
            return self._timeout(self.opened_level + 1, 0.5)
        return 0.0

    def next_deadline(self) -> float | None:
        """When :meth:`advance` will next have something to do, if ever."""
        deadlines = []
        if self.override_until is not None:
            deadlines.append(self.override_until)
        if self.state is OPEN:
            deadlines.append(self.open_until)
        elif self.state is HALF_OPEN and self.probes_in_flight:
            deadlines.append(self.probe_deadline)
        return min(deadlines, default=None)

    # -- time ------------------------------------------------------------------------

    def advance(
        self, now: float, rand: Callable[[], float] = _HALF
    ) -> tuple[StateChanged, ...]:
        """Apply the timers due at ``now``: override expiry, reset, probe wait."""
        events: tuple[StateChanged, ...] = ()
        if self.override_until is not None and now >= self.override_until:
            events = self.clear_override(now, "override expired")
        if self.state is OPEN and now >= self.open_until:
            events += self._fire(Trigger.TIMEOUT, now, "reset timeout elapsed")
            self.episode += 1
            self.probes_in_flight = 0
            self._zero_probes()
        elif self.state is HALF_OPEN and self._probes_overdue(now):
            self.probes_in_flight = 0
            self.opened_level += 1
            wait = self.settings.probe_wait
            reason = f"probe(s) still running after the half-open wait of {wait:g}s"
            events += self._open(Trigger.PROBE_TIMEOUT, now, rand(), reason)
        return events

    def _probes_overdue(self, now: float) -> bool:
        return self.probes_in_flight > 0 and now >= self.probe_deadline

    # -- calls -----------------------------------------------------------------------

    def admit(
        self, now: float, rand: Callable[[], float] = _HALF
    ) -> tuple[int, tuple[StateChanged, ...]]:
        """Decide whether a call may proceed; applies the timers that are due first."""
        if self.rejects(now):
            return Admission.REJECT, ()
        events = self.advance(now, rand)
        state = self.state
        if state is CLOSED or state is FORCED_CLOSED:
            return Admission.CALL, events
        if (
            state is HALF_OPEN
            and self.probes_in_flight < self.settings.half_open_max_calls
        ):
            if not self.probes_in_flight:
                self.probe_deadline = now + self.settings.probe_wait
            self.probes_in_flight += 1
            return self.episode, events
        return Admission.REJECT, events

    def rejects(self, now: float) -> bool:
        """The common rejection: open, its reset timeout still running, no override."""
        return (
            self.state is OPEN and now < self.open_until and self.override_until is None
        )

    def _current(self, probe: int) -> bool:
        """Is ``probe`` a probe ticket of the half-open episode in progress?"""
        return probe > 0 and probe == self.episode and self.state is HALF_OPEN

    def on_success(
        self, *, probe: int, now: float, slow: bool = False, rand: float = 0.5
    ) -> tuple[StateChanged, ...]:
        """Record a success (slow or not); probes may close or re-open the breaker."""
        if not self._current(probe):
            return ()
        return self._judge_probe(now, rand, failed=False, slow=slow)

    def on_failure(
        self,
        *,
        probe: int,
        now: float,
        rand: float,
        trip_reason: str | None,
        slow: bool = False,
    ) -> tuple[StateChanged, ...]:
        """Record a failure: a probe is judged, a tripped closed breaker opens."""
        if self._current(probe):
            return self._judge_probe(now, rand, failed=True, slow=slow)
        if self.state is CLOSED and trip_reason is not None:
            return self._open(Trigger.TRIP, now, rand, trip_reason)
        return ()

    def on_ignored(self, *, probe: int) -> None:
        """Give back the probe slot of a call whose outcome does not count."""
        if self._current(probe):
            self.probes_in_flight -= 1

    def _judge_probe(
        self, now: float, rand: float, *, failed: bool, slow: bool
    ) -> tuple[StateChanged, ...]:
        s = self.settings
        self.probes_in_flight -= 1
        self.probe_calls += 1
        self.probe_fails += failed
        self.probe_slow += slow
        breach = None
        if failed and s.max_failures is not None:
            breach = "a probe failed"
        else:
            # Judged over success_threshold probes: once a rate is reached with that
            # denominator, no later probe can bring it under the threshold.
            breach = rate_breach(
                s, s.success_threshold, self.probe_fails, self.probe_slow, "probes"
            )
        if breach is not None:
            self.opened_level += 1
            trigger = Trigger.PROBE_FAILED
            return self._open(trigger, now, rand, breach)
        if self.probe_calls < s.success_threshold:
            return ()
        self.opened_level = 0
        passed = self.probe_calls - self.probe_fails
        reason = (
            f"{passed} probe(s) succeeded"
            if passed == self.probe_calls
            else f"{passed} of {self.probe_calls} probes succeeded"
        )
        return self._fire(Trigger.PROBES_PASSED, now, reason)

    # -- manual moves (pybreaker's open() and half_open()) ----------------------------

    def trip(self, now: float, rand: float, reason: str) -> tuple[StateChanged, ...]:
        """Open now for the reset timeout, from any automatic state."""
        if self.state is CLOSED:
            return self._open(Trigger.TRIP, now, rand, reason)
        if self.state is HALF_OPEN:
            self.probes_in_flight = 0
            self.opened_level += 1
            return self._open(Trigger.PROBE_FAILED, now, rand, reason)
        if self.state is OPEN:
            self.open_until = now + self._timeout(self.opened_level, rand)
        return ()

    def half_open(self, now: float, rand: float) -> tuple[StateChanged, ...]:
        """Admit probes now, from any automatic state."""
        events: tuple[StateChanged, ...] = ()
        if self.state is CLOSED:
            events = self.trip(now, rand, "opened by hand")
        if self.state is OPEN:
            self.open_until = now
            events += self.advance(now, lambda: rand)
        return events

    # -- operator overrides ----------------------------------------------------------

    def force_open(
        self, now: float, reason: str | None, until: float | None = None
    ) -> tuple[StateChanged, ...]:
        """Reject every call until the override is cleared or ``until`` passes."""
        return self._override(Trigger.FORCE_OPEN, now, reason, until)

    def force_closed(
        self, now: float, reason: str | None, until: float | None = None
    ) -> tuple[StateChanged, ...]:
        """Admit every call until cleared or ``until``; outcomes still count."""
        return self._override(Trigger.FORCE_CLOSED, now, reason, until)

    def clear_override(
        self, now: float, reason: str = "override cleared"
    ) -> tuple[StateChanged, ...]:
        """Return a forced breaker to CLOSED; a no-op for the automatic states."""
        self.override_until = None
        if self.state not in (FORCED_OPEN, FORCED_CLOSED):
            return ()
        self.opened_level = 0
        events = self._fire(Trigger.CLEAR_OVERRIDE, now, reason)
        self.override_reason = None
        return events

    def reset(self, now: float, reason: str = "reset") -> tuple[StateChanged, ...]:
        """Return to CLOSED from anywhere, clearing override, backoff and counts."""
        self.opened_level = 0
        self.times_opened = 0
        self.probes_in_flight = 0
        self._zero_probes()
        self.override_reason = None
        self.override_until = None
        if self.state is CLOSED:
            return ()
        return self._fire(Trigger.RESET, now, reason)

    # -- internals -------------------------------------------------------------------

    def _zero_probes(self) -> None:
        self.probe_calls = self.probe_fails = self.probe_slow = 0

    def _override(
        self, trigger: Trigger, now: float, reason: str | None, until: float | None
    ) -> tuple[StateChanged, ...]:
        target = TRANSITIONS[self.state, trigger]
        self.override_reason = reason
        self.override_until = until
        if self.state is target:
            return ()
        return self._fire(trigger, now, reason or f"operator {trigger}")

    def _timeout(self, level: int, rand: float) -> float:
        s = self.settings
        cap = max(s.max_reset_timeout, s.reset_timeout)
        base = min(s.reset_timeout * s.backoff_multiplier**level, cap)
        return base * (1.0 + s.jitter * (2.0 * rand - 1.0))

    def _open(
        self, trigger: Trigger, now: float, rand: float, reason: str
    ) -> tuple[StateChanged, ...]:
        timeout = self._timeout(self.opened_level, rand)
        events = self._fire(trigger, now, reason, retry_after_s=timeout)
        self.open_until = now + timeout
        self.times_opened += 1
        return events

    def _fire(
        self,
        trigger: Trigger,
        now: float,
        reason: str,
        retry_after_s: float | None = None,
    ) -> tuple[StateChanged, ...]:
        before = self.state
        after = TRANSITIONS.get((before, trigger))
        if after is None:
            raise TransitionError(self.name, before.value, trigger.value)
        self.state = after
        self.state_since = now
        return (
            StateChanged(
                breaker=self.name,
                from_state=before,
                to_state=after,
                trigger=trigger,
                reason=reason,
                at=now,
                retry_after_s=retry_after_s,
            ),
        )
