"""httpx transports that route every request through a circuit breaker."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeAlias

from cbcontrol._breaker import CircuitBreaker
from cbcontrol._extras import missing_extra
from cbcontrol._names import sanitize

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
_CACHEABLE_METHODS = frozenset({"GET", "HEAD"})
_CREDENTIALS = ("authorization", "cookie")
_BODY_HEADERS = frozenset(
    {b"content-encoding", b"content-length", b"transfer-encoding"}
)


def _host_name(request: httpx.Request) -> str:
    """
    The breaker name for a request's host, within the name grammar: the host as it
    goes on the wire (IDNA), an IPv6 address as ``ipv6-`` with ``-`` for ``:``.
    """
    host = request.url.raw_host.decode("ascii")
    if ":" in host:
        host = "ipv6-" + host.replace(":", "-")
    return sanitize(host)


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


# -- the response cache ----------------------------------------------------------
#
# A breaker's response cache keys each success by the call's arguments, here the
# request: an httpx.Request is equal only to itself, so every entry would be a miss.
# While the breaker's fallback is `cache`, the breaker is given a copy of the request
# that is equal to any other GET or HEAD of the same URL and credentials (and, for
# other methods, unhashable, which keeps them out of the cache: a POST must never be
# answered with another one's response). The copy shares the request's attributes,
# so it is sent as the request itself would be, and a fallback gets an httpx.Request.


class _CacheableRequest(httpx.Request):
    """A GET or HEAD request, equal to another of the same URL and credentials."""

    def __init__(self, request: httpx.Request) -> None:
        # A copy of the request's attributes, not a new request: nothing is parsed.
        self.__dict__.update(request.__dict__)
        headers = request.headers
        # Credentials are part of the key: one user's answer is not another's.
        self._key = (
            request.method,
            str(request.url),
            *(tuple(headers.get_list(name)) for name in _CREDENTIALS),
        )

    def __eq__(self, other: object) -> bool:
        return type(other) is _CacheableRequest and self._key == other._key

    def __hash__(self) -> int:
        return hash(self._key)


class _UncacheableRequest(httpx.Request):
    """A request whose answer is never cached (unhashable: the breaker skips it)."""

    __hash__ = None  # type: ignore[assignment]

    def __init__(self, request: httpx.Request) -> None:
        self.__dict__.update(request.__dict__)


def _for_the_cache(request: httpx.Request) -> httpx.Request:
    """The request as the breaker's response cache sees it (see above)."""
    if request.method in _CACHEABLE_METHODS:
        return _CacheableRequest(request)
    return _UncacheableRequest(request)


class _Stored:
    """A response kept by the response cache; each use makes a response of its own."""

    __slots__ = ("body", "extensions", "headers", "status")

    def __init__(
        self, response: httpx.Response, headers: list[tuple[bytes, bytes]], body: bytes
    ) -> None:
        self.status = response.status_code
        self.headers = tuple(headers)
        self.body = body
        self.extensions = {
            key: value
            for key, value in response.extensions.items()
            if key in ("http_version", "reason_phrase")
        }

    @classmethod
    def of(cls, response: httpx.Response, raw: bytes | None) -> _Stored:
        """
        The response with its body as received (``raw``: still encoded, as its
        headers say), or, when a transport had read it already (one made with
        ``content=``, as ``MockTransport``'s), its decoded content and headers to match.
        """
        if raw is not None:
            return cls(response, list(response.headers.raw), raw)
        body = response.content
        headers = [
            (name, value)
            for name, value in response.headers.raw
            if name.lower() not in _BODY_HEADERS
        ]
        headers.append((b"Content-Length", str(len(body)).encode()))
        return cls(response, headers, body)

    def response(self) -> httpx.Response:
        return httpx.Response(
            self.status,
            headers=list(self.headers),
            stream=httpx.ByteStream(self.body),
            extensions=dict(self.extensions),
        )


