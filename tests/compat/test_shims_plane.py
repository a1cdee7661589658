"""One changed import line: the old library's breaker joins the control plane."""

from __future__ import annotations

import pytest

from cbcontrol import State
from cbcontrol.compat import _registry, circuitbreaker, pybreaker


def test_a_named_pybreaker_is_live_configured_over_its_code_values(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """fail_max is the code layer: env overrides it, and the plane lists the breaker."""
    monkeypatch.setenv("DB_CB_MAX_FAILURES", "2")
    breaker = pybreaker.CircuitBreaker(fail_max=10, reset_timeout=45, name="db")

    with pytest.raises(ZeroDivisionError):
        breaker.call(lambda: 1 / 0)
    plane = _registry.default_plane()
    explained = plane.breaker("db").explain()

    assert ["db"] == plane.names()
    assert (2, "env:DB_CB_MAX_FAILURES") == explained["max_failures"]
    assert (45.0, "code") == explained["reset_timeout"]
    assert 2 == breaker.fail_max


def test_a_setter_changes_the_code_layer_and_env_still_wins(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Setting fail_max retunes the breaker; a higher layer keeps precedence."""
    monkeypatch.setenv("CACHE_CB_RESET_TIMEOUT", "5s")
    breaker = pybreaker.CircuitBreaker(name="cache")
    breaker.call(lambda: None)

    breaker.fail_max = 7
    breaker.reset_timeout = 90
    explained = _registry.default_plane().breaker("cache").explain()

    assert (7, "code") == explained["max_failures"]
    assert (5.0, "env:CACHE_CB_RESET_TIMEOUT") == explained["reset_timeout"]


def test_an_operator_trip_reaches_the_shim() -> None:
    """Forcing the plane's breaker open makes the decorated function fail fast."""

    @circuitbreaker.circuit(name="search")
    def search() -> str:
        return "hits"

    before = search()
    _registry.default_plane().breaker("search").force_open("INC-1")

    with pytest.raises(circuitbreaker.CircuitBreakerError):
        search()
    assert "hits" == before
    assert State.FORCED_OPEN == _registry.default_plane().breaker("search").state


def test_a_second_breaker_of_the_same_name_stays_private(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Two old-library objects never shared state: the second is not registered."""
    first = pybreaker.CircuitBreaker(fail_max=1, name="twin")
    second = pybreaker.CircuitBreaker(fail_max=1, name="twin")

    with pytest.raises(pybreaker.CircuitBreakerError):
        first.call(lambda: 1 / 0)
    second.call(lambda: None)

    assert (pybreaker.STATE_OPEN, pybreaker.STATE_CLOSED) == (
        first.current_state,
        second.current_state,
    )
    assert "exists already" in caplog.text
