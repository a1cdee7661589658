"""
Breaker semantics of DESIGN.md §3 / docs/breaker.md, and the bugs they fixed.

Each test of a fix here failed on the engine before v2 (checked against its last
commit); the others pin behaviour that stays.
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import pytest
from pydantic import ValidationError

from cbcontrol import (
    BreakerConfig,
    CircuitBreaker,
    CircuitOpenError,
    State,
    StateChanged,
    Trigger,
    on,
    when,
)
from cbcontrol.testing import FakeClock, capture_events

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterator


class Boom(Exception):
    """The dependency failed."""


def ok() -> int:
    """A healthy dependency."""
    return 1


def bad() -> int:
    """A failing dependency."""
    raise Boom


@pytest.fixture
def clock() -> FakeClock:
    """A clock that only moves when the test says so."""
    return FakeClock(start=100.0)


@pytest.fixture
def make(clock: FakeClock) -> Callable[..., CircuitBreaker]:
    """Build a breaker named "svc" on the fake clock with deterministic jitter."""

    def make(options: dict[str, Any] | None = None, **config: Any) -> CircuitBreaker:
        return CircuitBreaker(
            "svc",
            BreakerConfig(**{"reset_timeout": 10, **config}),
            clock=clock,
            rand=lambda: 0.5,
            **(options or {}),
        )

    return make


def fail(b: CircuitBreaker, times: int = 1) -> None:
    """Make ``times`` failing calls."""
    for _ in range(times):
        with pytest.raises(Boom):
            b.call(bad)


# -- outcomes --------------------------------------------------------------------------


def test_a_raising_rule_keeps_the_error_and_frees_the_probe_slot(
    make: Callable[..., CircuitBreaker],
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A failure_on that raises: the app's error propagates, counts, frees the slot."""

    def broken_rule(exc: BaseException) -> bool:
        raise RuntimeError("rule bug")

    b = make({"failure_on": when(broken_rule)}, max_failures=1)
    fail(b)  # counted as a failure: the rule could not tell
    clock.advance(10)

    with caplog.at_level(logging.ERROR, logger="cbcontrol"):
        fail(b)  # the probe fails the same way: re-opens
    clock.advance(20)
    admitted = b.call(ok)  # a slot was free again: the probe ran

    assert 1 == admitted
    assert State.CLOSED == b.state
    assert "an exception rule raised" in caplog.text


def test_a_success_ends_the_consecutive_run_in_the_snapshot(
    make: Callable[..., CircuitBreaker],
) -> None:
    """snapshot().consecutive_failures is 0 after a success."""
    b = make(max_failures=5)
    fail(b, 3)

    b.call(ok)

    assert 0 == b.snapshot().consecutive_failures


def test_acall_of_a_sync_function_is_refused_and_not_counted(
    make: Callable[..., CircuitBreaker],
) -> None:
    """acall(sync_fn) raises TypeError naming the fix; the breaker stays closed."""
    b = make(max_failures=2)

    async def twice() -> None:
        """Call acall with a sync function twice."""
        for _ in range(2):
            with pytest.raises(
                TypeError,
                match=r"^CircuitBreaker.acall\(\) needs an async function, got "
                r"<function ok at .*>; use `breaker.call\(...\)` for sync functions "
                r"\(breaker 'svc'\)$",
            ):
                await b.acall(ok)  # type: ignore[arg-type]

    asyncio.run(twice())

    assert State.CLOSED == b.state
    assert 0 == b.snapshot().failures


def test_the_sync_decorator_refuses_coroutines_on_its_fast_path(
    make: Callable[..., CircuitBreaker],
) -> None:
    """A decorated sync function that returns a coroutine is refused in any state."""
    b = make()

    async def fetch() -> int:
        """A coroutine function."""
        return 1

    guarded = b(lambda: fetch())  # noqa: PLW0108 - a sync function returning one
    outcomes = []
    for _ in range(3):  # the first call takes the general path, the others the fast
        with pytest.raises(TypeError, match="got a coroutine function"):
            guarded()
        outcomes.append(b.snapshot().successes)

    assert [0, 0, 0] == outcomes


def test_decorated_generators_serve_the_fallback(
    make: Callable[..., CircuitBreaker],
) -> None:
    """A rejected generator call iterates what the fallback returns."""
    b = make({"fallback": lambda n: ["cached"] * n}, max_failures=1)
    fail(b)

    @b
    def rows(n: int) -> Iterator[str]:
        yield from ["live"] * n

    @b
    async def arows(n: int) -> AsyncIterator[str]:
        """An async generator of live rows."""
        for _ in range(n):
            yield "live"

    async def consume() -> list[str]:
        """Collect the async rows."""
        return [x async for x in arows(1)]

    assert ["cached", "cached"] == list(rows(2))
    assert ["cached"] == asyncio.run(consume())
    assert 2 == b.snapshot().fallbacks


