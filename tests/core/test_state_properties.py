"""Properties: random operations against a model, windows against naive counts."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from cbcontrol import (
    BreakerConfig,
    BreakerSnapshot,
    CircuitBreaker,
    CircuitOpenError,
    State,
    StateChanged,
    Trigger,
)
from cbcontrol._state import TRANSITIONS
from cbcontrol._window import CountWindow, TimeWindow
from cbcontrol.testing import FakeClock

BACKOFF = 2.0  # BreakerConfig defaults, which the drawn configs keep
MAX_RESET_TIMEOUT = 300.0


class Boom(Exception):
    """The dependency failed."""


class Ignored(Exception):
    """An outcome the breaker is told to ignore."""


def ok() -> None:
    """A healthy dependency."""


def bad() -> None:
    """A failing dependency."""
    raise Boom


def neutral() -> None:
    """A dependency raising an ignored exception."""
    raise Ignored


RATE_THRESHOLDS = [20.0, 50.0, 75.0, 100.0]
WINDOW_TYPES: list[Literal["count", "time"]] = ["count", "time"]


@st.composite
def configs(draw: st.DrawFn) -> BreakerConfig:
    """A valid config with small windows and thresholds, and no jitter."""
    window_type = draw(st.sampled_from(WINDOW_TYPES))
    window_size = draw(st.integers(1, 20 if window_type == "count" else 10))
    return BreakerConfig(
        max_failures=draw(st.integers(1, 5)),
        window_type=window_type,
        window_size=window_size,
        failure_rate_threshold=draw(st.none() | st.sampled_from(RATE_THRESHOLDS)),
        minimum_calls=draw(st.integers(1, min(window_size, 6))),
        half_open_max_calls=draw(st.integers(1, 3)),
        success_threshold=draw(st.integers(1, 3)),
        reset_timeout=draw(st.integers(1, 60).map(float)),
        jitter=0.0,
    )


COUNTERS = ("calls", "successes", "failures", "ignored", "rejections", "times_opened")


def counters(snap: BreakerSnapshot) -> dict[str, int]:
    """The snapshot's monotonic counters by name."""
    return {name: getattr(snap, name) for name in COUNTERS}


DELAYS = st.just(0.0) | st.floats(0, 2) | st.integers(0, 70).map(float)
"""Seconds between steps: often none, often within a second, up to past any timeout."""

# Which rule may cause which trigger: anything else is an event out of nowhere.
CAUSES = {
    Trigger.TRIP: {"failure", "success"},
    Trigger.TIMEOUT: {"success", "failure", "ignored"},
    Trigger.PROBE_FAILED: {"failure"},
    Trigger.PROBES_PASSED: {"success"},
    Trigger.FORCE_OPEN: {"force_open"},
    Trigger.FORCE_CLOSED: {"force_closed"},
    Trigger.CLEAR_OVERRIDE: {"clear_override"},
    Trigger.RESET: {"reset"},
}


@dataclass
class Model:
    """What the breaker must have counted, and what its window must hold."""

    successes: int = 0
    failures: int = 0
    ignored: int = 0
    rejections: int = 0
    times_opened: int = 0
    consecutive: int = 0  # failures since the last success, close or reset
    probe_successes: int = 0  # successes since entering half-open
    backoff_level: int = 0  # re-opens since the last close
    forced: State | None = None
    window: list[tuple[int, bool]] = field(default_factory=list)  # (second, failed)


