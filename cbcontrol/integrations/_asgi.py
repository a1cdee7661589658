"""ASGI middleware: a breaker around the app, and the probe endpoints."""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable, Container, MutableMapping
from typing import TYPE_CHECKING, Any, TypeAlias

from cbcontrol._breaker import CircuitBreaker
from cbcontrol._events import State
from cbcontrol.exceptions import CircuitOpenError
from cbcontrol.instrumentation._endpoints import Endpoints, Reply
from cbcontrol.integrations._guard import Guard

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from cbcontrol.instrumentation._health import Critical
    from cbcontrol.instrumentation._sources import BreakerSource

__all__ = [
    "PROBE_PATHS",
    "STATE_HEADER",
    "ASGIApp",
    "CircuitBreakerMiddleware",
    "ProbesMiddleware",
    "Receive",
    "Scope",
    "ScopeBreaker",
    "Send",
    "send_reply",
]

Scope: TypeAlias = MutableMapping[str, Any]
Message: TypeAlias = MutableMapping[str, Any]
Receive: TypeAlias = Callable[[], Awaitable[Message]]
Send: TypeAlias = Callable[[Message], Awaitable[None]]
ASGIApp: TypeAlias = Callable[[Scope, Receive, Send], Awaitable[None]]

ScopeBreaker: TypeAlias = CircuitBreaker | Callable[[Scope], CircuitBreaker | None]
"""One breaker for every request, or a function's choice (``None``: not guarded)."""

PROBE_PATHS = ("/health", "/ready", "/metrics")
STATE_HEADER = b"x-circuit-breaker-state"
_STATE_VALUES = {state: state.value.encode() for state in State}


class _ErrorResponse(Exception):  # noqa: N818 - a signal to the breaker, not an error
    """The app answered with a status that counts as a failure."""

    def __init__(self, status: int) -> None:
        super().__init__(f"the app answered {status}")
        self.status = status


class CircuitBreakerMiddleware:
    """
    Guards an ASGI app (Starlette, FastAPI, ...) with a circuit breaker.

    While the breaker rejects, requests are answered at once with ``503``, a JSON body
    ``{"error", "status": "circuit_open", "retry_after", "breaker", "state"}`` and a
    ``Retry-After`` header (whole seconds; left out while the breaker is forced open,
    since no timer will close it). Every guarded response carries
    ``X-Circuit-Breaker-State``: the state this response leaves the breaker in. A
    response with a status in ``failure_statuses``, or an exception out of the app
    before it answered, counts as a failure; the outcome is recorded when the
    response starts. The breaker's fallback chain is not used: a server that sheds
    load answers 503, and its callers' breakers and caches decide what to do.

    Args:
        app: The ASGI app to guard.
        breaker: One breaker for every request, or a function ``(scope) -> breaker``
            (``None`` leaves that request unguarded).
        failure_statuses: Statuses that count as failures (default 500-599).
        exclude_paths: Paths never guarded: the probes, so a tripped breaker does not
            make Kubernetes restart the pod.

    With Starlette or FastAPI: ``app.add_middleware(CircuitBreakerMiddleware,
    breaker=plane.breaker("checkout-api"))``.

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        app: ASGIApp,
        breaker: ScopeBreaker,
        *,
        failure_statuses: Container[int] = range(500, 600),
        exclude_paths: Container[str] = PROBE_PATHS,
    ) -> None:
        self.app = app
        if isinstance(breaker, CircuitBreaker):
            self._choose: Callable[[Scope], CircuitBreaker | None] = lambda _scope: (
                breaker
            )
        else:
            self._choose = breaker
        self._failure_statuses = failure_statuses
        self._exclude = exclude_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection."""
        if scope["type"] != "http" or scope["path"] in self._exclude:
            await self.app(scope, receive, send)
            return
        breaker = self._choose(scope)
        if breaker is None:
            await self.app(scope, receive, send)
            return
        try:
            guard = Guard(breaker)
        except CircuitOpenError as err:
            await send_reply(send, _rejection(err))
            return
        failure_statuses = self._failure_statuses

        async def send_with_state(message: Message) -> None:
            if message["type"] == "http.response.start":
                # The status decides the outcome: record it now, so the header
                # shows the state this response leaves the breaker in.
                status = message["status"]
                if status in failure_statuses:
                    guard.failure(_ErrorResponse(status))
                else:
                    guard.success()
                message["headers"] = [
                    *message.get("headers", ()),
                    (STATE_HEADER, _STATE_VALUES[breaker.state]),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_state)
        except BaseException as exc:
            guard.failure(exc)  # no-op if the response had started
            raise
        guard.success()  # no-op if the response had started


