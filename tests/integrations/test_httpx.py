"""The httpx transports against a real flaky upstream on loopback, sync and async."""

from __future__ import annotations

import gzip
import importlib
import sys
from typing import TYPE_CHECKING

import httpx
import pytest

import cbcontrol
from cbcontrol import BreakerConfig, CircuitBreaker, CircuitOpenError, State
from cbcontrol.integrations.httpx import AsyncBreakerTransport, BreakerTransport
from tests.support.etcd import free_port

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.integrations.conftest import Upstream


@pytest.fixture
def anyio_backend() -> str:
    """cbcontrol's async driver is asyncio-based."""
    return "asyncio"


@pytest.fixture
def breaker() -> CircuitBreaker:
    """Opens after two failures, for a minute."""
    return CircuitBreaker("upstream", BreakerConfig(max_failures=2, reset_timeout=60))


@pytest.fixture
def client(breaker: CircuitBreaker) -> Iterator[httpx.Client]:
    """An httpx client whose requests go through ``breaker``."""
    with httpx.Client(transport=BreakerTransport(breaker)) as client:
        yield client


def test_server_errors_open_the_breaker(
    client: httpx.Client, breaker: CircuitBreaker, upstream: Upstream
) -> None:
    """5xx answers are returned and count; once open, nothing reaches the upstream."""
    upstream.status = 503
    answers = [client.get(upstream.url) for _ in range(2)]

    with pytest.raises(CircuitOpenError) as rejected:
        client.get(upstream.url)

    assert [503, 503] == [r.status_code for r in answers]
    assert "answered 503 (#1)" == answers[0].text
    assert 2 == upstream.hits
    assert State.OPEN is breaker.state
    assert "upstream" == rejected.value.breaker


def test_client_errors_count_as_successes(
    client: httpx.Client, breaker: CircuitBreaker, upstream: Upstream
) -> None:
    """A 404 says the upstream is up: it never counts against it."""
    upstream.status = 404

    answers = [client.get(upstream.url).status_code for _ in range(3)]

    assert [404, 404, 404] == answers
    assert (3, 0) == (breaker.snapshot().successes, breaker.snapshot().failures)


def test_failure_statuses_are_configurable(
    breaker: CircuitBreaker, upstream: Upstream
) -> None:
    """With failure_statuses={429}, a 429 counts and a 500 does not."""
    transport = BreakerTransport(breaker, failure_statuses={429})
    with httpx.Client(transport=transport) as client:
        upstream.status = 500
        client.get(upstream.url)
        upstream.status = 429
        client.get(upstream.url)

    assert (1, 1) == (breaker.snapshot().successes, breaker.snapshot().failures)


def test_connection_errors_count(client: httpx.Client, breaker: CircuitBreaker) -> None:
    """A refused connection raises httpx's error and counts as a failure."""
    closed = f"http://127.0.0.1:{free_port()}"

    with pytest.raises(httpx.ConnectError):
        client.get(closed)

    assert 1 == breaker.snapshot().failures


def test_request_timeout_bounds_the_request(upstream: Upstream) -> None:
    """The breaker's request_timeout cuts a slow answer short, and counts it."""
    breaker = CircuitBreaker("slow", BreakerConfig(request_timeout="100ms"))
    upstream.delay = 2.0
    transport = BreakerTransport(breaker)
    with (
        httpx.Client(transport=transport, timeout=30) as client,
        pytest.raises(httpx.ReadTimeout),
    ):
        client.get(upstream.url)

    assert 1 == breaker.snapshot().failures


def test_the_breakers_fallback_answers_while_open(upstream: Upstream) -> None:
    """A fallback given to the breaker answers instead of CircuitOpenError."""

    def cached(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text=f"cached {request.url.path}", request=request)

    breaker = CircuitBreaker("upstream", BreakerConfig(max_failures=1), fallback=cached)
    upstream.status = 500
    with httpx.Client(transport=BreakerTransport(breaker)) as client:
        client.get(upstream.url)
        served = client.get(f"{upstream.url}/orders")

    assert (200, "cached /orders") == (served.status_code, served.text)
    assert 1 == upstream.hits
    assert 1 == breaker.snapshot().fallbacks


