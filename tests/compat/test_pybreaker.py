"""
pybreaker's documented behaviour, checked on pybreaker itself and on the shim.

pybreaker's published sdist ships no tests, so these are ours, written from its
README; each runs against the real library (so that it states pybreaker's actual
behaviour) and against ``cbcontrol.compat.pybreaker``. Where the shim deliberately
differs, the test is an expected failure for the shim, with the reason.
"""

from __future__ import annotations

import importlib
import threading
import time
from typing import TYPE_CHECKING, Any

import pytest

from cbcontrol.compat import pybreaker as shim

if TYPE_CHECKING:
    from types import ModuleType

SHIM = "cbcontrol.compat.pybreaker"


class Boom(Exception):
    """The dependency failed."""


class BusinessError(Exception):
    """An outcome that must not open the breaker."""


def boom() -> None:
    """A failing dependency."""
    raise Boom


def ok() -> str:
    """A healthy dependency."""
    return "ok"


@pytest.fixture(params=["pybreaker", SHIM])
def pb(request: pytest.FixtureRequest) -> ModuleType:
    """The real pybreaker, then the shim."""
    return importlib.import_module(request.param)


def differs(request: pytest.FixtureRequest, pb: ModuleType, reason: str) -> None:
    """Mark the running test as a (strict) expected failure when it runs on the shim."""
    if pb.__name__ == SHIM:
        request.node.add_marker(pytest.mark.xfail(reason=reason, strict=True))


def trip(pb: ModuleType, breaker: Any, failures: int) -> None:
    """Fail ``failures`` times; the last one raises CircuitBreakerError."""
    for _ in range(failures - 1):
        with pytest.raises(Boom):
            breaker.call(boom)
    with pytest.raises(pb.CircuitBreakerError):
        breaker.call(boom)


def test_fail_max_consecutive_failures_open_it(pb: ModuleType) -> None:
    """The fail_max-th consecutive failure opens it and raises CircuitBreakerError."""
    breaker = pb.CircuitBreaker(fail_max=3, reset_timeout=60)

    trip(pb, breaker, 3)

    assert pb.STATE_OPEN == breaker.current_state
    assert 3 == breaker.fail_counter


def test_an_open_breaker_rejects_without_calling(pb: ModuleType) -> None:
    """While open, calls fail fast with CircuitBreakerError."""
    breaker = pb.CircuitBreaker(fail_max=1, reset_timeout=60)
    trip(pb, breaker, 1)
    called = []

    with pytest.raises(pb.CircuitBreakerError):
        breaker.call(called.append, 1)

    assert [] == called


def test_without_throw_new_error_the_original_error_is_raised(pb: ModuleType) -> None:
    """throw_new_error_on_trip=False re-raises the call's own error on the trip."""
    breaker = pb.CircuitBreaker(fail_max=1, throw_new_error_on_trip=False)

    with pytest.raises(Boom):
        breaker.call(boom)

    assert pb.STATE_OPEN == breaker.current_state


def test_a_success_resets_the_failure_count(pb: ModuleType) -> None:
    """Failures must be consecutive: a success in between starts over."""
    breaker = pb.CircuitBreaker(fail_max=2)

    with pytest.raises(Boom):
        breaker.call(boom)
    breaker.call(ok)
    with pytest.raises(Boom):
        breaker.call(boom)

    assert pb.STATE_CLOSED == breaker.current_state
    assert 1 == breaker.fail_counter


def test_a_trial_call_closes_or_reopens(pb: ModuleType) -> None:
    """Half-open: a successful trial closes it, a failed one re-opens it."""
    breaker = pb.CircuitBreaker(fail_max=1, reset_timeout=60)
    trip(pb, breaker, 1)
    breaker.half_open()

    with pytest.raises(pb.CircuitBreakerError, match="Trial call failed"):
        breaker.call(boom)
    reopened = breaker.current_state
    breaker.half_open()
    result = breaker.call(ok)

    assert pb.STATE_OPEN == reopened
    assert ("ok", pb.STATE_CLOSED) == (result, breaker.current_state)


