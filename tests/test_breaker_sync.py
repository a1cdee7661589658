"""The breaker shell, driven synchronously on a fake clock."""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING

import pytest

from cbcontrol import (
    BreakerConfig,
    BreakerSnapshot,
    CallRecorded,
    CircuitBreaker,
    CircuitOpenError,
    Outcome,
    State,
    StateChanged,
    Trigger,
    on,
    when,
)
from cbcontrol.testing import FakeClock, capture_events

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator


class Boom(Exception):
    """The dependency failed."""


class NotFound(Exception):
    """A business outcome that must not trip the breaker."""


def ok(value: int = 1) -> int:
    """A healthy dependency."""
    return value


def bad() -> int:
    """A failing dependency."""
    raise Boom


def fail(b: CircuitBreaker, times: int = 1) -> None:
    """Make ``times`` failing calls through ``b``."""
    for _ in range(times):
        with pytest.raises(Boom):
            b.call(bad)


def succeed(b: CircuitBreaker, times: int = 1) -> None:
    """Make ``times`` successful calls through ``b``."""
    for _ in range(times):
        b.call(ok)


@pytest.fixture
def clock() -> FakeClock:
    """A clock that only moves when the test says so."""
    return FakeClock(start=100.0)


@pytest.fixture
def make(clock: FakeClock) -> Callable[..., CircuitBreaker]:
    """Build a breaker named "svc" on the fake clock with deterministic jitter."""

    def make(**kwargs: object) -> CircuitBreaker:
        options = {
            k: kwargs.pop(k)
            for k in ("failure_on", "ignore", "fallback")
            if k in kwargs
        }
        config = BreakerConfig(**{"reset_timeout": 10, **kwargs})  # type: ignore[arg-type]
        return CircuitBreaker("svc", config, clock=clock, rand=lambda: 0.5, **options)  # type: ignore[arg-type]

    return make


def test_trips_after_max_failures_consecutive_failures(
    make: Callable[..., CircuitBreaker],
) -> None:
    """Three consecutive failures open a breaker with max_failures=3."""
    b = make(max_failures=3)

    fail(b, 2)
    before = b.state
    fail(b)

    assert State.CLOSED == before
    assert State.OPEN == b.state


def test_a_success_breaks_the_consecutive_run(
    make: Callable[..., CircuitBreaker],
) -> None:
    """Failures separated by successes never reach max_failures consecutive."""
    b = make(max_failures=3)

    for _ in range(10):
        fail(b, 2)
        succeed(b)

    assert State.CLOSED == b.state
    assert 20 == b.snapshot().failures


def test_open_breaker_rejects_with_retry_after(
    make: Callable[..., CircuitBreaker], clock: FakeClock
) -> None:
    """An open breaker raises CircuitOpenError naming itself and when to retry."""
    b = make(max_failures=1)
    fail(b)
    clock.advance(4)
    calls = []

    with pytest.raises(
        CircuitOpenError, match=r'^circuit breaker "svc" is open; retry after 6.000s$'
    ) as info:
        b.call(calls.append, 1)

    assert [] == calls
    assert ("svc", "open", 6.0) == (
        info.value.breaker,
        info.value.state,
        info.value.retry_after_s,
    )


def test_recovers_through_half_open(
    make: Callable[..., CircuitBreaker], clock: FakeClock
) -> None:
    """After reset_timeout a successful probe closes the breaker, with the events."""
    b = make(max_failures=1)

    with capture_events(b) as events:
        fail(b)
        clock.advance(10)
        state_before_probe = b.state
        result = b.call(ok, 7)

    assert State.HALF_OPEN == state_before_probe
    assert 7 == result
    assert [
        StateChanged(
            "svc",
            State.CLOSED,
            State.OPEN,
            Trigger.TRIP,
            "1 consecutive failures (max_failures=1)",
            100.0,
            10.0,
        ),
        StateChanged(
            "svc",
            State.OPEN,
            State.HALF_OPEN,
            Trigger.TIMEOUT,
            "reset timeout elapsed",
            110.0,
        ),
        StateChanged(
            "svc",
            State.HALF_OPEN,
            State.CLOSED,
            Trigger.PROBES_PASSED,
            "1 probe(s) succeeded",
            110.0,
        ),
    ] == events


def test_half_open_admits_exactly_max_calls_and_rejects_the_rest_at_once(
    make: Callable[..., CircuitBreaker], clock: FakeClock
) -> None:
    """With half_open_max_calls=2, a third concurrent probe is rejected."""
    b = make(max_failures=1, half_open_max_calls=2, success_threshold=2)
    fail(b)
    clock.advance(10)

    with b, b:
        with pytest.raises(CircuitOpenError) as info:
            b.call(ok)
        during = b.state

    assert "half_open" == info.value.state
    assert State.HALF_OPEN == during
    assert State.CLOSED == b.state


