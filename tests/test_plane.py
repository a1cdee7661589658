"""The control plane in a process: registry, live retune, last good kept, overrides."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import pytest

import cbcontrol
from cbcontrol import BreakerConfig, CircuitOpenError, State
from cbcontrol.testing import FakeClock, InMemoryConfigSource

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture
def source() -> InMemoryConfigSource:
    """An in-memory live store."""
    return InMemoryConfigSource()


@pytest.fixture
def clock() -> FakeClock:
    """The breakers' clock."""
    return FakeClock()


@pytest.fixture
def plane(
    source: InMemoryConfigSource, clock: FakeClock
) -> Iterator[cbcontrol.ControlPlane]:
    """A plane on the in-memory store with PAYMENT_CB_MAX_FAILURES=4 in its env."""
    plane = cbcontrol.connect(
        source=source,
        app="checkout",
        environ={"PAYMENT_CB_MAX_FAILURES": "4"},
        clock=clock,
    )
    yield plane
    plane.close()


def origin(source: InMemoryConfigSource, kind: str, name: str) -> str:
    """The provenance of a stored document now (revisions count status writes too)."""
    from cbcontrol.store import Scope

    found = [
        d.origin
        for d in source.read(Scope.DESIRED).documents
        if (d.kind, d.name) == (kind, name)
    ]
    return found[0]


def boom() -> None:
    """A failing dependency."""
    raise ConnectionError


def test_one_breaker_per_name(plane: cbcontrol.ControlPlane) -> None:
    """Asking twice for a name returns the same breaker, even from many threads."""
    seen: list[object] = []

    threads = [
        threading.Thread(target=lambda: seen.append(plane.breaker("payment")))
        for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)

    assert 8 == len(seen)
    assert 1 == len({id(b) for b in seen})
    assert ["payment"] == plane.names()


def test_options_conflict_is_refused(plane: cbcontrol.ControlPlane) -> None:
    """Creating the same breaker again with other options fails with the fix."""
    plane.breaker("payment", ignore=KeyError)

    with pytest.raises(
        ValueError,
        match=(
            r'^breaker "payment" already exists with other options; pass options only '
            r"where it is first created, or give it another name$"
        ),
    ):
        plane.breaker("payment", ignore=ValueError)


def test_breaker_starts_from_preset_and_env(plane: cbcontrol.ControlPlane) -> None:
    """A new breaker is configured from its preset and env, with provenance."""
    pay = plane.breaker("payment")

    assert (4, "env:PAYMENT_CB_MAX_FAILURES") == pay.explain()["max_failures"]
    assert (60.0, "preset:payment") == pay.explain()["reset_timeout"]
    assert (0.0, "default") == pay.explain()["jitter"]


def test_a_store_change_retunes_the_live_breaker(
    plane: cbcontrol.ControlPlane, source: InMemoryConfigSource
) -> None:
    """A new spec in the store is applied in place, keeping state and counts."""
    pay = plane.breaker("payment")
    for _ in range(2):
        with pytest.raises(ConnectionError):
            pay.call(boom)

    source.put("breakers", "payment", {"max_failures": 3, "generation": 7})
    with pytest.raises(ConnectionError):
        pay.call(boom)

    assert State.OPEN == pay.state
    assert 3 == pay.snapshot().failures
    assert (3, origin(source, "breakers", "payment")) == pay.explain()["max_failures"]
    assert 7 == plane.observed_generation("payment")


def test_a_failing_listener_stops_neither_the_others_nor_the_watch(
    plane: cbcontrol.ControlPlane, source: InMemoryConfigSource
) -> None:
    """An on_applied listener that raises is logged; the rest still hear, and later
    changes are still applied."""
    pay = plane.breaker("payment")
    heard: list[str] = []

    def broken(name: str) -> None:
        raise RuntimeError(name)

    plane.on_applied(broken)
    plane.on_applied(heard.append)
    source.put("breakers", "payment", {"max_failures": 3})
    source.put("breakers", "payment", {"max_failures": 2})

    assert ["payment", "payment"] == heard
    assert 2 == pay.config.max_failures