def test_the_reset_timeout_lets_a_trial_call_through(pb: ModuleType) -> None:
    """Once reset_timeout has passed, the next call is a trial and may close it."""
    breaker = pb.CircuitBreaker(fail_max=1, reset_timeout=0.05)
    trip(pb, breaker, 1)
    time.sleep(0.1)  # pybreaker reads the wall clock: no fake clock can drive it

    assert "ok" == breaker.call(ok)
    assert pb.STATE_CLOSED == breaker.current_state


def test_success_threshold_needs_that_many_trial_successes(pb: ModuleType) -> None:
    """With success_threshold=2 the breaker closes after the second trial success."""
    breaker = pb.CircuitBreaker(fail_max=1, success_threshold=2)
    trip(pb, breaker, 1)
    breaker.half_open()

    breaker.call(ok)
    after_one = (breaker.current_state, breaker.success_counter)
    breaker.call(ok)

    assert (pb.STATE_HALF_OPEN, 1) == after_one
    assert pb.STATE_CLOSED == breaker.current_state


def test_excluded_exceptions_are_not_failures(pb: ModuleType) -> None:
    """Excluded types and predicates do not count; they can be added and removed."""
    breaker = pb.CircuitBreaker(
        fail_max=1, exclude=[BusinessError, lambda e: "4xx" in str(e)]
    )
    breaker.add_excluded_exceptions(KeyError)

    for error in (BusinessError(), ValueError("4xx"), KeyError()):
        with pytest.raises(type(error)):
            breaker.call(lambda e=error: (_ for _ in ()).throw(e))
    closed = breaker.current_state
    breaker.remove_excluded_exception(KeyError)
    with pytest.raises(pb.CircuitBreakerError):
        breaker.call(lambda: {}["missing"])

    assert pb.STATE_CLOSED == closed
    assert 2 == len(breaker.excluded_exceptions)
    assert pb.STATE_OPEN == breaker.current_state


def test_listeners_hear_calls_and_state_changes(pb: ModuleType) -> None:
    """before_call, success, failure and state_change reach every listener."""
    heard: list[tuple[str, ...]] = []

    class Listener(pb.CircuitBreakerListener):  # type: ignore[name-defined,misc]
        """Records what it hears."""

        def before_call(self, cb: Any, func: Any, *args: Any, **kwargs: Any) -> None:
            """Record the call."""
            heard.append(("before", func.__name__))

        def success(self, cb: Any) -> None:
            """Record the success."""
            heard.append(("success",))

        def failure(self, cb: Any, exc: BaseException) -> None:
            """Record the failure."""
            heard.append(("failure", type(exc).__name__))

        def state_change(self, cb: Any, old: Any, new: Any) -> None:
            """Record the state change."""
            heard.append(("state", old.name, new.name))

    breaker = pb.CircuitBreaker(fail_max=1, listeners=[Listener()])
    breaker.call(ok)
    with pytest.raises(pb.CircuitBreakerError):
        breaker.call(boom)

    assert [
        ("before", "ok"),
        ("success",),
        ("before", "boom"),
        ("failure", "Boom"),
        ("state", "closed", "open"),
    ] == heard


def test_setters_change_the_limits(pb: ModuleType) -> None:
    """fail_max, reset_timeout and success_threshold can be changed at run time."""
    breaker = pb.CircuitBreaker(fail_max=5, reset_timeout=60, name="setters")
    breaker.call(ok)

    breaker.fail_max = 1
    breaker.reset_timeout = 120
    breaker.success_threshold = 3
    with pytest.raises(pb.CircuitBreakerError):
        breaker.call(boom)

    assert (1, 120, 3) == (
        breaker.fail_max,
        breaker.reset_timeout,
        breaker.success_threshold,
    )
    assert pb.STATE_OPEN == breaker.current_state


def test_decorator_with_and_without_parentheses(pb: ModuleType) -> None:
    """@breaker and @breaker() both guard the function and keep its name."""
    breaker = pb.CircuitBreaker(fail_max=2)

    @breaker
    def plain(x: int) -> int:
        """Double x."""
        return x * 2

    @breaker()
    def failing() -> None:
        """Always fails."""
        raise Boom

    results = [plain(2), plain(3)]
    with pytest.raises(Boom):
        failing()
    with pytest.raises(pb.CircuitBreakerError):
        failing()

    assert [4, 6] == results
    assert ("plain", "Double x.") == (plain.__name__, plain.__doc__)


