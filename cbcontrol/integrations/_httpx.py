"""httpx transports that route every request through a circuit breaker."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeAlias

from cbcontrol._breaker import CircuitBreaker
from cbcontrol._extras import missing_extra

try:
    import httpx
except ImportError as exc:  # pragma: no cover - the tests run with every extra
    raise missing_extra(
        feature="the httpx integration", package="httpx", extra="http"
    ) from exc

if TYPE_CHECKING:
    from collections.abc import Callable, Container

    from cbcontrol._plane import ControlPlane

__all__ = [
    "FAILURE_STATUSES",
    "AsyncBreakerTransport",
    "BreakerTransport",
    "RequestBreaker",
]

RequestBreaker: TypeAlias = (
    "CircuitBreaker | ControlPlane | Callable[[httpx.Request], CircuitBreaker]"
)
"""One breaker for every request, a plane's breaker per host, or a function's choice."""

FAILURE_STATUSES = range(500, 600)


_PHASES = ("connect", "read", "write", "pool")


def _within(timeout: dict[str, float | None], limit: float) -> bool:
    """Whether every phase's timeout is set and at most ``limit`` (the usual case)."""
    connect, read = timeout.get("connect"), timeout.get("read")
    write, pool = timeout.get("write"), timeout.get("pool")
    return (
        connect is not None
        and read is not None
        and write is not None
        and pool is not None
        and connect <= limit
        and read <= limit
        and write <= limit
        and pool <= limit
    )


class _FailedResponse(httpx.HTTPStatusError):
    """Carries a response whose status counts as a failure out through the breaker."""


class _Routing:
    """What the sync and async transports share: choosing and judging."""

    __slots__ = ("_choose", "_failure_statuses")

    def __init__(
        self, breaker: RequestBreaker, failure_statuses: Container[int]
    ) -> None:
        self._failure_statuses = failure_statuses
        if isinstance(breaker, CircuitBreaker):
            self._choose: Callable[[httpx.Request], CircuitBreaker] = lambda _request: (
                breaker
            )
        elif callable(breaker):
            self._choose = breaker
        else:
            plane = breaker
            self._choose = lambda request: plane.breaker(request.url.host)

    def breaker_for(self, request: httpx.Request) -> CircuitBreaker:
        """The request's breaker; its ``request_timeout`` is applied to the request."""
        breaker = self._choose(request)
        limit = breaker.config.request_timeout
        if limit is not None:
            timeout = request.extensions.get("timeout") or {}
            if not _within(timeout, limit):
                # httpx times each phase (connect, write, read, pool), not the
                # request: capping every phase is the tightest bound a sync
                # transport can give.
                request.extensions["timeout"] = {
                    phase: limit if t is None else min(t, limit)
                    for phase in _PHASES
                    for t in (timeout.get(phase),)
                }
        return breaker

    def judge(self, request: httpx.Request, response: httpx.Response) -> httpx.Response:
        """Raise for a failure status (caught again once past the breaker)."""
        if response.status_code in self._failure_statuses:
            msg = f"{request.method} {request.url} answered {response.status_code}"
            raise _FailedResponse(msg, request=request, response=response)
        return response


class BreakerTransport(httpx.BaseTransport):
    """
    An ``httpx`` transport that sends each request through a circuit breaker.

    Connection errors, timeouts (any :class:`httpx.TransportError`) and responses
    with a status in ``failure_statuses`` count as failures; every other response is
    a success and is returned as it is, 5xx included. While the breaker is open the
    request is not sent: :class:`~cbcontrol.CircuitOpenError` is raised, or the
    breaker's ``fallback`` (called with the :class:`httpx.Request`, returning an
    :class:`httpx.Response`) answers. A breaker's ``request_timeout`` caps each phase
    of the request.

    Args:
        breaker: One :class:`~cbcontrol.CircuitBreaker` for every request; a
            :class:`~cbcontrol.ControlPlane`, for the plane's breaker named after each
            request's host; or a function ``(request) -> breaker``.
        transport: The transport that sends; default ``httpx.HTTPTransport()``.
        failure_statuses: Statuses that count as failures (default 500-599).

    ::

        client = httpx.Client(transport=BreakerTransport(plane))

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        breaker: RequestBreaker,
        *,
        transport: httpx.BaseTransport | None = None,
        failure_statuses: Container[int] = FAILURE_STATUSES,
    ) -> None:
        self._routing = _Routing(breaker, failure_statuses)
        self._transport = httpx.HTTPTransport() if transport is None else transport

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` through its breaker."""
        breaker = self._routing.breaker_for(request)
        try:
            return breaker.call(self._send, request)
        except _FailedResponse as failed:
            return failed.response

    def _send(self, request: httpx.Request) -> httpx.Response:
        return self._routing.judge(request, self._transport.handle_request(request))

    def close(self) -> None:
        """Close the wrapped transport."""
        self._transport.close()


class AsyncBreakerTransport(httpx.AsyncBaseTransport):
    """
    The :class:`BreakerTransport` of ``httpx.AsyncClient``; the same arguments, with
    an async ``transport`` (default ``httpx.AsyncHTTPTransport()``).

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        breaker: RequestBreaker,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        failure_statuses: Container[int] = FAILURE_STATUSES,
    ) -> None:
        self._routing = _Routing(breaker, failure_statuses)
        self._transport = httpx.AsyncHTTPTransport() if transport is None else transport

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` through its breaker."""
        breaker = self._routing.breaker_for(request)
        try:
            return await breaker.acall(self._send, request)
        except _FailedResponse as failed:
            return failed.response

    async def _send(self, request: httpx.Request) -> httpx.Response:
        response = await self._transport.handle_async_request(request)
        return self._routing.judge(request, response)

    async def aclose(self) -> None:
        """Close the wrapped transport."""
        await self._transport.aclose()