def test_failed_probe_reopens_with_backoff(
    make: Callable[..., CircuitBreaker], clock: FakeClock
) -> None:
    """A failed probe re-opens the breaker for twice the reset timeout."""
    b = make(max_failures=1)
    fail(b)
    clock.advance(10)

    fail(b)

    assert State.OPEN == b.state
    assert 20.0 == b.snapshot().retry_after_s
    assert 2 == b.snapshot().times_opened


def test_failure_rate_trips_over_count_window(
    make: Callable[..., CircuitBreaker],
) -> None:
    """50% failures over a 10-call window trip once minimum_calls are in it."""
    b = make(
        max_failures=100, window_size=10, failure_rate_threshold=50, minimum_calls=6
    )

    fail(b, 2)
    succeed(b, 2)
    fail(b)
    five_calls = b.state
    fail(b)

    assert State.CLOSED == five_calls
    assert State.OPEN == b.state
    assert 4 * 100 / 6 == pytest.approx(b.snapshot().failure_rate)


def test_old_failures_slide_out_of_the_count_window(
    make: Callable[..., CircuitBreaker],
) -> None:
    """Failures older than the last window_size calls no longer count."""
    b = make(
        max_failures=100, window_size=4, failure_rate_threshold=75, minimum_calls=4
    )

    fail(b, 2)
    succeed(b, 4)
    fail(b, 2)
    snap = b.snapshot()

    assert State.CLOSED == b.state
    assert (4, 50.0) == (snap.window_calls, snap.failure_rate)


def test_failure_rate_over_time_window_forgets_old_seconds(
    make: Callable[..., CircuitBreaker], clock: FakeClock
) -> None:
    """Failures older than window_size seconds leave a time window."""
    b = make(
        max_failures=100,
        window_type="time",
        window_size=5,
        failure_rate_threshold=60,
        minimum_calls=4,
    )

    fail(b, 2)
    succeed(b, 2)
    clock.advance(5)
    succeed(b, 3)
    fail(b)
    snap = b.snapshot()

    assert State.CLOSED == b.state
    assert (4, 25.0) == (snap.window_calls, snap.failure_rate)


def test_time_window_trips_on_recent_failures(
    make: Callable[..., CircuitBreaker], clock: FakeClock
) -> None:
    """A failure rate over the threshold within the time window trips."""
    b = make(
        max_failures=100,
        window_type="time",
        window_size=5,
        failure_rate_threshold=50,
        minimum_calls=4,
    )

    succeed(b, 2)
    clock.advance(1.5)
    fail(b, 2)

    assert State.OPEN == b.state


def test_slow_calls_trip_the_breaker(
    make: Callable[..., CircuitBreaker], clock: FakeClock
) -> None:
    """Successful but slow calls trip once their rate reaches the threshold."""
    b = make(
        slow_call_rate_threshold=50,
        slow_call_duration="2s",
        window_size=4,
        minimum_calls=4,
    )

    def slow() -> int:
        clock.advance(3)
        return 1

    succeed(b, 2)
    b.call(slow)
    closed_after_one = b.state
    b.call(slow)
    snap = b.snapshot()

    assert State.CLOSED == closed_after_one
    assert State.OPEN == snap.state
    assert (4, 0, 2) == (snap.successes, snap.failures, snap.slow_calls)
    assert 3.0 == snap.p99_response_time_s


def test_failure_on_and_ignore_classify_exceptions(
    make: Callable[..., CircuitBreaker],
) -> None:
    """failure_on matches fail, ignore matches count as neither, others succeed."""
    b = make(max_failures=2, failure_on=on(Boom, KeyError), ignore=NotFound)

    def raise_(exc: BaseException) -> None:
        raise exc

    for exc in (NotFound(), ValueError(), NotFound(), Boom()):
        with pytest.raises(type(exc)):
            b.call(raise_, exc)
    snap = b.snapshot()

    assert (1, 2, 1) == (snap.failures, snap.ignored, snap.successes)
    assert State.CLOSED == b.state


def test_base_exceptions_are_never_failures(
    make: Callable[..., CircuitBreaker],
) -> None:
    """KeyboardInterrupt and friends pass through without counting as failures."""
    b = make(max_failures=1)

    def interrupted() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        b.call(interrupted)

    assert State.CLOSED == b.state
    assert 1 == b.snapshot().ignored