# -- half-open -------------------------------------------------------------------------


def test_a_slow_probe_reopens_a_breaker_that_opened_for_slowness(
    make: Callable[..., CircuitBreaker], clock: FakeClock
) -> None:
    """Probes are judged like closed calls: a slow probe breaches the slow rate."""
    b = make(
        slow_call_rate_threshold=50,
        slow_call_duration="1s",
        window_size=2,
        minimum_calls=2,
    )

    def slow() -> int:
        clock.advance(2)
        return 1

    b.call(slow)
    b.call(slow)
    opened = b.state
    clock.advance(10)
    with capture_events(b) as events:
        b.call(slow)

    assert State.OPEN == opened
    assert [Trigger.TIMEOUT, Trigger.PROBE_FAILED] == [e.trigger for e in events]
    assert "slow-call rate 100.0% >= 50% over 1 probes" == events[-1].reason
    assert State.OPEN == b.state


def test_rate_rules_judge_the_probes_of_a_rate_only_breaker(
    make: Callable[..., CircuitBreaker], clock: FakeClock
) -> None:
    """Without the consecutive rule, probes close unless their failure rate breaches."""
    b = make(
        max_failures=None,
        failure_rate_threshold=50,
        window_size=4,
        minimum_calls=2,
        half_open_max_calls=4,
        success_threshold=4,
    )
    fail(b, 2)
    clock.advance(10)

    fail(b)  # one failed probe of four is 25%: the episode goes on
    still = b.state
    for _ in range(3):
        b.call(ok)

    assert State.HALF_OPEN == still
    assert State.CLOSED == b.state


def test_a_probe_that_outlives_the_half_open_wait_frees_its_slot_and_reopens(
    make: Callable[..., CircuitBreaker], clock: FakeClock
) -> None:
    """Past half_open_max_wait the breaker reads open, re-opens and frees the slot."""
    b = make(max_failures=1, half_open_max_wait="5s")
    fail(b)
    clock.advance(10)
    b.__enter__()  # a probe that hangs
    clock.advance(5)

    reads = b.state
    with capture_events(b) as events, pytest.raises(CircuitOpenError):
        b.call(ok)
    clock.advance(20)  # the re-open waits twice as long (backoff)
    admitted = b.call(ok)

    assert State.OPEN == reads
    assert [
        StateChanged(
            "svc",
            State.HALF_OPEN,
            State.OPEN,
            Trigger.PROBE_TIMEOUT,
            "probe(s) still running after the half-open wait of 5s",
            115.0,
            20.0,
        )
    ] == events
    assert 1 == admitted


def test_the_half_open_wait_defaults_to_request_timeout(
    make: Callable[..., CircuitBreaker], clock: FakeClock
) -> None:
    """half_open_max_wait null means request_timeout."""
    b = make(max_failures=1, request_timeout="3s")
    fail(b)
    clock.advance(10)
    b.__enter__()

    clock.advance(2.9)
    before = b.state
    clock.advance(0.1)

    assert (State.HALF_OPEN, State.OPEN) == (before, b.state)


# -- trip rules ------------------------------------------------------------------------


def test_a_success_that_reaches_minimum_calls_can_trip(
    make: Callable[..., CircuitBreaker],
) -> None:
    """Rates are judged on every recorded call once minimum_calls is reached."""
    b = make(max_failures=None, failure_rate_threshold=50, minimum_calls=4)
    fail(b, 3)
    before = b.state

    b.call(ok)  # 3 failures of 4 calls: 75%

    assert State.CLOSED == before
    assert State.OPEN == b.state


def test_old_successes_leaving_a_time_window_can_trip_it(
    make: Callable[..., CircuitBreaker], clock: FakeClock
) -> None:
    """A time window judges again when it rolls: the rate can rise as calls expire."""
    b = make(
        max_failures=None,
        failure_rate_threshold=50,
        minimum_calls=4,
        window_type="time",
        window_size=4,
    )
    for _ in range(10):
        b.call(ok)
    clock.advance(2)
    fail(b, 3)  # 3 of 13
    clock.advance(2.5)  # the 10 successes leave the window

    b.call(ok)  # 3 failures of 4 calls

    assert State.OPEN == b.state


def test_max_failures_null_needs_a_rate_rule_and_disables_the_run(
    make: Callable[..., CircuitBreaker],
) -> None:
    """max_failures: null turns the consecutive rule off; alone it is refused."""
    b = make(max_failures=None, failure_rate_threshold=90, minimum_calls=50)

    fail(b, 20)

    assert State.CLOSED == b.state
    with pytest.raises(ValidationError, match="max_failures may be null only when"):
        BreakerConfig(max_failures=None)


