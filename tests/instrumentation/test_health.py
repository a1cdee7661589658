"""Health and readiness: what liveness and readiness probes answer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

import cbcontrol
from cbcontrol import BreakerConfig, CircuitBreaker, State
from cbcontrol.instrumentation import health, readiness, start_probe_server
from cbcontrol.store import MemoryStore
from cbcontrol.testing import FakeClock, InMemoryConfigSource
from tests.support.waiting import wait_until

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture
def clock() -> FakeClock:
    """The breakers' clock."""
    return FakeClock()


@pytest.fixture
def payment(clock: FakeClock) -> CircuitBreaker:
    """A breaker that opens on one failure, for 30 s."""
    return CircuitBreaker(
        "payment", BreakerConfig(max_failures=1, reset_timeout=30), clock=clock
    )


@pytest.fixture
def analytics(clock: FakeClock) -> CircuitBreaker:
    """A second breaker, left closed."""
    return CircuitBreaker("analytics", clock=clock)


def trip(breaker: CircuitBreaker) -> None:
    """Open ``breaker`` with one failed call."""
    with pytest.raises(ConnectionError):
        breaker.call(_boom)


def _boom() -> None:
    raise ConnectionError


def test_liveness_is_healthy_with_an_open_breaker(
    payment: CircuitBreaker, analytics: CircuitBreaker
) -> None:
    """An open breaker means a dependency is down, not this process: still healthy."""
    trip(payment)

    report = health([payment, analytics])

    assert report.ok
    assert "healthy" == report.status
    assert {"analytics": State.CLOSED, "payment": State.OPEN} == {
        b.name: b.state for b in report.breakers
    }


def test_not_ready_while_a_critical_breaker_is_open(
    payment: CircuitBreaker, analytics: CircuitBreaker
) -> None:
    """An open critical breaker makes the process unready, and says which."""
    trip(payment)

    report = readiness([payment, analytics], critical={"payment"})

    assert not report.ok
    assert "not_ready" == report.status
    assert ('critical breaker "payment" is open',) == report.reasons


def test_an_open_breaker_that_is_not_critical_leaves_the_process_ready(
    payment: CircuitBreaker, analytics: CircuitBreaker
) -> None:
    """Only breakers named critical count: analytics may be down."""
    trip(payment)

    report = readiness([payment, analytics], critical={"analytics"})

    assert report.ok
    assert "ready" == report.status


def test_ready_again_once_the_breaker_admits_probes(
    payment: CircuitBreaker, clock: FakeClock
) -> None:
    """Half-open is ready: an unready pod would never send the probe that closes it."""
    trip(payment)
    clock.advance(30)

    report = readiness(payment, critical={"payment"})

    assert State.HALF_OPEN is report.breakers[0].state
    assert report.ok


def test_forced_open_by_an_operator_is_not_ready(payment: CircuitBreaker) -> None:
    """A critical breaker tripped by an operator makes the process unready."""
    payment.force_open("INC-42")

    report = readiness(payment, critical=lambda name: name.startswith("pay"))

    assert ('critical breaker "payment" is forced_open',) == report.reasons
    assert "INC-42" == report.breakers[0].override_reason


def test_report_as_json(payment: CircuitBreaker) -> None:
    """The JSON body names each breaker with its state, criticality and counters."""
    trip(payment)

    body = readiness(payment, critical={"payment"}).as_dict()

    assert {"status", "timestamp", "circuit_breakers", "reasons"} == set(body)
    assert {
        "state": "open",
        "critical": True,
        "retry_after_s": 30.0,
        "failure_rate": 100.0,
        "calls": 1,
        "failures": 1,
        "rejections": 0,
        "fallbacks": 0,
        "override_reason": None,
        "generation": None,
    } == body["circuit_breakers"]["payment"]  # type: ignore[index]
    assert json.loads(json.dumps(body)) == body


@pytest.fixture
def source() -> InMemoryConfigSource:
    """An in-memory store that starts unreachable."""
    source = InMemoryConfigSource()
    source.fail("connection refused")
    return source


@pytest.fixture
def plane(source: InMemoryConfigSource) -> Iterator[cbcontrol.ControlPlane]:
    """A plane whose store is unreachable at start."""
    plane = cbcontrol.connect(source=source, app="checkout", environ={})
    yield plane
    plane.close()


def test_not_ready_until_the_plane_loads_its_config(
    plane: cbcontrol.ControlPlane, source: InMemoryConfigSource
) -> None:
    """A plane that never read its store is unready; once read, an outage is fine."""
    plane.breaker("payment")
    never_loaded = readiness(plane)
    source.fail(None)
    loaded = readiness(plane)
    source.fail("connection refused")

    outage = readiness(plane)

    assert (
        (
            "the control plane has not loaded its config yet, from memory or its "
            "local cache: connection refused"
        ),
    ) == never_loaded.reasons
    assert loaded.ok
    assert outage.ok  # fail-static: it serves on the config it loaded
    assert outage.plane is not None
    assert (False, "store", "connection refused") == (
        outage.plane.reachable,
        outage.plane.loaded_from,
        outage.plane.last_error,
    )
    assert 0 == outage.breakers[0].generation


def test_a_plane_started_from_its_cache_is_ready() -> None:
    """A restart while the store is away comes up from the local cache: ready, and
    the health report says where the config came from."""
    store = MemoryStore(shared=True)  # a shared store: the plane keeps a cache of it
    with cbcontrol.connect(store, app="checkout", environ={}) as first:
        first.breaker("payment")
        store.put("breakers", "payment", {"max_failures": 2, "generation": 3})
        cache = Path(os.environ["CBCONTROL_CACHE_DIR"])
        assert wait_until(lambda: any(cache.iterdir()))
    store.fail("connection refused")

    with cbcontrol.connect(store, app="checkout", environ={}) as plane:
        plane.breaker("payment")
        ready = readiness(plane, critical={"payment"})
        live = health(plane).as_dict()

    assert ready.ok, ready.reasons
    assert 3 == ready.breakers[0].generation
    assert {
        "ok": False,
        "store": "memory",
        "reachable": False,
        "loaded_from": "cache",
        "last_error": "connection refused",
        "history_backwards": False,
        "errors": {"store": "connection refused"},
    } == {k: v for k, v in live["control_plane"].items() if k != "status_error"}


def test_probe_server_answers_health_and_ready(payment: CircuitBreaker) -> None:
    """Over HTTP: /health 200 and /ready 503 with JSON while critical is open."""
    trip(payment)

    with start_probe_server(
        payment, port=0, host="127.0.0.1", critical={"payment"}, metrics_path=None
    ) as server:
        live = httpx.get(f"{server.url}/health")
        unready = httpx.get(f"{server.url}/ready")
        elsewhere = httpx.get(f"{server.url}/metrics")

    assert 200 == live.status_code
    assert "healthy" == live.json()["status"]
    assert 503 == unready.status_code
    assert "application/json" == unready.headers["Content-Type"]
    assert "not_ready" == unready.json()["status"]
    assert 404 == elsewhere.status_code


def test_instrumentation_is_reachable_from_cbcontrol() -> None:
    """``cbcontrol.instrumentation`` works as an attribute, without its own import."""
    code = "import cbcontrol; print(cbcontrol.instrumentation.readiness.__name__)"

    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )

    assert ("readiness\n", "") == (result.stdout, result.stderr)