def test_predicate_rules_compose(make: Callable[..., CircuitBreaker]) -> None:
    """A predicate rule combined with | counts only the exceptions it matches."""
    rule = on(KeyError) | when(lambda e: "5xx" in str(e))
    b = make(max_failures=1, failure_on=rule)

    def raise_(msg: str) -> None:
        raise RuntimeError(msg)

    with pytest.raises(RuntimeError):
        b.call(raise_, "4xx")
    closed = b.state
    with pytest.raises(RuntimeError):
        b.call(raise_, "5xx")

    assert State.CLOSED == closed
    assert State.OPEN == b.state
    assert "on(KeyError) | when('<lambda>')" == repr(rule)
    assert (~rule)(ValueError())


def test_fallback_serves_rejected_calls(make: Callable[..., CircuitBreaker]) -> None:
    """A fallback answers rejected calls with the same arguments and is counted."""
    b = make(max_failures=1, fallback=lambda value: -value)
    fail(b)

    served = b.call(ok, 5)

    assert -5 == served
    assert (1, 1) == (b.snapshot().fallbacks, b.snapshot().rejections)


def test_force_open_rejects_until_cleared(
    make: Callable[..., CircuitBreaker], clock: FakeClock
) -> None:
    """force_open rejects every call whatever the clock does, until cleared."""
    b = make()
    b.force_open("INC-42 PSP down")
    clock.advance(10_000)

    with pytest.raises(
        CircuitOpenError,
        match=r'^circuit breaker "svc" is forced_open \(INC-42 PSP down\); '
        r"until an operator clears it$",
    ):
        b.call(ok)
    b.clear_override()

    assert 1 == b.call(ok)
    assert State.CLOSED == b.state


def test_force_closed_admits_and_never_trips(
    make: Callable[..., CircuitBreaker],
) -> None:
    """force_closed admits every call and records failures without opening."""
    b = make(max_failures=1)
    b.force_closed()

    fail(b, 5)

    assert State.FORCED_CLOSED == b.state
    assert 5 == b.snapshot().failures


def test_reset_closes_and_zeroes_counters(make: Callable[..., CircuitBreaker]) -> None:
    """reset() closes an open breaker, clears backoff and zeroes every counter."""
    b = make(max_failures=1)
    fail(b)
    with pytest.raises(CircuitOpenError):
        b.call(ok)

    b.reset()
    snap = b.snapshot()

    assert State.CLOSED == snap.state
    assert (0, 0, 0, 0) == (
        snap.calls,
        snap.failures,
        snap.rejections,
        snap.window_calls,
    )


def test_snapshot_reports_every_metric(make: Callable[..., CircuitBreaker]) -> None:
    """snapshot() reports counters, window rates and state in one frozen object."""
    b = make(max_failures=10, window_size=10, failure_rate_threshold=90)
    succeed(b, 3)
    fail(b)

    snap = b.snapshot()

    assert (
        BreakerSnapshot(
            name="svc",
            state=State.CLOSED,
            calls=4,
            successes=3,
            failures=1,
            ignored=0,
            rejections=0,
            fallbacks=0,
            slow_calls=0,
            window_calls=4,
            failure_rate=25.0,
            slow_call_rate=0.0,
            consecutive_failures=1,
            times_opened=0,
            last_state_change=100.0,
            retry_after_s=None,
            avg_response_time_s=0.0,
            p99_response_time_s=0.0,
            override_reason=None,
        )
        == snap
    )


def test_reconfigure_keeps_state_and_counters(
    make: Callable[..., CircuitBreaker],
) -> None:
    """A retune keeps counters and the consecutive run, and applies the new limit."""
    b = make(max_failures=5)
    fail(b, 2)

    b.reconfigure(BreakerConfig(max_failures=3, reset_timeout=10))
    fail(b)

    assert 3 == b.config.max_failures
    assert State.OPEN == b.state
    assert 3 == b.snapshot().failures


def test_reconfigure_keeps_an_open_breaker_open(
    make: Callable[..., CircuitBreaker],
) -> None:
    """A retune of an open breaker does not close it."""
    b = make(max_failures=1)
    fail(b)

    b.reconfigure(BreakerConfig(max_failures=9, reset_timeout=10))

    assert State.OPEN == b.state


def test_shrinking_the_window_keeps_what_fits(
    make: Callable[..., CircuitBreaker],
) -> None:
    """A smaller window keeps its most recent calls and their failures."""
    b = make(max_failures=100, window_size=10, failure_rate_threshold=90)
    fail(b, 3)
    succeed(b, 3)

    b.reconfigure(
        BreakerConfig(
            max_failures=100, window_size=4, minimum_calls=4, failure_rate_threshold=90
        )
    )
    snap = b.snapshot()

    assert (4, 25.0) == (snap.window_calls, snap.failure_rate)


