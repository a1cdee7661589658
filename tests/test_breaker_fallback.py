"""The fallback chain: response cache, static value, alternative; and where from."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import pytest

from cbcontrol import BreakerConfig, CircuitBreaker, CircuitOpenError
from cbcontrol.testing import FakeClock

if TYPE_CHECKING:
    from collections.abc import Callable


class Boom(Exception):
    """The dependency failed."""


def lookup(key: str) -> str:
    """A healthy dependency answering per key."""
    return f"live:{key}"


def trip(b: CircuitBreaker) -> None:
    """Open the breaker with one failure."""
    with pytest.raises(Boom):
        b.call(lambda: (_ for _ in ()).throw(Boom()))


@pytest.fixture
def clock() -> FakeClock:
    """A clock that only moves when told."""
    return FakeClock(100.0)


@pytest.fixture
def make(clock: FakeClock) -> Callable[..., CircuitBreaker]:
    """A breaker on the fake clock; ``alternative=`` is the code's fallback callable."""

    def make(**kwargs: Any) -> CircuitBreaker:
        options = {
            k: kwargs.pop(k) for k in ("static_fallback", "cache_key") if k in kwargs
        }
        if "alternative" in kwargs:
            options["fallback"] = kwargs.pop("alternative")
        config = BreakerConfig(**{"max_failures": 1, "reset_timeout": 60, **kwargs})
        return CircuitBreaker("svc", config, clock=clock, **options)

    return make


def test_the_cache_serves_the_last_success_for_the_same_arguments(
    make: Callable[..., CircuitBreaker],
) -> None:
    """fallback: cache answers a rejected call with the cached result, if any."""
    b = make(fallback="cache")
    b.call(lookup, "a")
    trip(b)

    with b.result_origin() as origin:
        served = b.call(lookup, "a")
    with pytest.raises(CircuitOpenError):
        b.call(lookup, "b")
    snap = b.snapshot()

    assert ("live:a", "cache") == (served, origin.source)
    assert (1, 1, 1) == (snap.cache_hits, snap.cache_misses, snap.fallbacks)
    assert {"cache": 1, "static": 0, "alternative": 0} == dict(snap.fallbacks_by_source)


def test_cached_answers_expire_after_cache_ttl(
    make: Callable[..., CircuitBreaker], clock: FakeClock
) -> None:
    """A result older than cache_ttl is a miss."""
    b = make(fallback="cache", cache_ttl="30s")
    b.call(lookup, "a")
    trip(b)
    clock.advance(30)

    with pytest.raises(CircuitOpenError):
        b.call(lookup, "a")

    assert 1 == b.snapshot().cache_misses


def test_the_cache_keeps_the_most_recently_used_entries(
    make: Callable[..., CircuitBreaker],
) -> None:
    """At most cache_max_entries results are kept; the least recently used go."""
    b = make(fallback="cache", cache_max_entries=2, static_fallback="static")
    for key in ("a", "b", "c"):
        b.call(lookup, key)
    trip(b)

    answers = [b.call(lookup, key) for key in ("a", "b", "c")]

    assert ["static", "live:b", "live:c"] == answers


def test_a_key_function_and_unhashable_arguments(
    make: Callable[..., CircuitBreaker],
) -> None:
    """cache_key picks the key; arguments that cannot be hashed are not cached."""
    b = make(fallback="cache", cache_key=lambda user, **_: user["id"])
    b.call(lambda user, **_: f"profile:{user['id']}", {"id": 7}, lang="en")
    trip(b)

    served = b.call(lambda user, **_: "live", {"id": 7}, lang="fr")
    unkeyed = make(fallback="cache", static_fallback=None)
    unkeyed.call(lambda d: d, {"not": "hashable"})
    trip(unkeyed)

    assert "profile:7" == served
    assert unkeyed.call(lambda d: d, {"not": "hashable"}) is None


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("none", "static"),
        ("static", "static"),
        ("alternative", "alternative"),
        ("cache", "static"),
    ],
)
def test_the_chain_starts_where_the_field_says(
    make: Callable[..., CircuitBreaker], mode: str, expected: str
) -> None:
    """Static before alternative, unless the field says alternative; cache first."""
    b = make(
        alternative=lambda key: "alternative", static_fallback="static", fallback=mode
    )
    trip(b)

    with b.result_origin() as origin:
        served = b.call(lookup, "a")

    assert (expected, expected) == (served, origin.source)
    assert 1 == b.snapshot().fallbacks_by_source[expected]


def test_a_static_factory_is_called_for_each_rejection(
    make: Callable[..., CircuitBreaker],
) -> None:
    """A callable static fallback makes a fresh value each time."""
    made: list[int] = []
    b = make(static_fallback=lambda: made.append(1) or len(made))
    trip(b)

    assert [1, 2] == [b.call(lookup, "a"), b.call(lookup, "b")]


def test_async_calls_fill_and_use_the_cache(
    make: Callable[..., CircuitBreaker],
) -> None:
    """acall and the async decorator take part in the cache like call."""
    b = make(fallback="cache")

    @b
    async def fetch(key: str) -> str:
        """The dependency."""
        return f"live:{key}"

    async def scenario() -> list[str]:
        """Fill the cache, trip, then be served from it."""
        await fetch("a")
        trip(b)
        return [await fetch("a"), await b.acall(fetch, "a")]

    assert ["live:a", "live:a"] == asyncio.run(scenario())


def test_origin_is_primary_when_the_call_ran(
    make: Callable[..., CircuitBreaker],
) -> None:
    """A result from the dependency itself is primary, even inside nested tracking."""
    b = make(static_fallback="static")
    other = make(static_fallback="other")
    trip(other)

    with b.result_origin() as origin:
        b.call(lambda: other.call(lookup, "x"))

    assert "primary" == origin.source