def test_a_long_store_error_is_logged_once_and_clipped(
    plane: cbcontrol.ControlPlane,
    source: InMemoryConfigSource,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The store's own words are bounded, and a repeat of them is not logged again."""
    plane.breaker("payment")
    error = "etcd said: " + "x" * 5_000

    with caplog.at_level("ERROR", logger="cbcontrol.plane"):
        source.fail(error)
        source.fail(error)
    logged = [r.getMessage() for r in caplog.records if "etcd said" in r.getMessage()]

    assert 1 == len(logged)
    assert len(logged[0]) < 2_000


def test_an_invalid_spec_keeps_the_last_good_one(
    plane: cbcontrol.ControlPlane, source: InMemoryConfigSource
) -> None:
    """A bad document is rejected, reported, and the last good config stays."""
    pay = plane.breaker("payment")
    source.put("breakers", "payment", {"max_failures": 2})

    source.put("breakers", "payment", {"max_failures": 0})

    assert 2 == pay.config.max_failures
    assert {
        "breakers/payment": 'breaker "payment": field "max_failures" from source '
        f'"{origin(source, "breakers", "payment")}" must be >= 1, got 0'
    } == plane.errors()


def test_fixing_the_spec_clears_the_error(
    plane: cbcontrol.ControlPlane, source: InMemoryConfigSource
) -> None:
    """A good document after a bad one is applied and the error goes away."""
    pay = plane.breaker("payment")
    source.put("breakers", "payment", {"max_failures": 0})

    source.put("breakers", "payment", {"max_failures": 6})

    assert 6 == pay.config.max_failures
    assert {} == plane.errors()


def test_a_merged_config_that_breaks_a_rule_is_not_applied(
    plane: cbcontrol.ControlPlane, source: InMemoryConfigSource
) -> None:
    """A spec valid alone but invalid merged (minimum_calls > window) keeps the last."""
    pay = plane.breaker("payment")

    source.put("breakers", "payment", {"window_size": 5, "failure_rate_threshold": 50})

    assert 100 == pay.config.window_size
    assert (
        "minimum_calls (10) must be <= window_size (5)"
        in plane.errors()["breakers/payment"]
    )


def test_deleting_the_spec_lets_lower_layers_show(
    plane: cbcontrol.ControlPlane, source: InMemoryConfigSource
) -> None:
    """Removing the live document brings back the env and preset values."""
    pay = plane.breaker("payment")
    source.put("breakers", "payment", {"max_failures": 2})

    source.delete("breakers", "payment")

    assert (4, "env:PAYMENT_CB_MAX_FAILURES") == pay.explain()["max_failures"]


def test_store_presets_apply_to_breakers(
    plane: cbcontrol.ControlPlane, source: InMemoryConfigSource
) -> None:
    """A preset defined in the store is chosen by a spec and applied."""
    cart = plane.breaker("cart")

    source.put(
        "presets", "checkout-critical", {"max_failures": 2, "reset_timeout": "2m"}
    )
    source.put("breakers", "cart", {"preset": "checkout-critical"})

    assert (2, 120.0) == (cart.config.max_failures, cart.config.reset_timeout)
    assert (
        f"preset:checkout-critical ({origin(source, 'presets', 'checkout-critical')})"
        == (cart.explain()["max_failures"][1])
    )


def test_override_forces_open_and_lifts(
    plane: cbcontrol.ControlPlane, source: InMemoryConfigSource
) -> None:
    """An override in the spec forces the breaker open; removing it closes it."""
    pay = plane.breaker("payment")

    source.put(
        "breakers", "payment", {"override": {"mode": "forced_open", "reason": "INC-42"}}
    )
    with pytest.raises(CircuitOpenError, match=r"forced_open \(INC-42\)"):
        pay.call(lambda: 1)
    source.put("breakers", "payment", {"max_failures": 3})

    assert State.CLOSED == pay.state
    assert 1 == pay.call(lambda: 1)


def test_override_with_until_expires_by_itself(
    plane: cbcontrol.ControlPlane, source: InMemoryConfigSource, clock: FakeClock
) -> None:
    """An override with a future `until` lifts when the breaker's clock passes it."""
    from datetime import UTC, datetime, timedelta

    pay = plane.breaker("payment")
    until = (datetime.now(UTC) + timedelta(seconds=60)).isoformat()
    source.put(
        "breakers", "payment", {"override": {"mode": "forced_closed", "until": until}}
    )
    forced = pay.state

    clock.advance(61)

    assert State.FORCED_CLOSED == forced
    assert State.CLOSED == pay.state
    assert 1 == pay.call(lambda: 1)


def test_a_retune_keeps_the_override(
    plane: cbcontrol.ControlPlane, source: InMemoryConfigSource
) -> None:
    """Changing config does not lift an override, and the override changes no config."""
    pay = plane.breaker("payment")
    override = {"mode": "forced_open", "reason": "x"}
    source.put("breakers", "payment", {"override": override})

    source.put("breakers", "payment", {"override": override, "max_failures": 2})

    assert State.FORCED_OPEN == pay.state
    assert 2 == pay.config.max_failures


def test_reset_generation_resets_once(
    plane: cbcontrol.ControlPlane, source: InMemoryConfigSource
) -> None:
    """A new reset_generation resets state and counters once, not on every change."""
    pay = plane.breaker("payment")
    source.put("breakers", "payment", {"reset_generation": 1})
    for _ in range(4):
        with pytest.raises(ConnectionError):
            pay.call(boom)
    opened = pay.state

    source.put("breakers", "payment", {"reset_generation": 2})
    reset_state = (pay.state, pay.snapshot().failures)
    pay.call(lambda: 1)
    source.put("breakers", "payment", {"reset_generation": 2, "jitter": 0.1})

    assert State.OPEN == opened
    assert (State.CLOSED, 0) == reset_state
    assert 1 == pay.snapshot().successes


def test_store_errors_are_reported_and_config_kept(
    plane: cbcontrol.ControlPlane, source: InMemoryConfigSource
) -> None:
    """While the store reports an error, breakers keep their last config."""
    pay = plane.breaker("payment")
    source.put("breakers", "payment", {"max_failures": 2})

    source.fail("etcd is unreachable")

    assert 2 == pay.config.max_failures
    assert {"store": "etcd is unreachable"} == plane.errors()


def test_bad_env_variables_are_reported_not_raised() -> None:
    """A bad env variable does not stop the app; it is reported in errors()."""
    plane = cbcontrol.connect("memory://", environ={"PAYMENT_CB_MAX_FAILURES": "x"})

    pay = plane.breaker("payment")

    assert 3 == pay.config.max_failures
    assert "must be an integer" in plane.errors()["breakers/payment"]
    plane.close()


def test_plain_breakers_explain_code(plane: cbcontrol.ControlPlane) -> None:
    """A breaker configured in code reports its fields as coming from code."""
    b = cbcontrol.CircuitBreaker("x", BreakerConfig(max_failures=2))

    assert (2, "code") == b.explain()["max_failures"]