def test_changing_window_type_starts_an_empty_window(
    make: Callable[..., CircuitBreaker],
) -> None:
    """A switch from count to time window starts empty; totals are kept."""
    b = make(max_failures=100, window_size=10, failure_rate_threshold=90)
    fail(b, 3)

    b.reconfigure(BreakerConfig(max_failures=100, window_type="time", window_size=10))
    snap = b.snapshot()

    assert (0, 3) == (snap.window_calls, snap.failures)


def test_call_refuses_a_coroutine_function_and_names_the_fix(
    make: Callable[..., CircuitBreaker],
) -> None:
    """call() given a coroutine function raises TypeError pointing to acall()."""
    b = make()

    async def fetch() -> int:
        """A coroutine function."""
        return 1

    with pytest.raises(
        TypeError,
        match=r"^CircuitBreaker.call\(\) got a coroutine function; "
        r"use `await breaker.acall\(...\)` \(breaker 'svc'\)$",
    ):
        b.call(fetch)  # type: ignore[unused-coroutine]

    assert 0 == b.snapshot().calls - b.snapshot().ignored


def test_decorator_keeps_metadata_and_counts(
    make: Callable[..., CircuitBreaker],
) -> None:
    """The decorator preserves the function's identity and records its calls."""
    b = make(max_failures=2)

    @b
    def charge(amount: int) -> int:
        """Charge an amount."""
        return amount * 2

    results = [charge(i) for i in range(3)]

    assert [0, 2, 4] == results
    assert ("charge", "Charge an amount.") == (charge.__name__, charge.__doc__)
    assert 3 == b.snapshot().successes


def test_decorated_function_rejects_when_open(
    make: Callable[..., CircuitBreaker],
) -> None:
    """A decorated function fails fast once its breaker is open."""
    b = make(max_failures=2)
    guarded = b(bad)

    for _ in range(2):
        with pytest.raises(Boom):
            guarded()

    with pytest.raises(CircuitOpenError):
        guarded()


def test_decorated_generator_is_one_call(make: Callable[..., CircuitBreaker]) -> None:
    """A decorated generator counts its whole iteration as one call."""
    b = make(max_failures=1)

    @b
    def rows(n: int) -> Iterator[int]:
        yield from range(n)

    @b
    def broken() -> Iterator[int]:
        yield 1
        raise Boom

    collected = list(rows(3))
    with pytest.raises(Boom):
        list(broken())

    assert [0, 1, 2] == collected
    assert (1, 1) == (b.snapshot().successes, b.snapshot().failures)
    assert State.OPEN == b.state


def test_decorator_on_a_partial_of_a_sync_function(
    make: Callable[..., CircuitBreaker],
) -> None:
    """A functools.partial of a sync function is wrapped as a sync call."""
    b = make()

    guarded = b(functools.partial(ok, 9))

    assert 9 == guarded()


def test_listeners_get_calls_and_a_broken_listener_is_contained(
    make: Callable[..., CircuitBreaker], caplog: pytest.LogCaptureFixture
) -> None:
    """Call listeners see each outcome; one that raises is logged, not propagated."""
    b = make(max_failures=1)
    seen: list[CallRecorded] = []

    def broken(event: object) -> None:
        raise RuntimeError("listener bug")

    b.on_call(broken)
    unsubscribe = b.on_call(seen.append)
    with caplog.at_level(logging.ERROR, logger="cbcontrol"):
        succeed(b)
        fail(b)
        with pytest.raises(CircuitOpenError):
            b.call(ok)
    unsubscribe()
    b.reset()
    succeed(b)

    assert [Outcome.SUCCESS, Outcome.FAILURE, Outcome.REJECTED] == [
        e.outcome for e in seen
    ]
    assert isinstance(seen[1].exception, Boom)
    assert 3 <= sum("listener" in r.getMessage() for r in caplog.records)


def test_state_changes_are_logged(
    make: Callable[..., CircuitBreaker], caplog: pytest.LogCaptureFixture
) -> None:
    """Opening logs a warning that names the breaker and the reason."""
    b = make(max_failures=1)

    with caplog.at_level(logging.INFO, logger="cbcontrol"):
        fail(b)

    assert [
        (
            (
                'circuit breaker "svc": closed -> open '
                "(1 consecutive failures (max_failures=1))"
            ),
            logging.WARNING,
        )
    ] == [(r.getMessage(), r.levelno) for r in caplog.records]