# -- config, naming, timing ------------------------------------------------------------


def test_with_changes_and_model_copy_validate() -> None:
    """Deriving a config validates the change; an invalid one is refused."""
    config = BreakerConfig(max_failures=3)

    derived = config.with_changes(reset_timeout="1m")
    copied = config.model_copy(update={"jitter": 0.5})

    assert (3, 60.0, 0.5) == (
        derived.max_failures,
        derived.reset_timeout,
        copied.jitter,
    )
    with pytest.raises(ValidationError, match="greater than or equal to 1"):
        config.with_changes(max_failures=0)
    with pytest.raises(ValidationError, match="less than 1"):
        config.model_copy(update={"jitter": 5})


def test_str_is_the_name_and_config_round_trips(
    make: Callable[..., CircuitBreaker],
) -> None:
    """str(breaker) is its name; a default breaker's config is BreakerConfig()."""
    assert "svc" == str(make())
    assert BreakerConfig() == CircuitBreaker("plain").config


def test_building_a_breaker_does_not_import_pydantic() -> None:
    """A breaker with the default config runs without loading pydantic."""
    code = (
        "import sys, cbcontrol\n"
        "b = cbcontrol.CircuitBreaker('x')\n"
        "b.call(int)\n"
        "b.snapshot(); b.explain()\n"
        "print('pydantic' in sys.modules)\n"
    )

    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )

    assert "False" == out.stdout.strip()


def test_retry_after_in_every_state(
    make: Callable[..., CircuitBreaker], clock: FakeClock
) -> None:
    """0 when a call would be admitted, the wait while open, the expiry when forced."""
    b = make(max_failures=1)
    closed = b.retry_after
    fail(b)
    clock.advance(4)
    opened = b.retry_after
    clock.advance(6)
    half_open = b.retry_after
    b.__enter__()
    busy = b.retry_after
    b.force_open("INC", expires_in=30)
    forced = b.retry_after
    b.force_open("INC")

    assert (0.0, 6.0, 0.0, 20.0, 30.0) == (closed, opened, half_open, busy, forced)
    assert b.retry_after is None
    assert b.snapshot().retry_after_s is None


def test_request_timeout_cancels_an_awaited_call_and_counts_a_failure() -> None:
    """An awaited call past request_timeout raises TimeoutError, a failure."""
    b = CircuitBreaker("slow", BreakerConfig(max_failures=1, request_timeout=0.05))

    async def hang() -> None:
        """An awaited call that never ends."""
        await asyncio.sleep(30)

    @b
    async def decorated() -> None:
        """A decorated call that never ends."""
        await asyncio.sleep(30)

    async def scenario() -> list[str]:
        """Run each hanging call, reset in between."""
        seen = []
        for call in (lambda: b.acall(hang), decorated):
            try:
                await asyncio.wait_for(call(), timeout=5)
            except TimeoutError as exc:
                seen.append(str(exc))
            except CircuitOpenError:
                seen.append("rejected")
            b.reset()
        return seen

    seen = asyncio.run(scenario())

    message = (
        'circuit breaker "slow": the call took longer than request_timeout (0.05s)'
    )
    assert [message, message] == seen


def test_a_cancelled_call_is_not_a_failure() -> None:
    """Cancellation by the caller is ignored and stays a cancellation."""
    b = CircuitBreaker("c", BreakerConfig(max_failures=1))

    async def scenario() -> None:
        """Cancel a call in flight."""
        task = asyncio.ensure_future(b.acall(asyncio.sleep, 10))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())

    assert (0, 1, State.CLOSED) == (
        b.snapshot().failures,
        b.snapshot().ignored,
        b.state,
    )


def test_time_windows_are_bounded_whatever_their_length() -> None:
    """A one-hour window keeps 16 buckets, as a 16-second one does."""
    hour = CircuitBreaker("h", BreakerConfig(window_type="time", window_size=3600))
    minute = CircuitBreaker("m", BreakerConfig(window_type="time", window_size=60))

    assert 16 * 3 == len(hour._window._buckets)  # type: ignore[union-attr]
    assert 15 * 3 == len(minute._window._buckets)  # type: ignore[union-attr]


def test_on_failure_rule_objects_still_compose(
    make: Callable[..., CircuitBreaker],
) -> None:
    """on() rules keep working as failure_on."""
    b = make({"failure_on": on(KeyError)}, max_failures=1)

    with pytest.raises(Boom):
        b.call(bad)

    assert State.CLOSED == b.state
