"""
The probe and scrape endpoints' HTTP answers, for any server to send.

One place decides what ``GET /health``, ``/ready`` and ``/metrics`` answer; the ASGI
middleware and the stand-alone server only move the bytes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cbcontrol._extras import missing_extra
from cbcontrol.instrumentation._health import Critical, health, readiness
from cbcontrol.instrumentation._sources import Breakers, BreakerSource

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

__all__ = ["Endpoints", "Reply"]

_JSON = "application/json"
_TEXT = "text/plain; charset=utf-8"


@dataclass(frozen=True, slots=True)
class Reply:
    """An HTTP answer: status, content type, body and any extra headers."""

    status: int
    content_type: str
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()


class Endpoints:
    """
    Answers ``/health`` (liveness), ``/ready`` (readiness) and ``/metrics``.

    Args:
        source: What the probes report on: a control plane, a breaker, or breakers.
        critical: The breakers that make the process unready while they reject.
        registry: The Prometheus registry to expose; default prometheus-client's
            global ``REGISTRY``.
        health_path: Where liveness answers.
        ready_path: Where readiness answers.
        metrics_path: Where metrics answer; ``None`` serves no metrics (and needs no
            prometheus-client).
    """

    __slots__ = ("_breakers", "_critical", "_registry", "_routes")

    def __init__(
        self,
        source: BreakerSource,
        *,
        critical: Critical = (),
        registry: CollectorRegistry | None = None,
        health_path: str = "/health",
        ready_path: str = "/ready",
        metrics_path: str | None = "/metrics",
    ) -> None:
        self._breakers = Breakers(source)
        self._critical = critical
        routes = {health_path: self._health, ready_path: self._ready}
        if metrics_path is not None:
            try:
                import prometheus_client
            except ImportError as exc:  # pragma: no cover - the tests have every extra
                hint = "serving /metrics (or pass metrics_path=None)"
                raise missing_extra(
                    feature=hint, package="prometheus-client", extra="prometheus"
                ) from exc
            self._registry = (
                prometheus_client.REGISTRY if registry is None else registry
            )
            routes[metrics_path] = self._metrics
        self._routes = routes

    @property
    def paths(self) -> frozenset[str]:
        """The paths answered here."""
        return frozenset(self._routes)

    def reply(self, method: str, path: str, accept: str | None = None) -> Reply | None:
        """The answer to ``method path``, or ``None`` if the path is not ours."""
        route = self._routes.get(path)
        if route is None:
            return None
        if method not in ("GET", "HEAD"):
            return Reply(405, _TEXT, b"method not allowed\n", (("Allow", "GET, HEAD"),))
        return route(accept)

    def _health(self, accept: str | None) -> Reply:
        del accept
        return _json(200, health(self._breakers).as_dict())

    def _ready(self, accept: str | None) -> Reply:
        del accept
        report = readiness(self._breakers, critical=self._critical)
        return _json(200 if report.ok else 503, report.as_dict())

    def _metrics(self, accept: str | None) -> Reply:
        from prometheus_client.exposition import choose_encoder

        encode, content_type = choose_encoder(accept or "")
        return Reply(200, content_type, encode(self._registry))


def _json(status: int, body: dict[str, object]) -> Reply:
    return Reply(status, _JSON, json.dumps(body).encode())