class BreakerStateMachine(RuleBasedStateMachine):
    """Random calls, clock moves and operator actions checked by a model."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        self.model = Model()
        self.events: list[StateChanged] = []
        self.checked = 0  # events already checked
        self.last_event: StateChanged | None = None
        self.step = "init"
        self.previous: BreakerSnapshot | None = None

    @initialize(config=configs())
    def create(self, config: BreakerConfig) -> None:
        """Start with a breaker on a drawn config."""
        self.breaker = CircuitBreaker(
            "sm", config, ignore=Ignored, clock=self.clock, rand=lambda: 0.5
        )
        self.breaker.on_state_change(self.events.append)
        self.previous = self.breaker.snapshot()

    # -- calls -----------------------------------------------------------------------

    def _call(self, kind: str, fn: object, after: float) -> None:
        """Make one call ``after`` seconds, check what it did and update the model."""
        self.step = kind
        self.clock.advance(after)  # no snapshot in between: the call itself must roll
        try:
            self._check_call(kind, fn)
        finally:
            self._take_events()

    def _check_call(self, kind: str, fn: object) -> None:
        config, m = self.breaker.config, self.model
        before = self.breaker.state
        first_new = len(self.events)
        try:
            self.breaker.call(fn)  # type: ignore[arg-type]
            outcome = "success"
        except CircuitOpenError:
            outcome = "rejected"
        except Boom:
            outcome = "failure"
        except Ignored:
            outcome = "ignored"
        new = self.events[first_new:]
        triggers = [e.trigger for e in new]

        assert (before in (State.OPEN, State.FORCED_OPEN)) == (outcome == "rejected")
        if outcome == "rejected":
            m.rejections += 1
            assert [] == triggers
            return
        assert kind == outcome
        if before is State.FORCED_CLOSED:
            assert [] == triggers
        if kind == "ignored":
            m.ignored += 1
            assert triggers in ([], [Trigger.TIMEOUT])
            return
        m.window.append((math.floor(self.clock.now), kind == "failure"))
        if Trigger.TIMEOUT in triggers:
            m.probe_successes = 0
        if kind == "success":
            self._check_success(before, triggers)
        else:
            m.failures += 1
            m.consecutive += 1
            calls, fails = self._window_stats()
            should_trip = before is State.CLOSED and (
                m.consecutive >= config.max_failures
                or (
                    config.failure_rate_threshold is not None
                    and calls >= config.minimum_calls
                    and fails * 100.0 >= config.failure_rate_threshold * calls
                )
            )
            assert should_trip == (Trigger.TRIP in triggers)
            assert (before is State.HALF_OPEN) == (Trigger.PROBE_FAILED in triggers)

    def _check_success(self, before: State, triggers: list[Trigger]) -> None:
        config, m = self.breaker.config, self.model
        m.successes += 1
        m.consecutive = 0
        if before is State.CLOSED:  # a success can take the window to the rate
            calls, fails = self._window_stats()
            should_trip = (
                config.failure_rate_threshold is not None
                and calls >= config.minimum_calls
                and fails * 100.0 >= config.failure_rate_threshold * calls
            )
            assert should_trip == (Trigger.TRIP in triggers)
        if before is State.HALF_OPEN:
            m.probe_successes += 1
            closes = m.probe_successes >= config.success_threshold
            assert closes == (Trigger.PROBES_PASSED in triggers)

    @rule(after=DELAYS)
    def call_success(self, after: float) -> None:
        """A call that succeeds."""
        self._call("success", ok, after)

    @rule(after=DELAYS)
    def call_failure(self, after: float) -> None:
        """A call that fails."""
        self._call("failure", bad, after)

    @rule(after=DELAYS)
    def call_ignored(self, after: float) -> None:
        """A call raising an ignored exception."""
        self._call("ignored", neutral, after)

    # -- time and operators ----------------------------------------------------------

    @rule(seconds=DELAYS)
    def advance(self, seconds: float) -> None:
        """Time passes."""
        self.step = "advance"
        self.clock.advance(seconds)
        self._take_events()

    @rule()
    def force_open(self) -> None:
        """An operator forces the breaker open."""
        self.step = "force_open"
        self.breaker.force_open()
        self.model.forced = State.FORCED_OPEN
        self._take_events()

    @rule()
    def force_closed(self) -> None:
        """An operator forces the breaker closed."""
        self.step = "force_closed"
        self.breaker.force_closed()
        self.model.forced = State.FORCED_CLOSED
        self._take_events()

    @rule()
    def clear_override(self) -> None:
        """An operator clears any override."""
        self.step = "clear_override"
        was_forced = self.model.forced is not None
        state_before = self.breaker.state
        self.breaker.clear_override()
        self.model.forced = None
        self._take_events()

        expected = State.CLOSED if was_forced else state_before
        assert expected == self.breaker.state

    @rule()
    def reset(self) -> None:
        """An operator resets the breaker."""
        self.step = "reset"
        self.breaker.reset()
        self.model = Model()
        self._take_events()
        snap = self.breaker.snapshot()

        assert State.CLOSED == snap.state
        assert dict.fromkeys(COUNTERS, 0) == counters(snap)

    @rule(config=configs())
    def reconfigure(self, config: BreakerConfig) -> None:
        """An operator retunes the breaker."""
        self.step = "reconfigure"
        old = self.breaker.config
        self.breaker.reconfigure(config)
        m = self.model
        if config.window_type != old.window_type:
            m.window = []
        elif config.window_type == "count":
            m.window = m.window[-min(config.window_size, old.window_size) :]
        else:
            keep = min(config.window_size, old.window_size)
            oldest = math.floor(self.clock.now) - keep + 1
            m.window = [(s, f) for s, f in m.window if s >= oldest]
        self._take_events()

        assert config == self.breaker.config

    # -- the model's window ----------------------------------------------------------

    def _window_stats(self) -> tuple[int, int]:
        """Calls and failures a correct window holds now."""
        config, window = self.breaker.config, self.model.window
        if config.window_type == "count":
            recent = window[-config.window_size :]
        else:
            oldest = math.floor(self.clock.now) - config.window_size + 1
            recent = [(s, f) for s, f in window if s >= oldest]
        return len(recent), sum(f for _, f in recent)

    def _take_events(self) -> None:
        """Check the state changes the last rule caused and update the model."""
        m = self.model
        for event in self.events[self.checked :]:
            if self.last_event is not None:
                assert self.last_event.to_state == event.from_state
            self.last_event = event
            assert (event.from_state, event.trigger) in TRANSITIONS
            assert TRANSITIONS[event.from_state, event.trigger] == event.to_state
            assert self.step in CAUSES[event.trigger]
            assert self.clock.now == event.at
            if event.to_state is State.OPEN:
                m.times_opened += 1
                if event.trigger is Trigger.PROBE_FAILED:
                    m.backoff_level += 1
                timeout = min(
                    self.breaker.config.reset_timeout * BACKOFF**m.backoff_level,
                    max(MAX_RESET_TIMEOUT, self.breaker.config.reset_timeout),
                )
                assert timeout == event.retry_after_s
            if event.to_state is State.CLOSED:
                m.consecutive = 0
                m.backoff_level = 0
                m.window = []
        self.checked = len(self.events)

    # -- invariants ------------------------------------------------------------------

    @invariant()
    def state_changes_come_only_from_rules(self) -> None:
        """Reading the state or a snapshot never changes the state."""
        self.breaker.snapshot()
        _ = self.breaker.state

        assert self.checked == len(self.events)

    @invariant()
    def counts_add_up(self) -> None:
        """The snapshot's counters equal the model's and only grow between resets."""
        snap, m = self.breaker.snapshot(), self.model

        assert snap.calls == snap.successes + snap.failures + snap.ignored
        assert (m.successes, m.failures, m.ignored, m.rejections) == (
            snap.successes,
            snap.failures,
            snap.ignored,
            snap.rejections,
        )
        assert m.times_opened == snap.times_opened
        if self.previous is not None and self.step != "reset":
            before, after = counters(self.previous), counters(snap)
            assert [] == [k for k in before if before[k] > after[k]]
        self.previous = snap

    @invariant()
    def forced_modes_stick(self) -> None:
        """A forced breaker stays forced whatever the clock or the outcomes do."""
        forced = self.model.forced

        if forced is not None:
            assert forced == self.breaker.state
        else:
            assert self.breaker.state not in (State.FORCED_OPEN, State.FORCED_CLOSED)

    @invariant()
    def window_matches_model(self) -> None:
        """The snapshot's window calls and failure rate are those of recent calls."""
        calls, fails = self._window_stats()
        snap = self.breaker.snapshot()

        assert calls == snap.window_calls
        assert (fails * 100.0 / calls if calls else None) == snap.failure_rate