def test_a_plane_gives_one_breaker_per_host(upstream: Upstream) -> None:
    """With a plane, requests to two hosts go through two breakers named after them."""
    with cbcontrol.connect("memory://", app="t", environ={}) as plane:
        transport = BreakerTransport(plane)
        with httpx.Client(transport=transport) as client:
            client.get(upstream.url)
            client.get(f"http://localhost:{upstream.port}")

        assert ["127.0.0.1", "localhost"] == plane.names()
        assert 1 == plane.breaker("localhost").snapshot().successes


def test_hosts_outside_the_name_grammar_get_valid_breaker_names() -> None:
    """IPv6 and internationalised hosts map to breaker names the grammar accepts."""
    answer = httpx.MockTransport(lambda request: httpx.Response(200))
    with cbcontrol.connect("memory://", app="t", environ={}) as plane:
        transport = BreakerTransport(plane, transport=answer)
        with httpx.Client(transport=transport) as client:
            statuses = [
                client.get(url).status_code
                for url in ("http://[::1]:8080/", "http://münchen.test/")
            ]

        assert [200, 200] == statuses
        assert ["ipv6---1", "xn--mnchen-3ya.test"] == plane.names()


def test_a_function_chooses_the_breaker(upstream: Upstream) -> None:
    """A function of the request picks the breaker: here, by path."""
    orders, users = CircuitBreaker("orders"), CircuitBreaker("users")
    transport = BreakerTransport(
        lambda request: orders if request.url.path == "/orders" else users
    )
    with httpx.Client(transport=transport) as client:
        client.get(f"{upstream.url}/orders")
        client.get(f"{upstream.url}/orders")
        client.get(f"{upstream.url}/users")

    assert (2, 1) == (orders.snapshot().calls, users.snapshot().calls)


@pytest.mark.anyio
async def test_async_server_errors_open_the_breaker(
    breaker: CircuitBreaker, upstream: Upstream
) -> None:
    """The async transport counts 5xx the same way and rejects once open."""
    upstream.status = 502
    async with httpx.AsyncClient(transport=AsyncBreakerTransport(breaker)) as client:
        answers = [(await client.get(upstream.url)).status_code for _ in range(2)]
        with pytest.raises(CircuitOpenError):
            await client.get(upstream.url)

    assert [502, 502] == answers
    assert 2 == upstream.hits
    assert State.OPEN is breaker.state


@pytest.mark.anyio
async def test_async_timeouts_and_successes(upstream: Upstream) -> None:
    """The async transport applies request_timeout and counts successes."""
    breaker = CircuitBreaker("slow", BreakerConfig(request_timeout="100ms"))
    transport = AsyncBreakerTransport(breaker)
    async with httpx.AsyncClient(transport=transport, timeout=30) as client:
        ok = await client.get(upstream.url)
        upstream.delay = 2.0
        # The read timeout (capped) or the whole-request deadline, whichever first.
        with pytest.raises(httpx.TimeoutException):
            await client.get(upstream.url)

    assert "answered 200 (#1)" == ok.text
    assert (1, 1) == (breaker.snapshot().successes, breaker.snapshot().failures)


@pytest.mark.anyio
async def test_async_fallback_may_be_async(upstream: Upstream) -> None:
    """An async fallback answers for the async transport."""

    async def cached(request: httpx.Request) -> httpx.Response:
        """The cached answer."""
        return httpx.Response(200, text="cached", request=request)

    breaker = CircuitBreaker("upstream", BreakerConfig(max_failures=1), fallback=cached)
    upstream.status = 500
    transport = AsyncBreakerTransport(breaker)
    async with httpx.AsyncClient(transport=transport) as client:
        await client.get(upstream.url)
        served = await client.get(upstream.url)

    assert "cached" == served.text


@pytest.mark.anyio
async def test_async_request_timeout_is_a_deadline_for_the_whole_request(
    upstream: Upstream,
) -> None:
    """An answer that trickles in never trips a per-read timeout; acall's deadline
    cuts it short all the same, as httpx's own timeout error, and counts it."""
    breaker = CircuitBreaker("slow", BreakerConfig(request_timeout="300ms"))
    upstream.trickle = 0.1  # 20 header lines, 2 s in all
    transport = AsyncBreakerTransport(breaker)
    async with httpx.AsyncClient(transport=transport, timeout=30) as client:
        with pytest.raises(httpx.TimeoutException) as raised:
            await client.get(upstream.url)

    assert isinstance(raised.value.__cause__, TimeoutError)
    assert "request_timeout (0.3s)" in str(raised.value)
    assert 1 == breaker.snapshot().failures


