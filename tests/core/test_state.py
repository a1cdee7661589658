"""The pure state machine: every transition, its events, and the illegal ones."""

from __future__ import annotations

import copy
import functools

import pytest

from cbcontrol import State, StateChanged, Trigger
from cbcontrol._settings import Settings as CoreSettings
from cbcontrol._state import TRANSITIONS, Admission, Machine
from cbcontrol.exceptions import TransitionError

Settings = functools.partial(
    CoreSettings,
    reset_timeout=10.0,
    max_reset_timeout=35.0,
    half_open_max_calls=2,
    success_threshold=2,
)
"""The core's plain settings object, with this module's defaults."""


def changed(
    frm: State,
    to: State,
    trigger: Trigger,
    reason: str,
    at: float,
    retry: float | None = None,
) -> StateChanged:
    """Build the event the machine is expected to emit."""
    return StateChanged("svc", frm, to, trigger, reason, at, retry)


def tripped(m: Machine, now: float, rand: float = 0.5) -> tuple[StateChanged, ...]:
    """Trip a closed machine as the breaker shell does."""
    return m.on_failure(
        probe=Admission.CALL, now=now, rand=rand, trip_reason="too many"
    )


def test_closed_admits_calls_without_events() -> None:
    """A closed machine admits ordinary calls and emits nothing."""
    m = Machine("svc", Settings(), now=0.0)

    assert (Admission.CALL, ()) == m.admit(1.0)
    assert State.CLOSED == m.state


def test_failure_without_trip_verdict_keeps_closed() -> None:
    """A failure opens the machine only when the policy says it trips."""
    m = Machine("svc", Settings(), now=0.0)

    events = m.on_failure(probe=Admission.CALL, now=1.0, rand=0.5, trip_reason=None)

    assert () == events
    assert State.CLOSED == m.state


def test_full_cycle_emits_every_event_in_order() -> None:
    """Trip, timeout, two probe successes: the exact events of a full recovery."""
    m = Machine("svc", Settings(), now=0.0)
    events: list[StateChanged] = []

    events += tripped(m, now=1.0)
    rejected = m.admit(5.0)
    first, ev = m.admit(11.0)
    events += ev
    second, ev = m.admit(11.5)
    events += ev
    third, _ = m.admit(11.6)
    events += m.on_success(probe=m.episode, now=12.0)
    events += m.on_success(probe=m.episode, now=12.5)

    assert (Admission.REJECT, ()) == rejected
    assert (1, 1, Admission.REJECT) == (first, second, third)
    assert [
        changed(State.CLOSED, State.OPEN, Trigger.TRIP, "too many", 1.0, 10.0),
        changed(
            State.OPEN, State.HALF_OPEN, Trigger.TIMEOUT, "reset timeout elapsed", 11.0
        ),
        changed(
            State.HALF_OPEN,
            State.CLOSED,
            Trigger.PROBES_PASSED,
            "2 probe(s) succeeded",
            12.5,
        ),
    ] == events
    assert State.CLOSED == m.state
    assert 1 == m.times_opened


def test_probe_failure_reopens_with_backoff_up_to_the_cap() -> None:
    """Each failed probe re-opens for reset_timeout * 2**n, capped at 35 s."""
    m = Machine("svc", Settings(), now=0.0)
    tripped(m, now=0.0)
    waits = []

    now = 0.0
    for _ in range(4):
        now = m.open_until
        m.admit(now)
        (event,) = m.on_failure(probe=m.episode, now=now, rand=0.5, trip_reason=None)
        waits.append(event.retry_after_s)

    assert [20.0, 35.0, 35.0, 35.0] == waits
    assert State.OPEN == m.state
    assert 5 == m.times_opened


def test_close_resets_the_backoff() -> None:
    """After a close, the next trip waits the base reset_timeout again."""
    m = Machine("svc", Settings(success_threshold=1), now=0.0)
    tripped(m, now=0.0)
    m.admit(10.0)
    m.on_failure(probe=m.episode, now=10.0, rand=0.5, trip_reason=None)
    m.admit(30.0)
    m.on_success(probe=m.episode, now=30.0)

    (event,) = tripped(m, now=31.0)

    assert 10.0 == event.retry_after_s


@pytest.mark.parametrize(("rand", "expected"), [(0.0, 8.0), (0.5, 10.0), (1.0, 12.0)])
def test_jitter_spreads_the_open_time(rand: float, expected: float) -> None:
    """jitter=0.2 spreads the open time over ±20% of reset_timeout."""
    m = Machine("svc", Settings(jitter=0.2), now=0.0)

    (event,) = tripped(m, now=0.0, rand=rand)

    assert pytest.approx(expected) == event.retry_after_s
    assert pytest.approx(expected) == m.open_until


def test_ignored_probe_gives_its_slot_back() -> None:
    """A probe whose outcome is ignored frees its slot for the next caller."""
    m = Machine("svc", Settings(half_open_max_calls=1), now=0.0)
    tripped(m, now=0.0)
    m.admit(10.0)

    blocked, _ = m.admit(10.1)
    m.on_ignored(probe=m.episode)
    freed, _ = m.admit(10.2)

    assert Admission.REJECT == blocked
    assert 1 == freed


