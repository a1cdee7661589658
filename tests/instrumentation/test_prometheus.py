"""The Prometheus collector: states, transitions, outcomes, config, at scrape time."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
import pytest
from prometheus_client import CollectorRegistry

import cbcontrol
from cbcontrol import BreakerConfig, CircuitBreaker, CircuitOpenError, State
from cbcontrol.instrumentation import (
    METRIC_NAMES,
    PrometheusCollector,
    start_probe_server,
)
from cbcontrol.testing import FakeClock, InMemoryConfigSource
from tests.support.prometheus import parse, sample, scrape

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture
def clock() -> FakeClock:
    """The breakers' clock."""
    return FakeClock()


@pytest.fixture
def source() -> InMemoryConfigSource:
    """An in-memory live store."""
    return InMemoryConfigSource()


@pytest.fixture
def plane(
    source: InMemoryConfigSource, clock: FakeClock
) -> Iterator[cbcontrol.ControlPlane]:
    """A plane on the in-memory store."""
    plane = cbcontrol.connect(source=source, app="checkout", environ={}, clock=clock)
    yield plane
    plane.close()


@pytest.fixture
def registry() -> CollectorRegistry:
    """A registry of the test's own."""
    return CollectorRegistry()


def fail(breaker: CircuitBreaker, times: int) -> None:
    """Make ``times`` calls through ``breaker`` that fail."""
    for _ in range(times):
        with pytest.raises(ConnectionError):
            breaker.call(_boom)


def _boom() -> None:
    raise ConnectionError


def test_scrape_after_a_trip_over_http(
    plane: cbcontrol.ControlPlane, source: InMemoryConfigSource
) -> None:
    """A real scrape after a trip finds the state, transition and outcome series."""
    source.put("breakers", "payment", {"max_failures": 2})
    payment = plane.breaker("payment", fallback=lambda: "from the fallback")
    plane.breaker("analytics")
    registry = CollectorRegistry()
    PrometheusCollector(plane, registry=registry)
    fail(payment, 2)
    served = payment.call(_boom)

    with start_probe_server(plane, port=0, host="127.0.0.1", registry=registry) as srv:
        samples = parse(httpx.get(f"{srv.url}/metrics").text)

    assert "from the fallback" == served
    assert 1.0 == sample(
        samples, "circuit_breaker_state", service="payment", state="open"
    )
    assert 0.0 == sample(
        samples, "circuit_breaker_state", service="payment", state="closed"
    )
    assert 1.0 == sample(
        samples, "circuit_breaker_state", service="analytics", state="closed"
    )
    assert 1.0 == sample(
        samples,
        "circuit_breaker_state_changes_total",
        service="payment",
        **{"from": "closed", "to": "open"},
    )
    assert 2.0 == sample(
        samples, "circuit_breaker_requests_total", service="payment", outcome="failure"
    )
    assert 1.0 == sample(
        samples, "circuit_breaker_requests_total", service="payment", outcome="rejected"
    )
    assert 1.0 == sample(
        samples,
        "circuit_breaker_fallbacks_total",
        service="payment",
        source="alternative",
    )
    assert 0.0 == sample(
        samples, "circuit_breaker_fallbacks_total", service="payment", source="cache"
    )
    assert 0.0 == sample(
        samples,
        "circuit_breaker_fallbacks_total",
        service="analytics",
        source="alternative",
    )


def test_every_transition_is_counted_once(
    clock: FakeClock, registry: CollectorRegistry
) -> None:
    """Closed -> open -> half-open -> closed shows as three transition series of 1."""
    breaker = CircuitBreaker(
        "payment", BreakerConfig(max_failures=1, reset_timeout=10), clock=clock
    )
    PrometheusCollector(breaker, registry=registry)
    fail(breaker, 1)
    clock.advance(10)
    breaker.call(lambda: None)

    samples = scrape(registry)

    transitions = {
        (dict(labels)["from"], dict(labels)["to"]): value
        for (name, labels), value in samples.items()
        if name == "circuit_breaker_state_changes_total"
    }
    assert {
        ("closed", "open"): 1.0,
        ("open", "half_open"): 1.0,
        ("half_open", "closed"): 1.0,
    } == transitions


def test_transitions_before_the_collector_are_counted(
    clock: FakeClock, registry: CollectorRegistry
) -> None:
    """A collector made after a breaker opened still counts that transition."""
    breaker = CircuitBreaker("payment", BreakerConfig(max_failures=1), clock=clock)
    fail(breaker, 1)

    PrometheusCollector(breaker, registry=registry)
    samples = scrape(registry)

    assert 1.0 == sample(
        samples,
        "circuit_breaker_state_changes_total",
        service="payment",
        **{"from": "closed", "to": "open"},
    )


def test_fallbacks_by_source_and_the_cache(
    clock: FakeClock, registry: CollectorRegistry
) -> None:
    """Rejected calls served by the cache or the static value count by source; a
    rejected call the cache cannot answer is a miss."""
    breaker = CircuitBreaker(
        "analytics",
        BreakerConfig(max_failures=1, fallback="cache", cache_ttl=60),
        static_fallback="no data",
        clock=clock,
    )
    PrometheusCollector(breaker, registry=registry)
    assert "report 1" == breaker.call(lambda key: f"report {key}", 1)
    fail(breaker, 1)
    served = [breaker.call(str, 1), breaker.call(str, 1), breaker.call(str, 2)]

    samples = scrape(registry)

    assert ["report 1", "report 1", "no data"] == served
    by_source = {
        source: sample(
            samples,
            "circuit_breaker_fallbacks_total",
            service="analytics",
            source=source,
        )
        for source in ("cache", "static", "alternative")
    }
    assert {"cache": 2.0, "static": 1.0, "alternative": 0.0} == by_source
    assert 2.0 == sample(
        samples, "circuit_breaker_cache_hits_total", service="analytics"
    )
    assert 1.0 == sample(
        samples, "circuit_breaker_cache_misses_total", service="analytics"
    )