def cache_breaker() -> CircuitBreaker:
    """Opens after one failure; answers rejected calls from its response cache."""
    return CircuitBreaker(
        "analytics",
        BreakerConfig(max_failures=1, fallback="cache", cache_ttl=60),
    )


def test_the_response_cache_answers_while_open(upstream: Upstream) -> None:
    """A GET answered before the breaker opened is answered again from the cache,
    body and headers intact (encoded bodies too), once per request."""
    breaker = cache_breaker()
    upstream.gzip = True
    with httpx.Client(transport=BreakerTransport(breaker)) as client:
        fresh = client.get(f"{upstream.url}/report")
        upstream.status = 500
        client.get(f"{upstream.url}/other")  # opens the breaker
        cached = [client.get(f"{upstream.url}/report") for _ in range(2)]
        with pytest.raises(CircuitOpenError):
            client.get(f"{upstream.url}/never-answered")

    assert "answered 200 (#1)" == fresh.text
    assert [(200, "answered 200 (#1)", "gzip")] * 2 == [
        (r.status_code, r.text, r.headers["Content-Encoding"]) for r in cached
    ]
    assert 2 == upstream.hits
    snapshot = breaker.snapshot()
    assert (2, 1) == (snapshot.cache_hits, snapshot.cache_misses)


def test_the_cache_never_answers_a_post_or_another_users_request(
    upstream: Upstream,
) -> None:
    """Only GET and HEAD are cached, by URL and credentials."""
    breaker = cache_breaker()
    with httpx.Client(transport=BreakerTransport(breaker)) as client:
        client.post(f"{upstream.url}/charge", content=b"order 1")
        client.get(f"{upstream.url}/me", headers={"Authorization": "Bearer alice"})
        upstream.status = 500
        client.get(f"{upstream.url}/other")  # opens the breaker
        mine = client.get(
            f"{upstream.url}/me", headers={"Authorization": "Bearer alice"}
        )
        with pytest.raises(CircuitOpenError):
            client.get(f"{upstream.url}/me", headers={"Authorization": "Bearer bob"})
        with pytest.raises(CircuitOpenError):
            client.post(f"{upstream.url}/charge", content=b"order 1")

    assert "answered 200 (#2)" == mine.text
    assert (1, 2) == (breaker.snapshot().cache_hits, breaker.snapshot().cache_misses)


def test_the_cache_keeps_responses_a_transport_read_already() -> None:
    """A transport that answers with content= (MockTransport) read the body first:
    it is cached decoded, with headers to match."""
    answers = iter([200, 500])

    def handler(request: httpx.Request) -> httpx.Response:
        del request
        body = gzip.compress(b"report")
        return httpx.Response(
            next(answers), content=body, headers={"Content-Encoding": "gzip"}
        )

    breaker = cache_breaker()
    transport = BreakerTransport(breaker, transport=httpx.MockTransport(handler))
    with httpx.Client(transport=transport) as client:
        fresh = client.get("http://analytics/report")
        client.get("http://analytics/report")  # the 500 opens the breaker
        cached = client.get("http://analytics/report")

    assert ("report", "report") == (fresh.text, cached.text)
    assert "content-encoding" not in cached.headers
    assert 1 == breaker.snapshot().cache_hits


@pytest.mark.anyio
async def test_async_response_cache(upstream: Upstream) -> None:
    """The async transport serves the cache the same way."""
    breaker = cache_breaker()
    transport = AsyncBreakerTransport(breaker)
    async with httpx.AsyncClient(transport=transport) as client:
        await client.get(f"{upstream.url}/report")
        upstream.status = 503
        await client.get(f"{upstream.url}/other")
        cached = await client.get(f"{upstream.url}/report")

    assert (200, "answered 200 (#1)") == (cached.status_code, cached.text)
    assert 1 == breaker.snapshot().cache_hits


def test_missing_httpx_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without httpx, importing the integration says which extra to install."""
    monkeypatch.setitem(sys.modules, "httpx", None)
    monkeypatch.delitem(sys.modules, "cbcontrol.integrations._httpx")

    with pytest.raises(
        ImportError,
        match=r"^the httpx integration needs httpx, which is not installed; "
        r"run `pip install 'cbcontrol\[http\]'`$",
    ):
        importlib.import_module("cbcontrol.integrations._httpx")