BreakerStateMachine.TestCase.settings = settings(
    max_examples=150, stateful_step_count=50, deadline=None
)
test_breaker_state_machine = BreakerStateMachine.TestCase


# -- windows against a naive list of outcomes -----------------------------------------

OUTCOMES = {
    "success": (False, False),
    "failure": (True, False),
    "slow": (False, True),
    "slow_failure": (True, True),
}
WINDOW_SETTINGS = settings(max_examples=200, deadline=None)


def naive(recent: list[str]) -> tuple[int, int, int]:
    """(calls, failures, slow) counted the obvious way."""
    return (
        len(recent),
        sum(OUTCOMES[o][0] for o in recent),
        sum(OUTCOMES[o][1] for o in recent),
    )


count_steps = st.lists(
    st.sampled_from(sorted(OUTCOMES)) | st.just("reset") | st.integers(1, 20),
    max_size=150,
)


@WINDOW_SETTINGS
@given(start=st.integers(0, 1000), size=st.integers(1, 20), steps=count_steps)
def test_count_window_counts_the_last_n_calls(
    start: int, size: int, steps: list[str | int]
) -> None:
    """A count window counts the calls, failures and slow calls of the last N calls."""
    window, ticket = CountWindow(size, start), start
    recent: list[str] = []
    expected, actual = [], []
    for step in steps:
        if isinstance(step, int):  # resize: keep what fits
            recent = recent[-min(size, step) :]
            window, size = window.resized(step, ticket), step
        elif step == "reset":
            window.reset(ticket, 0.0)
            recent = []
        else:
            failed, slow = OUTCOMES[step]
            if failed or slow:
                window.add(ticket, failed=failed, slow=slow, now=0.0)
            ticket += 1
            recent.append(step)
        expected.append(naive(recent[-size:]))
        actual.append(window.stats(ticket))

    assert expected == actual