def _answer(result: httpx.Response | _Stored) -> httpx.Response:
    return result.response() if isinstance(result, _Stored) else result


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
            self._choose = lambda request: plane.breaker(_host_name(request))

    def prepare(self, request: httpx.Request) -> tuple[CircuitBreaker, httpx.Request]:
        """
        The request's breaker, and the request to send through it: its phases
        capped by ``request_timeout``, and ready for the response cache.
        """
        breaker = self._choose(request)
        config = breaker.config
        limit = config.request_timeout
        if limit is not None:
            timeout = request.extensions.get("timeout") or {}
            if not _within(timeout, limit):
                # httpx times each phase (connect, write, read, pool), not the
                # request; the async transport also has acall's deadline for the
                # whole request.
                request.extensions["timeout"] = {
                    phase: limit if t is None else min(t, limit)
                    for phase in _PHASES
                    for t in (timeout.get(phase),)
                }
        if config.fallback == "cache":
            return breaker, _for_the_cache(request)
        return breaker, request

    def judge(self, request: httpx.Request, response: httpx.Response) -> None:
        """Raise for a failure status (caught again once past the breaker)."""
        if response.status_code in self._failure_statuses:
            msg = f"{request.method} {request.url} answered {response.status_code}"
            raise _FailedResponse(msg, request=request, response=response)


class BreakerTransport(httpx.BaseTransport):
    """
    An ``httpx`` transport that sends each request through a circuit breaker.

    Connection errors, timeouts (any :class:`httpx.TransportError`) and responses
    with a status in ``failure_statuses`` count as failures; every other response is
    a success and is returned as it is, 5xx included. While the breaker is open the
    request is not sent: the breaker's fallback chain answers it, else
    :class:`~cbcontrol.CircuitOpenError` is raised. The chain's parts, for a
    transport: the response cache (with ``fallback: cache``: the last good answer to
    a ``GET`` or ``HEAD`` of the same URL and credentials, never to another method;
    those responses are then read whole before the client gets them), the static
    fallback (give a factory, ``lambda: httpx.Response(...)``: a response is read
    once), and the alternative (called with the :class:`httpx.Request`, returning an
    :class:`httpx.Response`). A breaker's ``request_timeout`` caps each phase of the
    request (connect, write, each read, pool): a sync call cannot be interrupted, so
    there is no deadline for the whole request here.

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
        breaker, sent = self._routing.prepare(request)
        try:
            return _answer(breaker.call(self._send, sent))
        except _FailedResponse as failed:
            return failed.response

    def _send(self, request: httpx.Request) -> httpx.Response | _Stored:
        response = self._transport.handle_request(request)
        self._routing.judge(request, response)
        if type(request) is not _CacheableRequest:
            return response
        if response.is_stream_consumed:
            return _Stored.of(response, None)
        try:
            raw = b"".join(response.iter_raw())
        finally:
            response.close()
        return _Stored.of(response, raw)

    def close(self) -> None:
        """Close the wrapped transport."""
        self._transport.close()


class AsyncBreakerTransport(httpx.AsyncBaseTransport):
    """
    The :class:`BreakerTransport` of ``httpx.AsyncClient``; the same arguments, with
    an async ``transport`` (default ``httpx.AsyncHTTPTransport()``).

    Here ``request_timeout`` is also a deadline for the whole request, from the
    first byte sent to the response's headers (and its body, when it is cached):
    ``acall`` enforces it, and the transport raises it as
    :class:`httpx.TimeoutException`. An async alternative is awaited.

    .. versionadded:: 0.1.0
    .. versionchanged:: 0.2.0
       ``request_timeout`` bounds the whole request.
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
        breaker, sent = self._routing.prepare(request)
        try:
            return _answer(await breaker.acall(self._send, sent))
        except _FailedResponse as failed:
            return failed.response
        except TimeoutError as exc:
            # acall's deadline for the whole request: raised as httpx's own
            # timeout, which is what callers of an httpx client catch.
            raise httpx.TimeoutException(str(exc), request=request) from exc

    async def _send(self, request: httpx.Request) -> httpx.Response | _Stored:
        response = await self._transport.handle_async_request(request)
        self._routing.judge(request, response)
        if type(request) is not _CacheableRequest:
            return response
        if response.is_stream_consumed:
            return _Stored.of(response, None)
        try:
            raw = b"".join([chunk async for chunk in response.aiter_raw()])
        finally:
            await response.aclose()
        return _Stored.of(response, raw)

    async def aclose(self) -> None:
        """Close the wrapped transport."""
        await self._transport.aclose()
