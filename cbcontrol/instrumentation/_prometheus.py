"""
Prometheus metrics, read from breaker snapshots at scrape time.

Nothing here runs on the call path: the collector reads ``snapshot()`` of each breaker
when Prometheus scrapes (transitions included, which the breaker counts itself, so
none is missed between scrapes or before the collector existed). Every series is
labelled with breaker names and fixed vocabularies (states, outcomes, fallback
sources, config fields) only, never with call arguments.
"""

from __future__ import annotations

import threading
import types
import typing
from typing import TYPE_CHECKING, Literal

from cbcontrol._events import State
from cbcontrol._extras import missing_extra
from cbcontrol.config import CONFIG_FIELDS, DURATION_FIELDS
from cbcontrol.instrumentation._sources import Breakers, BreakerSource

try:
    from prometheus_client import REGISTRY, CollectorRegistry
    from prometheus_client.core import (
        CounterMetricFamily,
        GaugeMetricFamily,
        InfoMetricFamily,
        Metric,
    )
except ImportError as exc:  # pragma: no cover - the tests run with every extra
    raise missing_extra(
        feature="Prometheus metrics", package="prometheus-client", extra="prometheus"
    ) from exc

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from cbcontrol._breaker import BreakerSnapshot
    from cbcontrol._plane import ControlPlane

__all__ = ["METRIC_NAMES", "PrometheusCollector"]

_PREFIX = "circuit_breaker_"
_OUTCOMES = ("success", "failure", "ignored", "rejected")
_SOURCES = ("cache", "static", "alternative")  # the fallback chain's parts
_STATISTICS = ("avg", "p99")


def _config_fields() -> tuple[dict[str, str], tuple[str, ...]]:
    """
    Numeric config fields (as gauge names) and enumerated ones (as info labels).

    Read from the model's annotations, so a new field shows up without a list here.
    Free-text fields (``fallback_url``) are left out: their values are unbounded and
    may carry credentials.
    """
    from cbcontrol.config import BreakerConfig

    numeric: dict[str, str] = {}
    enumerated: list[str] = []
    for name in CONFIG_FIELDS:
        kinds = _base_types(BreakerConfig.model_fields[name].annotation)
        if kinds and kinds <= {int, float}:
            unit = "_seconds" if name in DURATION_FIELDS else ""
            numeric[name] = f"{_PREFIX}config_{name}{unit}"
        elif kinds == {Literal}:
            enumerated.append(name)
    return numeric, tuple(enumerated)


