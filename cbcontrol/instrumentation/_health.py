"""
Health and readiness as plain functions: what a liveness or readiness probe answers.

Liveness (:func:`health`) is always healthy: an open breaker means a dependency is
down, not this process, and restarting the process would not bring it back. Readiness
(:func:`readiness`) is false while a breaker marked critical rejects calls (``open`` or
``forced_open``; ``half_open`` admits probes, so it is ready: a pod taken out of
service would never send the probe that closes the breaker) or while the control plane
has never loaded its config, from its store or its local cache. A plane that loaded
once and then lost its store stays ready: it serves on its last good config
(fail-static), and the reports say so (``plane.reachable``).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

from cbcontrol._events import State
from cbcontrol.instrumentation._sources import Breakers, BreakerSource

if TYPE_CHECKING:
    from cbcontrol._breaker import CircuitBreaker
    from cbcontrol._plane import ControlPlane, PlaneHealth

__all__ = [
    "BreakerHealth",
    "Critical",
    "HealthReport",
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

    Attributes:
        generation: The spec generation this process applied to the breaker (0: no
            spec), when the breaker comes from a control plane; else ``None``.

    .. versionadded:: 0.1.0
    .. versionchanged:: 0.2.0
       ``generation``.
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
    generation: int | None = None

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
            "generation": self.generation,
        }


@dataclass(frozen=True, slots=True)
class HealthReport:
    """
    What :func:`health` or :func:`readiness` found.

    Attributes:
        ok: Healthy (:func:`health`: always) or ready (:func:`readiness`).
        status: ``"healthy"``, ``"ready"`` or ``"not_ready"``.
        breakers: Each breaker, in name order.
        plane: The control plane's own health (:meth:`ControlPlane.health`), when
            the source is a plane.
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
            body["control_plane"] = _plane_dict(self.plane)
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
    plane = breakers.plane
    return HealthReport(
        ok=True,
        status="healthy",
        breakers=tuple(_breaker_health(b, plane, critical=False) for b in breakers()),
        plane=None if plane is None else plane.health(),
    )


def readiness(
    source: BreakerSource | Breakers, *, critical: Critical = ()
) -> HealthReport:
    """
    The readiness report: not ready while a critical breaker rejects calls, or while
    the control plane has never loaded its config (from its store or its local
    cache).

    Args:
        source: A :class:`~cbcontrol.ControlPlane`, a breaker, or breakers.
        critical: Names of the breakers without which this process cannot serve
            (``{"payment"}``), or a predicate on the name.

    .. versionadded:: 0.1.0
    """
    breakers = _resolve(source)
    plane = breakers.plane
    is_critical = critical if callable(critical) else frozenset(critical).__contains__
    found = tuple(
        _breaker_health(b, plane, critical=is_critical(b.name)) for b in breakers()
    )
    reasons = [
        f'critical breaker "{b.name}" is {b.state.value}'
        for b in found
        if b.critical and b.rejecting
    ]
    plane_health = None if plane is None else plane.health()
    if plane_health is not None and plane_health.loaded_from == "none":
        why = plane_health.last_error or "no answer yet"
        reasons.append(
            "the control plane has not loaded its config yet, from "
            f"{plane_health.store} or its local cache: {why}"
        )
    return HealthReport(
        ok=not reasons,
        status="not_ready" if reasons else "ready",
        breakers=found,
        plane=plane_health,
        reasons=tuple(reasons),
    )


def _resolve(source: BreakerSource | Breakers) -> Breakers:
    return source if isinstance(source, Breakers) else Breakers(source)


def _breaker_health(
    breaker: CircuitBreaker, plane: ControlPlane | None, *, critical: bool
) -> BreakerHealth:
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
        generation=None if plane is None else plane.observed_generation(snap.name),
    )


def _plane_dict(plane: PlaneHealth) -> dict[str, object]:
    """The control plane's health as JSON (``ok`` included)."""
    return {
        "ok": plane.ok,
        "store": plane.store,
        "reachable": plane.reachable,
        "loaded_from": plane.loaded_from,
        "last_error": plane.last_error,
        "history_backwards": plane.history_backwards,
        "errors": dict(plane.errors),
        "status_error": plane.status_error,
    }