@WINDOW_SETTINGS
@given(
    start=st.floats(1000.0, 1001.0),
    size=st.integers(1, 10),
    steps=st.lists(
        st.tuples(
            st.just(0.0) | st.floats(0, 1.5) | st.integers(0, 15).map(float),
            st.sampled_from(sorted(OUTCOMES)) | st.none() | st.integers(1, 10),
        ),
        max_size=150,
    ),
)
def test_time_window_counts_the_last_n_seconds(
    start: float, size: int, steps: list[tuple[float, str | int | None]]
) -> None:
    """A time window counts the calls, failures and slow calls of the last N seconds."""
    now, ticket = start, 0
    window = TimeWindow(size, ticket, now)
    history: list[tuple[int, str]] = []  # (second, outcome)
    expected, actual = [], []
    for dt, step in steps:
        now += dt
        if isinstance(step, int):  # resize: keep the seconds that fit
            keep = min(size, step)
            window, size = window.resized(step, ticket, now), step
            history = [(s, o) for s, o in history if s > math.floor(now) - keep]
        elif step is not None:
            failed, slow = OUTCOMES[step]
            if failed or slow:
                window.add(ticket, failed=failed, slow=slow, now=now)
            elif now >= window.roll_at:  # as the breaker does for a success
                window.roll(now, ticket)
            ticket += 1
            history.append((math.floor(now), step))
        window.roll(now, ticket)
        oldest = math.floor(now) - size + 1
        expected.append(naive([o for s, o in history if s >= oldest]))
        actual.append(window.stats(ticket))

    assert expected == actual


@WINDOW_SETTINGS
@given(
    size=st.integers(1, 20),
    new_size=st.integers(1, 20),
    outcomes=st.lists(st.sampled_from(sorted(OUTCOMES)), max_size=60),
)
def test_count_window_resize_keeps_what_fits(
    size: int, new_size: int, outcomes: list[str]
) -> None:
    """Resizing a count window keeps the most recent calls that fit in both sizes."""
    window = CountWindow(size, 0)
    for ticket, outcome in enumerate(outcomes):
        failed, slow = OUTCOMES[outcome]
        if failed or slow:
            window.add(ticket, failed=failed, slow=slow, now=0.0)

    resized = window.resized(new_size, len(outcomes))

    kept = outcomes[-min(size, new_size) :]
    assert naive(kept) == resized.stats(len(outcomes))
    assert new_size == resized.size
