"""The breaker shell driven from asyncio: the sync scenarios' async twins."""

from __future__ import annotations

import contextlib
import functools
from typing import TYPE_CHECKING

import pytest

from cbcontrol import BreakerConfig, CircuitBreaker, CircuitOpenError, State
from cbcontrol.testing import FakeClock

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    """cbcontrol's async driver is asyncio-based."""
    return "asyncio"


class Boom(Exception):
    """The dependency failed."""


async def ok(value: int = 1) -> int:
    """A healthy async dependency."""
    return value


async def bad() -> int:
    """A failing async dependency."""
    raise Boom


@pytest.fixture
def clock() -> FakeClock:
    """A clock that only moves when the test says so."""
    return FakeClock(start=100.0)


@pytest.fixture
def make(clock: FakeClock) -> Callable[..., CircuitBreaker]:
    """Build a breaker named "svc" on the fake clock."""

    def make(**kwargs: object) -> CircuitBreaker:
        fallback = kwargs.pop("fallback", None)
        config = BreakerConfig(**{"reset_timeout": 10, **kwargs})  # type: ignore[arg-type]
        return CircuitBreaker(
            "svc",
            config,
            clock=clock,
            rand=lambda: 0.5,
            fallback=fallback,  # type: ignore[arg-type]
        )

    return make


async def afail(b: CircuitBreaker, times: int = 1) -> None:
    """Make ``times`` failing awaited calls through ``b``."""
    for _ in range(times):
        with pytest.raises(Boom):
            await b.acall(bad)


async def test_acall_trips_and_rejects(make: Callable[..., CircuitBreaker]) -> None:
    """Awaited failures trip the breaker and the next acall fails fast."""
    b = make(max_failures=2)

    await afail(b, 2)
    with pytest.raises(CircuitOpenError) as info:
        await b.acall(ok)

    assert "open" == info.value.state
    assert (2, 1) == (b.snapshot().failures, b.snapshot().rejections)


async def test_acall_recovers_through_half_open(
    make: Callable[..., CircuitBreaker], clock: FakeClock
) -> None:
    """After reset_timeout a successful awaited probe closes the breaker."""
    b = make(max_failures=1)
    await afail(b)
    clock.advance(10)

    result = await b.acall(ok, 3)

    assert 3 == result
    assert State.CLOSED == b.state


async def test_async_with_holds_probe_slots(
    make: Callable[..., CircuitBreaker], clock: FakeClock
) -> None:
    """Inside two `async with` probes, a third call is rejected at once."""
    b = make(max_failures=1, half_open_max_calls=2, success_threshold=2)
    await afail(b)
    clock.advance(10)

    async with b, b:
        with pytest.raises(CircuitOpenError):
            await b.acall(ok)

    assert State.CLOSED == b.state


async def test_async_with_records_failures(make: Callable[..., CircuitBreaker]) -> None:
    """An exception leaving `async with` counts as a failure."""
    b = make(max_failures=1)

    with pytest.raises(Boom):
        async with b:
            raise Boom

    assert State.OPEN == b.state


async def test_async_decorator(make: Callable[..., CircuitBreaker]) -> None:
    """The decorator on a coroutine function returns a coroutine function."""
    b = make(max_failures=1)

    @b
    async def fetch(x: int) -> int:
        """Fetch x."""
        return x + 1

    guarded_bad = b(bad)
    first = await fetch(1)
    with pytest.raises(Boom):
        await guarded_bad()
    with pytest.raises(CircuitOpenError):
        await fetch(1)

    assert 2 == first
    assert "Fetch x." == fetch.__doc__


async def test_decorator_understands_partials_and_async_call_objects(
    make: Callable[..., CircuitBreaker],
) -> None:
    """Partials of coroutine functions and objects with async __call__ stay async."""
    b = make()

    class Client:
        """An object whose __call__ is async."""

        async def __call__(self, x: int) -> int:
            return x * 10

    by_partial = b(functools.partial(ok, 4))
    by_object = b(Client())

    assert (4, 50) == (await by_partial(), await by_object(5))
    assert 2 == b.snapshot().successes


async def test_async_generator_is_one_call(make: Callable[..., CircuitBreaker]) -> None:
    """A decorated async generator counts its whole iteration as one call."""
    b = make(max_failures=1)

    @b
    async def stream(n: int) -> AsyncIterator[int]:
        """Yield n items."""
        for i in range(n):
            yield i

    @b
    async def broken() -> AsyncIterator[int]:
        """Yield once, then fail."""
        yield 1
        raise Boom

    items = [i async for i in stream(3)]
    with pytest.raises(Boom):
        _ = [i async for i in broken()]

    assert [0, 1, 2] == items
    assert (1, 1) == (b.snapshot().successes, b.snapshot().failures)
    assert State.OPEN == b.state


async def test_async_fallback_is_awaited(make: Callable[..., CircuitBreaker]) -> None:
    """An async fallback's result is awaited and returned for a rejected acall."""

    async def cached(value: int) -> int:
        """Answer from a cache."""
        return value * 100

    b = make(max_failures=1, fallback=cached)
    await afail(b)

    assert 700 == await b.acall(ok, 7)
    assert 1 == b.snapshot().fallbacks


async def test_fast_path_failures_and_time_windows(
    make: Callable[..., CircuitBreaker], clock: FakeClock
) -> None:
    """Awaited calls on a time-window breaker count failures and roll seconds."""
    b = make(
        max_failures=100,
        window_type="time",
        window_size=2,
        failure_rate_threshold=50,
        minimum_calls=4,
    )

    @b
    async def flaky(fail: bool) -> int:
        """Fail on demand."""
        if fail:
            raise Boom
        return 1

    for fail in (False, True, False):
        with pytest.raises(Boom) if fail else contextlib.nullcontext():
            await flaky(fail)
        clock.advance(1.0)
    await b.acall(ok)
    snap = b.snapshot()

    assert State.CLOSED == snap.state
    assert (4, 1, 3) == (snap.calls, snap.failures, snap.successes)
    assert 2 == snap.window_calls
