"""
Health and readiness as plain functions: what a liveness or readiness probe answers.

Liveness (:func:`health`) is always healthy: an open breaker means a dependency is
down, not this process, and restarting the process would not bring it back. Readiness
(:func:`readiness`) is false while a breaker marked critical rejects calls (``open`` or
``forced_open``; ``half_open`` admits probes, so it is ready: a pod taken out of
service would never send the probe that closes the breaker) or while the control plane
has never loaded its config.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

from cbcontrol._events import State
from cbcontrol.instrumentation._sources import Breakers, BreakerSource

if TYPE_CHECKING:
    from collections.abc import Mapping

    from cbcontrol._breaker import CircuitBreaker
    from cbcontrol._plane import ControlPlane

__all__ = [
    "BreakerHealth",
    "Critical",
    "HealthReport",
    "PlaneHealth",
    "health",
    "readiness",
]

Critical = Collection[str] | Callable[[str], bool]
"""Which breakers make the process unready when they reject: names, or a predicate."""

_REJECTING = frozenset({State.OPEN, State.FORCED_OPEN})


@dataclass(frozen=True, slots=True)
class BreakerHealth:
    """
    One breaker, as a probe reports it.

    .. versionadded:: 0.1.0
    """

    name: str
    state: State
    critical: bool
    retry_after_s: float | None
    failure_rate: float | None
    calls: int
    failures: int
    rejections: int
    fallbacks: int
    override_reason: str | None

    @property
    def rejecting(self) -> bool:
        """Whether the breaker rejects calls now (``open`` or ``forced_open``)."""
        return self.state in _REJECTING

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready dict."""
        return {
            "state": self.state.value,
            "critical": self.critical,
            "retry_after_s": self.retry_after_s,
            "failure_rate": self.failure_rate,
            "calls": self.calls,
            "failures": self.failures,
            "rejections": self.rejections,
            "fallbacks": self.fallbacks,
            "override_reason": self.override_reason,
        }


@dataclass(frozen=True, slots=True)
class PlaneHealth:
    """
    The control plane's own health: its store, and the config it applied.

    Attributes:
        store: The store URL (credentials left out).
        loaded: Whether the plane has applied config from its store at least once.
        store_error: Why the store cannot be read now, if it cannot.
        errors: Rejected documents in force (``{"breakers/payment": message}``).
        generations: The spec generation each breaker last applied.

    .. versionadded:: 0.1.0
    """

    store: str
    loaded: bool
    store_error: str | None
    errors: Mapping[str, str]
    generations: Mapping[str, int]

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready dict."""
        return {
            "store": self.store,
            "loaded": self.loaded,
            "store_error": self.store_error,
            "errors": dict(self.errors),
            "generations": dict(self.generations),
        }


@dataclass(frozen=True, slots=True)
class HealthReport:
    """
    What :func:`health` or :func:`readiness` found.

    Attributes:
        ok: Healthy (:func:`health`: always) or ready (:func:`readiness`).
        status: ``"healthy"``, ``"ready"`` or ``"not_ready"``.
        breakers: Each breaker, in name order.
        plane: The control plane's health, when the source is a plane.
        reasons: Why the process is not ready (empty when it is).
        timestamp: When the report was made (UTC).

    .. versionadded:: 0.1.0
    """

    ok: bool
    status: Literal["healthy", "ready", "not_ready"]
    breakers: tuple[BreakerHealth, ...]
    plane: PlaneHealth | None
    reasons: tuple[str, ...] = ()
    timestamp: datetime = field(default_factory=lambda: datetime.now(UTC))

    def as_dict(self) -> dict[str, object]:
        """The JSON body of a probe's answer."""
        body: dict[str, object] = {
            "status": self.status,
            "timestamp": self.timestamp.isoformat().replace("+00:00", "Z"),
            "circuit_breakers": {b.name: b.as_dict() for b in self.breakers},
        }
        if self.plane is not None:
            body["control_plane"] = self.plane.as_dict()
        if self.reasons:
            body["reasons"] = list(self.reasons)
        return body


def health(source: BreakerSource | Breakers) -> HealthReport:
    """
    The liveness report: always ``ok``, with every breaker's state for the curious.

    Args:
        source: A :class:`~cbcontrol.ControlPlane`, a breaker, or breakers.

    .. versionadded:: 0.1.0
    """
    breakers = _resolve(source)
    return HealthReport(
        ok=True,
        status="healthy",
        breakers=tuple(_breaker_health(b, critical=False) for b in breakers()),
        plane=None if breakers.plane is None else plane_health(breakers.plane),
    )


def readiness(
    source: BreakerSource | Breakers, *, critical: Critical = ()
) -> HealthReport:
    """
    The readiness report: not ready while a critical breaker rejects calls, or while
    the control plane has never loaded its config.

    Args:
        source: A :class:`~cbcontrol.ControlPlane`, a breaker, or breakers.
        critical: Names of the breakers without which this process cannot serve
            (``{"payment"}``), or a predicate on the name.

    .. versionadded:: 0.1.0
    """
    breakers = _resolve(source)
    is_critical = critical if callable(critical) else frozenset(critical).__contains__
    found = tuple(_breaker_health(b, critical=is_critical(b.name)) for b in breakers())
    reasons = [
        f'critical breaker "{b.name}" is {b.state.value}'
        for b in found
        if b.critical and b.rejecting
    ]
    plane = None if breakers.plane is None else plane_health(breakers.plane)
    if plane is not None and not plane.loaded:
        reasons.append(
            f"the control plane has not loaded its config yet: {plane.store_error}"
        )
    return HealthReport(
        ok=not reasons,
        status="not_ready" if reasons else "ready",
        breakers=found,
        plane=plane,
        reasons=tuple(reasons),
    )


def _resolve(source: BreakerSource | Breakers) -> Breakers:
    return source if isinstance(source, Breakers) else Breakers(source)


def _breaker_health(breaker: CircuitBreaker, *, critical: bool) -> BreakerHealth:
    snap = breaker.snapshot()
    return BreakerHealth(
        name=snap.name,
        state=snap.state,
        critical=critical,
        retry_after_s=snap.retry_after_s,
        failure_rate=snap.failure_rate,
        calls=snap.calls,
        failures=snap.failures,
        rejections=snap.rejections,
        fallbacks=snap.fallbacks,
        override_reason=snap.override_reason,
    )


# -- the control plane's health --------------------------------------------------
#
# Built on what ControlPlane offers today: errors() carries a "store" entry while the
# store cannot be read. A plane that has read its store once keeps serving on that
# config through an outage (fail-static), so it stays ready: planes seen healthy are
# remembered here. This part goes when ControlPlane grows its own health().

_LOADED: weakref.WeakSet[ControlPlane] = weakref.WeakSet()


def plane_health(plane: ControlPlane) -> PlaneHealth:
    """The control plane's health, as far as its public API tells."""
    errors = plane.errors()
    store_error = errors.pop("store", None)
    if store_error is None:
        _LOADED.add(plane)
    return PlaneHealth(
        store=str(plane.store),
        loaded=plane in _LOADED,
        store_error=store_error,
        errors=errors,
        generations={name: plane.observed_generation(name) for name in plane.names()},
    )
