"""The ASGI middleware with Starlette and FastAPI: under uvicorn and in process."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from cbcontrol import BreakerConfig, CircuitBreaker, State
from cbcontrol.instrumentation import PrometheusCollector
from cbcontrol.integrations.asgi import CircuitBreakerMiddleware, ProbesMiddleware
from cbcontrol.testing import FakeClock
from tests.support.etcd import free_port
from tests.support.prometheus import parse, sample
from tests.support.waiting import wait_until

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from starlette.requests import Request


@pytest.fixture
def anyio_backend() -> str:
    """The apps run on asyncio."""
    return "asyncio"


def in_process(app: object) -> httpx.AsyncClient:
    """An httpx client that calls the ASGI app in process (500 for its exceptions)."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url="http://app")


class Backend:
    """What the app's handler does: answer with a status, or raise."""

    def __init__(self) -> None:
        self.status = 200
        self.raises = False
        self.calls = 0


@pytest.fixture
def clock() -> FakeClock:
    """The breakers' clock."""
    return FakeClock()


@pytest.fixture
def backend() -> Backend:
    """The behaviour of the app's handler."""
    return Backend()


@pytest.fixture
def breaker(clock: FakeClock) -> CircuitBreaker:
    """The server-side breaker: opens after two failures, for 12.5 s."""
    return CircuitBreaker(
        "checkout-api", BreakerConfig(max_failures=2, reset_timeout=12.5), clock=clock
    )


def starlette_app(
    backend: Backend, breaker: CircuitBreaker, registry: CollectorRegistry
) -> Starlette:
    """A Starlette app guarded by ``breaker``, with the probes in front."""

    async def orders(request: Request) -> PlainTextResponse:
        """Answer as the backend says."""
        backend.calls += 1
        if backend.raises:
            raise RuntimeError("the database is gone")
        return PlainTextResponse("orders", status_code=backend.status)

    app = Starlette(routes=[Route("/orders", orders)])
    app.add_middleware(CircuitBreakerMiddleware, breaker=breaker)
    app.add_middleware(
        ProbesMiddleware, source=breaker, critical={"checkout-api"}, registry=registry
    )
    return app


@pytest.fixture
def registry(breaker: CircuitBreaker) -> CollectorRegistry:
    """A registry with the breaker's metrics."""
    registry = CollectorRegistry()
    PrometheusCollector(breaker, registry=registry)
    return registry