def _base_types(annotation: object) -> set[object]:
    """``int | None`` -> ``{int}``; ``Annotated[float, ...]`` -> ``{float}``."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _base_types(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        found: set[object] = set()
        for arg in typing.get_args(annotation):
            if arg is not type(None):
                found |= _base_types(arg)
        return found
    if origin is Literal:
        return {Literal}
    return {annotation}


_CONFIG_GAUGES, _CONFIG_LABELS = _config_fields()


class PrometheusCollector:
    """
    Exports the breakers of a control plane (or the breakers given) to Prometheus.

    Args:
        source: A :class:`~cbcontrol.ControlPlane` (its breakers, including those it
            creates later, and its config generations and errors), a breaker, or an
            iterable of breakers.
        registry: Where to register; ``None`` registers nowhere (call
            ``registry.register(collector)`` yourself). Default: prometheus-client's
            global ``REGISTRY``.

    Metrics (``service`` is the breaker's name):
    ``circuit_breaker_state{service,state}`` (1 for the current state, 0 for the
    others), ``..._state_changes_total{service,from,to}``,
    ``..._requests_total{service,outcome}`` (success, failure, ignored, rejected),
    ``..._slow_calls_total``, ``..._fallbacks_total{service,source}`` (cache, static,
    alternative), ``..._cache_hits_total`` and ``..._cache_misses_total``,
    ``..._request_duration_seconds{service,statistic}`` (avg and p99 of the sampled
    calls), ``..._failure_rate_percent`` and ``..._slow_call_rate_percent`` over the
    window, the effective config (``..._config_max_failures``,
    ``..._config_reset_timeout_seconds``, ... and ``..._config_info{window_type,
    fallback}``), and from a plane ``..._config_generation``, ``..._config_rejected``
    (1 while a rejected document keeps the last good config in force) and
    ``..._config_errors_total``.

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        source: BreakerSource,
        *,
        registry: CollectorRegistry | None = REGISTRY,
    ) -> None:
        self._breakers = Breakers(source)
        self._lock = threading.Lock()  # two scrapes at once share the error log
        self._errors = _ErrorLog()
        self._registry = registry
        if registry is not None:
            registry.register(self)

    def describe(self) -> list[Metric]:
        """The metric families, without samples (for the registry's name checks)."""
        return list(_Families(plane=self._breakers.plane is not None).all())

    def collect(self) -> list[Metric]:
        """Read every breaker's snapshot and return the metric families."""
        breakers = self._breakers()
        plane = self._breakers.plane
        families = _Families(plane=plane is not None)
        for breaker in breakers:
            families.add(breaker.snapshot(), breaker.config)
        if plane is not None:
            self._add_plane(families, plane, [b.name for b in breakers])
        return list(families.all())

    def close(self) -> None:
        """Unregister from the registry (the collector holds nothing else)."""
        if self._registry is not None:
            self._registry.unregister(self)
            self._registry = None

    def _add_plane(
        self, families: _Families, plane: ControlPlane, names: list[str]
    ) -> None:
        for name in names:
            families.generation.add_metric([name], plane.observed_generation(name))
        errors = plane.errors()
        own = set(names)
        rejected = {_service_of(key, own) for key in errors}
        with self._lock:
            totals = self._errors.observe(errors, own)
        for name in names:
            families.rejected.add_metric([name], 1.0 if name in rejected else 0.0)
        for service, total in sorted(totals.items()):
            families.errors.add_metric([service], total)


def _service_of(key: str, own: set[str]) -> str:
    """``breakers/payment`` -> ``payment`` for this process's breakers, else ``""``."""
    kind, _, name = key.partition("/")
    return name if kind == "breakers" and name in own else ""


class _ErrorLog:
    """
    Counts config errors as the collector sees them: each new message is one more.

    The plane keeps the errors in force, not a count, so an error that comes and goes
    between two scrapes is not counted. Errors about other documents (presets, the
    store, breakers this process does not have) count under ``service=""``.
    """

    __slots__ = ("_seen", "_totals")

    def __init__(self) -> None:
        self._seen: dict[str, str] = {}
        self._totals: dict[str, int] = {}

    def observe(self, errors: Mapping[str, str], own: set[str]) -> dict[str, int]:
        for key, message in errors.items():
            if self._seen.get(key) != message:
                service = _service_of(key, own)
                self._totals[service] = self._totals.get(service, 0) + 1
        self._seen = dict(errors)
        return dict(self._totals)