def test_a_probe_from_an_earlier_episode_counts_for_nothing() -> None:
    """A probe that outlives its half-open episode frees no slot of the next one."""
    m = Machine("svc", Settings(half_open_max_calls=1, success_threshold=1), now=0.0)
    tripped(m, now=0.0)
    stale, _ = m.admit(10.0)
    m.on_ignored(probe=stale)
    failing, _ = m.admit(10.0)
    m.on_failure(probe=failing, now=10.0, rand=0.5, trip_reason=None)
    current, _ = m.admit(31.0)

    late = m.on_success(probe=stale, now=31.5)
    blocked, _ = m.admit(31.6)

    assert (1, 1, 2) == (stale, failing, current)
    assert () == late
    assert Admission.REJECT == blocked
    assert State.HALF_OPEN == m.state


def test_force_open_sticks_through_time_and_successes() -> None:
    """A forced-open machine rejects forever and no outcome or timer closes it."""
    m = Machine("svc", Settings(), now=0.0)

    events = m.force_open(1.0, "INC-42")
    verdicts = {m.admit(t)[0] for t in (2.0, 1e6, 1e9)}
    after_success = m.on_success(probe=m.episode, now=1e9)

    assert [
        changed(State.CLOSED, State.FORCED_OPEN, Trigger.FORCE_OPEN, "INC-42", 1.0)
    ] == list(events)
    assert {Admission.REJECT} == verdicts
    assert () == after_success
    assert State.FORCED_OPEN == m.state
    assert m.retry_after(5.0) is None
    assert "INC-42" == m.override_reason


def test_force_closed_admits_and_failures_never_open() -> None:
    """A forced-closed machine admits every call and ignores trip verdicts."""
    m = Machine("svc", Settings(), now=0.0)
    m.force_closed(1.0, None)

    events = m.on_failure(
        probe=Admission.CALL, now=2.0, rand=0.5, trip_reason="too many"
    )

    assert () == events
    assert (Admission.CALL, ()) == m.admit(3.0)
    assert State.FORCED_CLOSED == m.state


def test_clear_override_returns_to_closed() -> None:
    """Clearing a forced mode emits one event and lands in CLOSED."""
    m = Machine("svc", Settings(), now=0.0)
    m.force_open(1.0, "x")

    events = m.clear_override(2.0)

    assert [
        changed(
            State.FORCED_OPEN,
            State.CLOSED,
            Trigger.CLEAR_OVERRIDE,
            "override cleared",
            2.0,
        )
    ] == list(events)
    assert m.override_reason is None


def test_clear_override_on_automatic_state_is_a_no_op() -> None:
    """Clearing when nothing is forced changes nothing and emits nothing."""
    m = Machine("svc", Settings(), now=0.0)
    tripped(m, now=0.0)

    assert () == m.clear_override(1.0)
    assert State.OPEN == m.state


def test_forcing_the_same_mode_twice_updates_only_the_reason() -> None:
    """Re-forcing an already forced mode emits nothing but records the new reason."""
    m = Machine("svc", Settings(), now=0.0)
    m.force_open(1.0, "first")

    events = m.force_open(2.0, "second")

    assert () == events
    assert "second" == m.override_reason


@pytest.mark.parametrize("start", list(State))
def test_reset_closes_from_every_state(start: State) -> None:
    """reset() lands in CLOSED from any state, with one event unless already closed."""
    m = Machine("svc", Settings(), now=0.0)
    m.state = start

    events = m.reset(5.0)

    expected = (
        []
        if start is State.CLOSED
        else [changed(start, State.CLOSED, Trigger.RESET, "reset", 5.0)]
    )
    assert expected == list(events)
    assert State.CLOSED == m.state


def test_state_at_reads_an_elapsed_open_as_half_open_without_moving() -> None:
    """state_at() reports what the next caller meets, without changing the machine."""
    m = Machine("svc", Settings(), now=0.0)
    tripped(m, now=0.0)

    assert State.OPEN == m.state_at(9.9)
    assert State.HALF_OPEN == m.state_at(10.0)
    assert State.OPEN == m.state


@pytest.mark.parametrize(
    ("state", "trigger"),
    [(s, t) for s in State for t in Trigger if (s, t) not in TRANSITIONS],
)
def test_illegal_transition_raises_and_changes_nothing(
    state: State, trigger: Trigger
) -> None:
    """Every pair missing from the table raises TransitionError; the state stays."""
    m = Machine("svc", Settings(), now=0.0)
    m.state = state
    before = {name: copy.copy(getattr(m, name)) for name in Machine.__slots__}

    with pytest.raises(
        TransitionError,
        match=(
            rf'^circuit breaker "svc": no transition from state {state.value!r} '
            rf"on {trigger.value!r}; the state is unchanged$"
        ),
    ):
        m._fire(trigger, 1.0, "test")

    assert before == {name: getattr(m, name) for name in Machine.__slots__}


def test_the_table_is_exactly_the_documented_machine() -> None:
    """The automatic moves are exactly the five of docs/breaker.md."""
    automatic = {
        (frm, trig): to
        for (frm, trig), to in TRANSITIONS.items()
        if trig
        in (
            Trigger.TRIP,
            Trigger.TIMEOUT,
            Trigger.PROBE_FAILED,
            Trigger.PROBE_TIMEOUT,
            Trigger.PROBES_PASSED,
        )
    }

    assert {
        (State.CLOSED, Trigger.TRIP): State.OPEN,
        (State.OPEN, Trigger.TIMEOUT): State.HALF_OPEN,
        (State.HALF_OPEN, Trigger.PROBE_FAILED): State.OPEN,
        (State.HALF_OPEN, Trigger.PROBE_TIMEOUT): State.OPEN,
        (State.HALF_OPEN, Trigger.PROBES_PASSED): State.CLOSED,
    } == automatic