def test_config_gauges_follow_a_retune(
    plane: cbcontrol.ControlPlane,
    source: InMemoryConfigSource,
    registry: CollectorRegistry,
) -> None:
    """The effective config and the applied generation are read fresh at each scrape."""
    plane.breaker("payment")
    PrometheusCollector(plane, registry=registry)
    before = scrape(registry)
    source.put(
        "breakers",
        "payment",
        {"max_failures": 7, "reset_timeout": "90s", "generation": 4},
    )

    after = scrape(registry)

    assert 3.0 == sample(
        before, "circuit_breaker_config_max_failures", service="payment"
    )
    assert 7.0 == sample(
        after, "circuit_breaker_config_max_failures", service="payment"
    )
    assert 90.0 == sample(
        after, "circuit_breaker_config_reset_timeout_seconds", service="payment"
    )
    assert 4.0 == sample(after, "circuit_breaker_config_generation", service="payment")
    assert 1.0 == sample(
        after,
        "circuit_breaker_config_info",
        service="payment",
        window_type="count",
        fallback="alternative",
    )
    # An unset rule has no series rather than a made-up value.
    assert None is sample(
        after, "circuit_breaker_config_failure_rate_threshold", service="payment"
    )


def test_a_rejected_document_is_reported_and_counted_once(
    plane: cbcontrol.ControlPlane,
    source: InMemoryConfigSource,
    registry: CollectorRegistry,
) -> None:
    """A bad spec sets config_rejected and counts one error, however many scrapes."""
    plane.breaker("payment")
    PrometheusCollector(plane, registry=registry)
    source.put("breakers", "payment", {"max_failures": 0})
    scrape(registry)
    rejected = scrape(registry)
    source.put("breakers", "payment", {"max_failures": 4})

    fixed = scrape(registry)

    assert 1.0 == sample(rejected, "circuit_breaker_config_rejected", service="payment")
    assert 1.0 == sample(
        rejected, "circuit_breaker_config_errors_total", service="payment"
    )
    assert 0.0 == sample(fixed, "circuit_breaker_config_rejected", service="payment")
    assert 1.0 == sample(
        fixed, "circuit_breaker_config_errors_total", service="payment"
    )


def test_labels_stay_bounded(registry: CollectorRegistry) -> None:
    """Calls with many different arguments add no series: labels are names only."""
    breaker = CircuitBreaker("search")
    PrometheusCollector(breaker, registry=registry)
    for i in range(200):
        breaker.call(str, i)
    before = scrape(registry)
    for i in range(200, 400):
        breaker.call(str, i)

    after = scrape(registry)

    label_names = {name for _, labels in after for name, _ in labels}
    services = {
        value for _, labels in after for name, value in labels if name == "service"
    }
    assert set(before) == set(after)
    assert {"search"} == services
    assert label_names <= {
        "service",
        "state",
        "from",
        "to",
        "outcome",
        "statistic",
        "window_type",
        "fallback",
        "source",
    }


def test_metric_names_list_what_a_scrape_exports(
    plane: cbcontrol.ControlPlane, registry: CollectorRegistry
) -> None:
    """METRIC_NAMES, used by deploy/ checks, names every family a scrape holds."""
    plane.breaker("payment")
    PrometheusCollector(plane, registry=registry)

    exported = {name for name, _ in scrape(registry)}

    families = {
        name.removesuffix("_created").removesuffix("_total").removesuffix("_info")
        for name in exported
    }
    listed = {
        name.removesuffix("_total").removesuffix("_info") for name in METRIC_NAMES
    }
    assert families <= listed
    assert all(name.startswith("circuit_breaker_") for name in METRIC_NAMES)


def test_close_unregisters(registry: CollectorRegistry) -> None:
    """After close() the registry has no breaker series; the breaker works on."""
    breaker = CircuitBreaker("payment", BreakerConfig(max_failures=1))
    collector = PrometheusCollector(breaker, registry=registry)

    collector.close()
    fail(breaker, 1)

    assert [] == [name for name, _ in scrape(registry) if "circuit" in name]
    assert State.OPEN is breaker.state


def test_breakers_with_one_name_are_refused() -> None:
    """Two breakers named alike would make duplicate series: refused with the name."""
    with pytest.raises(
        ValueError, match=r'^two breakers are named "db"; give each its own name$'
    ):
        PrometheusCollector([CircuitBreaker("db"), CircuitBreaker("db")], registry=None)


def test_a_source_of_the_wrong_type_is_refused() -> None:
    """Anything but a plane, a breaker or breakers is refused, naming what was given."""
    with pytest.raises(
        TypeError,
        match=r"^expected a ControlPlane, a CircuitBreaker or an iterable of them, "
        r"got int$",
    ):
        PrometheusCollector(3, registry=None)  # type: ignore[arg-type]


def test_a_rejected_call_is_counted(registry: CollectorRegistry) -> None:
    """A call rejected without a fallback shows as outcome="rejected"."""
    breaker = CircuitBreaker("payment", BreakerConfig(max_failures=1))
    PrometheusCollector(breaker, registry=registry)
    fail(breaker, 1)
    with pytest.raises(CircuitOpenError):
        breaker.call(lambda: None)

    samples = scrape(registry)

    assert 1.0 == sample(
        samples, "circuit_breaker_requests_total", service="payment", outcome="rejected"
    )
    assert 0.0 == sample(
        samples, "circuit_breaker_requests_total", service="payment", outcome="success"
    )
