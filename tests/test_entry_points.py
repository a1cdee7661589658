"""
Every behavioural scenario through every entry point.

``call``, ``acall``, the sync and async decorators, decorated generators and async
generators, ``with`` and ``async with`` share one general path and one fast path per
flavour; this matrix makes sure they behave the same, on the fast path (a fresh,
healthy breaker) and off it.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import pytest

from cbcontrol import BreakerConfig, CircuitBreaker, CircuitOpenError, State, on
from cbcontrol.testing import FakeClock

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterator


class Boom(Exception):
    """A failure of the dependency."""


class Business(Exception):
    """An outcome that is not the dependency's fault (not in failure_on)."""


class Ignored(Exception):
    """An outcome the breaker ignores."""


def behave(what: object, clock: FakeClock) -> int:
    """Do what the scenario says: return 1, take 5 s, or raise."""
    if what == "slow":
        clock.advance(5)
    elif isinstance(what, BaseException):
        raise what
    return 1


def _run_call(b: CircuitBreaker, what: object, clock: FakeClock) -> Any:
    return b.call(behave, what, clock)


def _run_acall(b: CircuitBreaker, what: object, clock: FakeClock) -> Any:
    async def dependency(what: object, clock: FakeClock) -> int:
        return behave(what, clock)

    return asyncio.run(b.acall(dependency, what, clock))


def _run_decorator(b: CircuitBreaker, what: object, clock: FakeClock) -> Any:
    return b(behave)(what, clock)


def _run_async_decorator(b: CircuitBreaker, what: object, clock: FakeClock) -> Any:
    @b
    async def dependency(what: object, clock: FakeClock) -> int:
        return behave(what, clock)

    return asyncio.run(dependency(what, clock))


def _run_generator(b: CircuitBreaker, what: object, clock: FakeClock) -> Any:
    @b
    def rows(what: object, clock: FakeClock) -> Iterator[int]:
        yield behave(what, clock)

    return sum(rows(what, clock))


def _run_async_generator(b: CircuitBreaker, what: object, clock: FakeClock) -> Any:
    @b
    async def rows(what: object, clock: FakeClock) -> AsyncIterator[int]:
        yield behave(what, clock)

    async def consume() -> int:
        return sum([x async for x in rows(what, clock)])

    return asyncio.run(consume())


def _run_with(b: CircuitBreaker, what: object, clock: FakeClock) -> Any:
    with b:
        return behave(what, clock)


def _run_async_with(b: CircuitBreaker, what: object, clock: FakeClock) -> Any:
    async def block() -> int:
        async with b:
            return behave(what, clock)

    return asyncio.run(block())


ENTRY_POINTS: dict[str, Callable[[CircuitBreaker, object, FakeClock], Any]] = {
    "call": _run_call,
    "acall": _run_acall,
    "decorator": _run_decorator,
    "async-decorator": _run_async_decorator,
    "generator": _run_generator,
    "async-generator": _run_async_generator,
    "with": _run_with,
    "async-with": _run_async_with,
}


@pytest.fixture(params=sorted(ENTRY_POINTS))
def entry(request: pytest.FixtureRequest) -> str:
    """The name of the entry point under test."""
    return str(request.param)


@pytest.fixture
def clock() -> FakeClock:
    """A clock that moves only when the scenario says so."""
    return FakeClock(100.0)


@pytest.fixture
def run(entry: str, clock: FakeClock) -> Callable[[CircuitBreaker, object], Any]:
    """Run one call of the scenario through the entry point under test."""
    return lambda b, what: ENTRY_POINTS[entry](b, what, clock)


@pytest.fixture
def make(clock: FakeClock) -> Callable[..., CircuitBreaker]:
    """A breaker on the fake clock that fails on Boom and ignores Ignored."""

    def make(fallback: Any = None, **config: Any) -> CircuitBreaker:
        return CircuitBreaker(
            "svc",
            BreakerConfig(**{"reset_timeout": 10, **config}),
            failure_on=on(Boom),
            ignore=Ignored,
            fallback=fallback,
            clock=clock,
            rand=lambda: 0.5,
        )

    return make


@pytest.mark.parametrize("warm", [0, 70], ids=["first-calls", "after-70-calls"])
def test_successes_and_failures_count_and_trip(
    make: Callable[..., CircuitBreaker], run: Callable[..., Any], warm: int
) -> None:
    """Successes count; max_failures consecutive failures open; then calls reject."""
    b = make(max_failures=2)
    for _ in range(warm):  # past the first, general-path call and a sampled one
        run(b, "ok")

    result = run(b, "ok")
    for _ in range(2):
        with pytest.raises(Boom):
            run(b, Boom())
    with pytest.raises(CircuitOpenError):
        run(b, "ok")
    snap = b.snapshot()

    assert 1 == result
    assert (warm + 1, 2, 1, State.OPEN) == (
        snap.successes,
        snap.failures,
        snap.rejections,
        snap.state,
    )


def test_other_exceptions_are_successes_and_ignored_ones_neither(
    make: Callable[..., CircuitBreaker], run: Callable[..., Any]
) -> None:
    """An exception outside failure_on is a success (it ends a run); ignore: neither."""
    b = make(max_failures=2)

    with pytest.raises(Boom):
        run(b, Boom())
    with pytest.raises(Business):
        run(b, Business())
    with pytest.raises(Ignored):
        run(b, Ignored())
    with pytest.raises(Boom):
        run(b, Boom())
    snap = b.snapshot()

    assert (1, 2, 1, 1) == (
        snap.successes,
        snap.failures,
        snap.ignored,
        snap.consecutive_failures,
    )
    assert State.CLOSED == snap.state


def test_a_probe_closes_the_breaker(
    make: Callable[..., CircuitBreaker], run: Callable[..., Any], clock: FakeClock
) -> None:
    """After the reset timeout a successful call is a probe and closes it."""
    b = make(max_failures=1)
    with pytest.raises(Boom):
        run(b, Boom())
    clock.advance(10)

    run(b, "ok")

    assert State.CLOSED == b.state


def test_slow_calls_are_timed_and_trip(
    make: Callable[..., CircuitBreaker], run: Callable[..., Any]
) -> None:
    """Calls slower than slow_call_duration count as slow and trip by their rate."""
    b = make(
        slow_call_rate_threshold=50,
        slow_call_duration="2s",
        window_size=2,
        minimum_calls=2,
    )

    run(b, "ok")
    run(b, "slow")
    snap = b.snapshot()

    assert (1, State.OPEN) == (snap.slow_calls, snap.state)


def test_rejected_calls_are_served_by_the_fallback_where_there_are_arguments(
    make: Callable[..., CircuitBreaker], run: Callable[..., Any], entry: str
) -> None:
    """Every entry point but `with` serves a rejected call from the fallback."""
    answer: object = [-1] if entry.endswith("generator") else -1  # what it yields
    b = make(max_failures=1, fallback=lambda *args: answer)
    with pytest.raises(Boom):
        run(b, Boom())

    if entry.endswith("with"):
        with pytest.raises(CircuitOpenError):
            run(b, "ok")
        assert 0 == b.snapshot().fallbacks
    else:
        assert -1 == run(b, "ok")
        assert 1 == b.snapshot().fallbacks