class _Families:
    """One scrape's metric families, filled one breaker at a time."""

    def __init__(self, *, plane: bool) -> None:
        p = _PREFIX
        self.state = GaugeMetricFamily(
            f"{p}state",
            "1 for the breaker's current state, 0 for the others.",
            labels=["service", "state"],
        )
        self.transitions = CounterMetricFamily(
            f"{p}state_changes",
            "State transitions, by origin and destination.",
            labels=["service", "from", "to"],
        )
        self.requests = CounterMetricFamily(
            f"{p}requests",
            "Calls through the breaker, by outcome; rejected calls never ran.",
            labels=["service", "outcome"],
        )
        self.slow = CounterMetricFamily(
            f"{p}slow_calls",
            "Calls slower than slow_call_duration (with slow-call detection on).",
            labels=["service"],
        )
        self.fallbacks = CounterMetricFamily(
            f"{p}fallbacks",
            "Rejected calls answered by a fallback instead of an error, by source.",
            labels=["service", "source"],
        )
        self.cache_hits = CounterMetricFamily(
            f"{p}cache_hits",
            "Rejected calls the response cache answered.",
            labels=["service"],
        )
        self.cache_misses = CounterMetricFamily(
            f"{p}cache_misses",
            "Rejected calls the response cache had no fresh answer for.",
            labels=["service"],
        )
        self.duration = GaugeMetricFamily(
            f"{p}request_duration_seconds",
            "Duration of the last sampled calls (one in 64, and every slow one).",
            labels=["service", "statistic"],
        )
        self.failure_rate = GaugeMetricFamily(
            f"{p}failure_rate_percent",
            "Failed calls in the sliding window, in percent.",
            labels=["service"],
        )
        self.slow_rate = GaugeMetricFamily(
            f"{p}slow_call_rate_percent",
            "Slow calls in the sliding window, in percent.",
            labels=["service"],
        )
        self.config = {
            field: GaugeMetricFamily(
                name, f"The effective config: {field}.", labels=["service"]
            )
            for field, name in _CONFIG_GAUGES.items()
        }
        self.config_info = InfoMetricFamily(
            f"{p}config",
            "The effective config's enumerated fields.",
            labels=["service"],
        )
        self.plane = plane
        self.generation = GaugeMetricFamily(
            f"{p}config_generation",
            "The spec generation this process applied last (0: no spec).",
            labels=["service"],
        )
        self.rejected = GaugeMetricFamily(
            f"{p}config_rejected",
            "1 while the breaker's config was rejected and its last good one serves.",
            labels=["service"],
        )
        self.errors = CounterMetricFamily(
            f"{p}config_errors",
            "Config documents rejected, as seen at scrape time.",
            labels=["service"],
        )

    def add(self, snap: BreakerSnapshot, config: object) -> None:
        name = snap.name
        for state in State:
            self.state.add_metric([name, state.value], float(snap.state is state))
        for (from_state, to_state), count in sorted(snap.transitions.items()):
            self.transitions.add_metric([name, from_state, to_state], count)
        counts = (snap.successes, snap.failures, snap.ignored, snap.rejections)
        for outcome, count in zip(_OUTCOMES, counts, strict=True):
            self.requests.add_metric([name, outcome], count)
        self.slow.add_metric([name], snap.slow_calls)
        by_source = snap.fallbacks_by_source
        for source in _SOURCES:  # every source, so a rate() has a series from zero
            self.fallbacks.add_metric([name, source], by_source.get(source, 0))
        self.cache_hits.add_metric([name], snap.cache_hits)
        self.cache_misses.add_metric([name], snap.cache_misses)
        for statistic, value in zip(
            _STATISTICS,
            (snap.avg_response_time_s, snap.p99_response_time_s),
            strict=True,
        ):
            if value is not None:
                self.duration.add_metric([name, statistic], value)
        if snap.failure_rate is not None:
            self.failure_rate.add_metric([name], snap.failure_rate)
        if snap.slow_call_rate is not None:
            self.slow_rate.add_metric([name], snap.slow_call_rate)
        self._add_config(name, config)

    def _add_config(self, name: str, config: object) -> None:
        for field, family in self.config.items():
            value = getattr(config, field)
            if value is not None:  # an unset rule (no rate threshold) has no series
                family.add_metric([name], float(value))
        self.config_info.add_metric(
            [name], {field: str(getattr(config, field)) for field in _CONFIG_LABELS}
        )

    def all(self) -> Iterator[Metric]:
        yield self.state
        yield self.transitions
        yield self.requests
        yield self.slow
        yield self.fallbacks
        yield self.cache_hits
        yield self.cache_misses
        yield self.duration
        yield self.failure_rate
        yield self.slow_rate
        yield from self.config.values()
        yield self.config_info
        if self.plane:
            yield self.generation
            yield self.rejected
            yield self.errors


def _query_name(family: Metric) -> str:
    """The name a query uses: counters end in ``_total``, infos in ``_info``."""
    suffix = {"counter": "_total", "info": "_info"}.get(family.type, "")
    return family.name + suffix


METRIC_NAMES: tuple[str, ...] = tuple(
    _query_name(family) for family in _Families(plane=True).all()
)
"""Every metric the collector can export, as a query names it (``..._total``)."""