def test_calling_context_manager(pb: ModuleType) -> None:
    """`with breaker.calling():` counts the block as one call."""
    breaker = pb.CircuitBreaker(fail_max=1)

    with breaker.calling():
        pass
    with pytest.raises(pb.CircuitBreakerError), breaker.calling():
        raise Boom

    assert pb.STATE_OPEN == breaker.current_state


def test_a_generator_is_one_call_until_exhausted(pb: ModuleType) -> None:
    """A decorated generator function counts when it finishes or fails."""
    breaker = pb.CircuitBreaker(fail_max=1)

    @breaker
    def rows() -> Any:
        """Yield twice."""
        yield 1
        yield 2

    items = list(rows())

    assert [1, 2] == items
    assert 0 == breaker.fail_counter
    assert pb.STATE_CLOSED == breaker.current_state


def test_manual_moves(pb: ModuleType) -> None:
    """open(), half_open() and close() move the breaker; state.name names it."""
    breaker = pb.CircuitBreaker()

    thrown = breaker.open()
    opened = breaker.state.name
    breaker.half_open()
    half_open = breaker.current_state
    breaker.close()

    assert (True, pb.STATE_OPEN, pb.STATE_HALF_OPEN) == (thrown, opened, half_open)
    assert pb.STATE_CLOSED == breaker.current_state
    with pytest.raises(ValueError, match="Unknown state 'sideways'"):
        breaker.state = "sideways"


def test_name_is_kept(pb: ModuleType) -> None:
    """The name given is the breaker's name, and can be set."""
    breaker = pb.CircuitBreaker(name="db")

    before = breaker.name
    breaker.name = "database"

    assert ("db", "database") == (before, breaker.name)


def test_keyboard_interrupt_counts_as_a_failure(
    pb: ModuleType, request: pytest.FixtureRequest
) -> None:
    """pybreaker counts any BaseException, KeyboardInterrupt included."""
    differs(
        request,
        pb,
        "cbcontrol ignores cancellation and KeyboardInterrupt: they say "
        "nothing about the dependency",
    )
    breaker = pb.CircuitBreaker(fail_max=1, throw_new_error_on_trip=False)

    def interrupted() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        breaker.call(interrupted)

    assert pb.STATE_OPEN == breaker.current_state


def test_a_second_concurrent_trial_call_waits_for_the_first(
    pb: ModuleType, request: pytest.FixtureRequest
) -> None:
    """pybreaker serialises calls: a concurrent half-open call waits, then runs."""
    differs(
        request,
        pb,
        "cbcontrol runs calls concurrently and admits half_open_max_calls "
        "trial calls; others are rejected at once instead of queueing",
    )
    breaker = pb.CircuitBreaker(fail_max=1)
    trip(pb, breaker, 1)
    breaker.half_open()
    entered, release, trying = threading.Event(), threading.Event(), threading.Event()
    outcomes: list[str] = []

    def slow_trial() -> None:
        entered.set()
        release.wait(5)

    first = threading.Thread(target=lambda: breaker.call(slow_trial), daemon=True)
    first.start()
    entered.wait(5)

    def second() -> None:
        trying.set()
        try:
            breaker.call(ok)
            outcomes.append("ran")
        except pb.CircuitBreakerError:
            outcomes.append("rejected")

    other = threading.Thread(target=second, daemon=True)
    other.start()
    trying.wait(5)
    other.join(0.5)  # the shim answers at once; pybreaker keeps it waiting
    release.set()
    first.join(5)
    other.join(5)

    assert ["ran"] == outcomes


def test_redis_storage_is_refused_with_the_alternative() -> None:
    """The shim keeps state in the process and says so for Redis storage."""
    with pytest.raises(NotImplementedError, match=r"use pybreaker itself"):
        shim.CircuitRedisStorage(shim.STATE_CLOSED, object())