def _rejection(err: CircuitOpenError) -> Reply:
    retry = None if err.retry_after_s is None else math.ceil(err.retry_after_s)
    body = {
        "error": "Service temporarily unavailable",
        "status": "circuit_open",
        "retry_after": retry,
        "breaker": err.breaker,
        "state": err.state,
    }
    headers = [(STATE_HEADER.decode(), err.state)]
    if retry is not None:
        headers.append(("Retry-After", str(retry)))
    return Reply(503, "application/json", json.dumps(body).encode(), tuple(headers))


async def send_reply(send: Send, reply: Reply) -> None:
    """Send a whole response."""
    headers = [
        (b"content-type", reply.content_type.encode()),
        (b"content-length", str(len(reply.body)).encode()),
        *((name.lower().encode(), value.encode()) for name, value in reply.headers),
    ]
    await send(
        {"type": "http.response.start", "status": reply.status, "headers": headers}
    )
    await send({"type": "http.response.body", "body": reply.body})


class ProbesMiddleware:
    """
    Answers ``GET /health``, ``/ready`` and ``/metrics``; passes everything else on.

    ``/health`` (liveness) always answers 200 with every breaker's state; ``/ready``
    answers 503 while a critical breaker is open or forced open, or while the control
    plane has never loaded its config; ``/metrics`` serves a Prometheus registry (put
    a :class:`~cbcontrol.instrumentation.PrometheusCollector` on it). Without an
    ``app`` it is a stand-alone probe app that answers 404 elsewhere.

    Args:
        app: The ASGI app to pass other requests to, or ``None``.
        source: What the probes report on: a control plane, a breaker, or breakers.
        critical: The breakers that make the process unready while they reject.
        registry: The Prometheus registry to expose (default: the global one).
        health_path: Where liveness answers.
        ready_path: Where readiness answers.
        metrics_path: Where metrics answer; ``None`` serves none.

    With Starlette or FastAPI: ``app.add_middleware(ProbesMiddleware, source=plane,
    critical={"payment"})``, added last so that it runs first.

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        app: ASGIApp | None = None,
        *,
        source: BreakerSource,
        critical: Critical = (),
        registry: CollectorRegistry | None = None,
        health_path: str = "/health",
        ready_path: str = "/ready",
        metrics_path: str | None = "/metrics",
    ) -> None:
        self.app = app
        self._endpoints = Endpoints(
            source,
            critical=critical,
            registry=registry,
            health_path=health_path,
            ready_path=ready_path,
            metrics_path=metrics_path,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection."""
        if scope["type"] == "http":
            reply = self._endpoints.reply(
                scope["method"], scope["path"], _header(scope, b"accept")
            )
            if reply is not None:
                await send_reply(send, reply)
                return
        if self.app is not None:
            await self.app(scope, receive, send)
        elif scope["type"] == "lifespan":
            await _lifespan(receive, send)
        elif scope["type"] == "http":
            await send_reply(send, Reply(404, "text/plain", b"not found\n"))


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


async def _lifespan(receive: Receive, send: Send) -> None:
    """A stand-alone probe app has nothing to start or stop."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
