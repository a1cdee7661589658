"""
circuitbreaker's behaviour beyond its own suite, on the library and on the shim.

Its own tests run unmodified in ``test_upstream.py``; these pin the behaviour that
suite does not reach, in particular where the shim deliberately differs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from types import ModuleType

SHIM = "cbcontrol.compat.circuitbreaker"


class Boom(Exception):
    """The dependency failed."""


def boom() -> None:
    """A failing dependency."""
    raise Boom


@pytest.fixture(params=["circuitbreaker", SHIM])
def cbk(request: pytest.FixtureRequest) -> ModuleType:
    """The real circuitbreaker, then the shim."""
    module = importlib.import_module(request.param)
    module.CircuitBreakerMonitor.circuit_breakers = {}
    return module


def differs(request: pytest.FixtureRequest, cbk: ModuleType, reason: str) -> None:
    """Mark the running test as a (strict) expected failure on the shim."""
    if cbk.__name__ == SHIM:
        request.node.add_marker(pytest.mark.xfail(reason=reason, strict=True))


def test_with_runs_the_body_while_open(
    cbk: ModuleType, request: pytest.FixtureRequest
) -> None:
    """circuitbreaker's `with` (and `call`) run the body even while it is open."""
    differs(
        request,
        cbk,
        "cbcontrol's `with breaker:` and `breaker.call()` reject while open, as the "
        "decorator does: running the body would defeat the breaker",
    )
    breaker = cbk.CircuitBreaker(failure_threshold=1, name="with-open")
    with pytest.raises(Boom):
        breaker.call(boom)
    ran = []

    with breaker:
        ran.append(True)

    assert [True] == ran


def test_the_decorator_rejects_while_open(cbk: ModuleType) -> None:
    """The decorated function is not called while open; CircuitBreakerError is."""
    calls = []

    @cbk.circuit(failure_threshold=1, name="decorated")
    def dependency() -> None:
        calls.append(1)
        raise Boom

    with pytest.raises(Boom):
        dependency()
    with pytest.raises(cbk.CircuitBreakerError, match=r'^Circuit "decorated" OPEN'):
        dependency()

    assert [1] == calls


def test_other_exceptions_count_as_successes(cbk: ModuleType) -> None:
    """An exception outside expected_exception resets the failure count."""

    @cbk.circuit(failure_threshold=2, expected_exception=Boom, name="classify")
    def dependency(error: Exception) -> None:
        raise error

    with pytest.raises(Boom):
        dependency(Boom())
    with pytest.raises(KeyError):
        dependency(KeyError())
    with pytest.raises(Boom):
        dependency(Boom())

    assert cbk.CircuitBreakerMonitor.get("classify").closed
    assert 1 == cbk.CircuitBreakerMonitor.get("classify").failure_count