@pytest.fixture
async def client(
    backend: Backend, breaker: CircuitBreaker, registry: CollectorRegistry
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the Starlette app, in process."""
    async with in_process(starlette_app(backend, breaker, registry)) as client:
        yield client


@pytest.mark.anyio
async def test_responses_carry_the_breaker_state(client: httpx.AsyncClient) -> None:
    """Every guarded response says the breaker's state."""
    response = await client.get("/orders")

    assert (200, "orders") == (response.status_code, response.text)
    assert "closed" == response.headers["x-circuit-breaker-state"]


@pytest.mark.anyio
async def test_server_errors_open_it_and_then_503(
    client: httpx.AsyncClient, backend: Backend, breaker: CircuitBreaker
) -> None:
    """Two 500s open the breaker; then 503 with JSON and Retry-After, app untouched."""
    backend.status = 500
    await client.get("/orders")
    await client.get("/orders")

    rejected = await client.get("/orders")

    assert 2 == backend.calls
    assert 503 == rejected.status_code
    assert "13" == rejected.headers["retry-after"]
    assert "open" == rejected.headers["x-circuit-breaker-state"]
    assert {
        "error": "Service temporarily unavailable",
        "status": "circuit_open",
        "retry_after": 13,
        "breaker": "checkout-api",
        "state": "open",
    } == rejected.json()
    assert State.OPEN is breaker.state


@pytest.mark.anyio
async def test_an_exception_in_the_app_counts(
    client: httpx.AsyncClient, backend: Backend, breaker: CircuitBreaker
) -> None:
    """An exception out of the app is a failure (and still a 500 for the client)."""
    backend.raises = True

    answer = await client.get("/orders")

    assert 500 == answer.status_code
    assert 1 == breaker.snapshot().failures


@pytest.mark.anyio
async def test_client_errors_count_as_successes(
    client: httpx.AsyncClient, backend: Backend, breaker: CircuitBreaker
) -> None:
    """A 4xx is the caller's problem, not the app's."""
    backend.status = 422

    await client.get("/orders")

    assert (1, 0) == (breaker.snapshot().successes, breaker.snapshot().failures)


@pytest.mark.anyio
async def test_probes_are_never_guarded(
    client: httpx.AsyncClient, breaker: CircuitBreaker
) -> None:
    """While open, /health answers 200, /ready 503 and /metrics shows the state."""
    breaker.force_open("INC-42")

    live = await client.get("/health")
    ready = await client.get("/ready")
    metrics = await client.get("/metrics")
    rejected = await client.get("/orders")

    assert (200, "healthy") == (live.status_code, live.json()["status"])
    assert (503, "not_ready") == (ready.status_code, ready.json()["status"])
    assert "x-circuit-breaker-state" not in live.headers
    assert 1.0 == sample(
        parse(metrics.text),
        "circuit_breaker_state",
        service="checkout-api",
        state="forced_open",
    )
    # Forced open: no timer will close it, so no Retry-After.
    assert "retry-after" not in rejected.headers
    assert None is rejected.json()["retry_after"]


@pytest.mark.anyio
async def test_probe_paths_refuse_other_methods(client: httpx.AsyncClient) -> None:
    """A POST to a probe is 405 with Allow, not a readiness answer."""
    answer = await client.post("/ready")

    assert 405 == answer.status_code
    assert "GET, HEAD" == answer.headers["allow"]


@pytest.mark.anyio
async def test_a_function_chooses_the_breaker(backend: Backend) -> None:
    """A function of the scope guards some paths and leaves others (None) alone."""
    admin = CircuitBreaker("admin", BreakerConfig(max_failures=1))

    async def handler(request: Request) -> PlainTextResponse:
        """Fail."""
        return PlainTextResponse("boom", status_code=500)

    app = Starlette(routes=[Route("/admin", handler), Route("/public", handler)])
    app.add_middleware(
        CircuitBreakerMiddleware,
        breaker=lambda scope: admin if scope["path"].startswith("/admin") else None,
    )
    async with in_process(app) as client:
        statuses = [(await client.get(path)).status_code for path in ("/admin",) * 2]
        public = await client.get("/public")

    assert [500, 503] == statuses
    assert (500, None) == (
        public.status_code,
        public.headers.get("x-circuit-breaker-state"),
    )


@pytest.mark.anyio
async def test_stand_alone_probes_app() -> None:
    """Without an app, the probes middleware is an app of its own: 404 elsewhere."""
    breaker = CircuitBreaker("payment")
    async with in_process(
        ProbesMiddleware(source=breaker, metrics_path=None)
    ) as client:
        ready = await client.get("/ready")
        other = await client.get("/metrics")

    assert (200, "ready") == (ready.status_code, ready.json()["status"])
    assert 404 == other.status_code


class Server:
    """uvicorn serving an app from a thread on a free loopback port."""

    def __init__(self, app: FastAPI) -> None:
        self.port = free_port()
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", ws="none"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def __enter__(self) -> str:
        self._thread.start()
        if not wait_until(lambda: self._server.started, timeout=10):
            msg = "uvicorn did not start"
            raise RuntimeError(msg)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc_info: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


def test_fastapi_under_uvicorn(clock: FakeClock) -> None:
    """A FastAPI app served by uvicorn trips, sheds load, and recovers."""
    breaker = CircuitBreaker(
        "checkout-api", BreakerConfig(max_failures=2, reset_timeout=5), clock=clock
    )
    state = {"status": 503}
    app = FastAPI()

    @app.get("/checkout")
    async def checkout() -> PlainTextResponse:
        """Answer with the status of the moment."""
        return PlainTextResponse("paid", status_code=state["status"])

    app.add_middleware(CircuitBreakerMiddleware, breaker=breaker)
    app.add_middleware(ProbesMiddleware, source=breaker, metrics_path=None)

    with Server(app) as url, httpx.Client(base_url=url) as client:
        failing = [client.get("/checkout").status_code for _ in range(2)]
        shed = client.get("/checkout")
        state["status"] = 200
        clock.advance(5)
        probe = client.get("/checkout")
        health = client.get("/health").json()

    assert [503, 503] == failing
    assert "circuit_open" == shed.json()["status"]
    assert ("paid", "closed") == (probe.text, probe.headers["x-circuit-breaker-state"])
    assert "closed" == health["circuit_breakers"]["checkout-api"]["state"]
