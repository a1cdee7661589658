"""The gRPC interceptors against real servers on loopback: grpc and grpc.aio."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import grpc
import grpc.aio
import pytest

from cbcontrol import BreakerConfig, CircuitBreaker, CircuitOpenError, State
from cbcontrol.integrations.grpc import (
    AsyncBreakerServerInterceptor,
    BreakerClientInterceptor,
    BreakerServerInterceptor,
    CircuitOpenRpcError,
    async_client_interceptors,
)
from tests.support.waiting import wait_until

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterator

SERVICE = "test.Echo"
UNARY = f"/{SERVICE}/Unary"
SERVER_STREAM = f"/{SERVICE}/ServerStream"
CLIENT_STREAM = f"/{SERVICE}/ClientStream"
BIDI = f"/{SERVICE}/Bidi"
HEALTH = "/grpc.health.v1.Health/Check"


class Backend:
    """How the handlers end: ``None`` answers, a code aborts, ``"raise"`` raises."""

    def __init__(self) -> None:
        self.end: grpc.StatusCode | str | None = None
        self.calls = 0
        self.slow = threading.Event()  # set: sync handlers wait until the RPC ends

    def finish(self, context: Any) -> None:
        """End the RPC as told (sync handlers)."""
        self.calls += 1
        if self.slow.is_set():
            ended = threading.Event()
            context.add_callback(ended.set)
            ended.wait(10)
        if self.end == "raise":
            raise RuntimeError("the handler crashed")
        if isinstance(self.end, grpc.StatusCode):
            context.abort(self.end, "told to fail")

    async def afinish(self, context: Any) -> None:
        """End the RPC as told (async handlers)."""
        self.calls += 1
        if self.end == "raise":
            raise RuntimeError("the handler crashed")
        if isinstance(self.end, grpc.StatusCode):
            await context.abort(self.end, "told to fail")


def sync_handlers(backend: Backend) -> grpc.GenericRpcHandler:
    """The four RPC kinds on bytes (no protobuf), plus a health check."""

    def unary(request: bytes, context: Any) -> bytes:
        backend.finish(context)
        return request

    def server_stream(request: bytes, context: Any) -> Iterator[bytes]:
        yield request
        backend.finish(context)
        yield request

    def client_stream(requests: Iterator[bytes], context: Any) -> bytes:
        joined = b"".join(requests)
        backend.finish(context)
        return joined

    def bidi(requests: Iterator[bytes], context: Any) -> Iterator[bytes]:
        yield from requests
        backend.finish(context)

    return grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "Unary": grpc.unary_unary_rpc_method_handler(unary),
            "ServerStream": grpc.unary_stream_rpc_method_handler(server_stream),
            "ClientStream": grpc.stream_unary_rpc_method_handler(client_stream),
            "Bidi": grpc.stream_stream_rpc_method_handler(bidi),
        },
    )


def health_handler() -> grpc.GenericRpcHandler:
    """A stand-in for the standard health service, on its method name."""
    return grpc.method_handlers_generic_handler(
        "grpc.health.v1.Health",
        {"Check": grpc.unary_unary_rpc_method_handler(lambda req, ctx: b"SERVING")},
    )


@pytest.fixture
def backend() -> Backend:
    """The handlers' behaviour."""
    return Backend()


@pytest.fixture
def breaker() -> CircuitBreaker:
    """Opens after two failures, for a minute."""
    return CircuitBreaker("echo", BreakerConfig(max_failures=2, reset_timeout=60))


def serve(backend: Backend, interceptors: list[Any]) -> tuple[grpc.Server, str]:
    """A started grpc server on a free loopback port, and its address."""
    server = grpc.server(ThreadPoolExecutor(max_workers=4), interceptors=interceptors)
    server.add_generic_rpc_handlers((sync_handlers(backend), health_handler()))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, f"127.0.0.1:{port}"


@pytest.fixture
def plain_server(backend: Backend) -> Iterator[str]:
    """A server without interceptors."""
    server, address = serve(backend, [])
    yield address
    server.stop(None)


@pytest.fixture
def channel(plain_server: str, breaker: CircuitBreaker) -> Iterator[grpc.Channel]:
    """A channel to the plain server, through the client interceptor."""
    with grpc.insecure_channel(plain_server) as raw:
        yield grpc.intercept_channel(raw, BreakerClientInterceptor(breaker))


def test_client_failures_open_the_breaker(
    channel: grpc.Channel, backend: Backend, breaker: CircuitBreaker
) -> None:
    """INTERNAL twice opens it; then the RPC is not sent and UNAVAILABLE comes back."""
    backend.end = grpc.StatusCode.INTERNAL
    call = channel.unary_unary(UNARY)
    for _ in range(2):
        with pytest.raises(grpc.RpcError):
            call(b"x", timeout=5)

    with pytest.raises(CircuitOpenRpcError) as rejected:
        call(b"x", timeout=5)

    assert 2 == backend.calls
    assert State.OPEN is breaker.state
    assert grpc.StatusCode.UNAVAILABLE == rejected.value.code()
    assert isinstance(rejected.value, CircuitOpenError)
    assert rejected.value.retry_after_s == pytest.approx(60, abs=1)


def test_client_request_timeout_is_the_deadline(
    plain_server: str, backend: Backend
) -> None:
    """An RPC without a deadline gets the breaker's request_timeout, and counts."""
    breaker = CircuitBreaker("echo", BreakerConfig(request_timeout="200ms"))
    backend.slow.set()
    with grpc.insecure_channel(plain_server) as raw:
        channel = grpc.intercept_channel(raw, BreakerClientInterceptor(breaker))
        with pytest.raises(grpc.RpcError) as late:
            channel.unary_unary(UNARY)(b"x")

    assert grpc.StatusCode.DEADLINE_EXCEEDED == late.value.code()  # type: ignore[attr-defined]
    assert 1 == breaker.snapshot().failures


@pytest.mark.anyio
async def test_async_client_request_timeout_is_the_deadline(
    plain_server: str, backend: Backend
) -> None:
    """grpc.aio: a later deadline is brought down to request_timeout."""
    breaker = CircuitBreaker("echo", BreakerConfig(request_timeout="200ms"))
    backend.slow.set()
    interceptors = async_client_interceptors(breaker)
    async with grpc.aio.insecure_channel(plain_server, interceptors=interceptors) as ch:
        with pytest.raises(grpc.aio.AioRpcError) as late:
            await ch.unary_unary(UNARY)(b"x", timeout=30)

    assert grpc.StatusCode.DEADLINE_EXCEEDED == late.value.code()
    assert await eventually(lambda: breaker.snapshot().failures == 1)


def test_client_errors_of_the_caller_count_as_successes(
    channel: grpc.Channel, backend: Backend, breaker: CircuitBreaker
) -> None:
    """NOT_FOUND is not the server's trouble: a success, as is OK."""
    call = channel.unary_unary(UNARY)
    call(b"x", timeout=5)
    backend.end = grpc.StatusCode.NOT_FOUND

    with pytest.raises(grpc.RpcError):
        call(b"x", timeout=5)

    assert (2, 0) == (breaker.snapshot().successes, breaker.snapshot().failures)


def test_client_streams_are_judged_when_they_end(
    channel: grpc.Channel, backend: Backend, breaker: CircuitBreaker
) -> None:
    """Each of the streaming kinds counts once, by the code it ends with."""
    answers = list(channel.unary_stream(SERVER_STREAM)(b"a", timeout=5))
    joined = channel.stream_unary(CLIENT_STREAM)(iter([b"a", b"b"]), timeout=5)
    echoed = list(channel.stream_stream(BIDI)(iter([b"c", b"d"]), timeout=5))
    backend.end = grpc.StatusCode.UNAVAILABLE
    with pytest.raises(grpc.RpcError):
        list(channel.unary_stream(SERVER_STREAM)(b"a", timeout=5))

    assert ([b"a", b"a"], b"ab", [b"c", b"d"]) == (answers, joined, echoed)
    assert wait_until(lambda: breaker.snapshot().calls == 4)
    assert (3, 1) == (breaker.snapshot().successes, breaker.snapshot().failures)


def test_client_futures_are_judged(
    channel: grpc.Channel, backend: Backend, breaker: CircuitBreaker
) -> None:
    """A .future() call counts when it completes."""
    backend.end = grpc.StatusCode.DEADLINE_EXCEEDED
    future = channel.unary_unary(UNARY).future(b"x", timeout=5)

    with pytest.raises(grpc.RpcError):
        future.result()

    assert wait_until(lambda: breaker.snapshot().failures == 1)


@pytest.fixture
def guarded_server(backend: Backend, breaker: CircuitBreaker) -> Iterator[str]:
    """A server whose handlers the server interceptor guards."""
    server, address = serve(backend, [BreakerServerInterceptor(breaker)])
    yield address
    server.stop(None)


def test_server_sheds_load_while_open(
    guarded_server: str, backend: Backend, breaker: CircuitBreaker
) -> None:
    """Crashing handlers open it; then UNAVAILABLE + retry-after, handler untouched."""
    backend.end = "raise"
    with grpc.insecure_channel(guarded_server) as channel:
        call = channel.unary_unary(UNARY)
        codes = []
        for _ in range(2):
            with pytest.raises(grpc.RpcError) as failed:
                call(b"x", timeout=5)
            codes.append(failed.value.code())
        with pytest.raises(grpc.RpcError) as rejected:
            call(b"x", timeout=5)
        health = channel.unary_unary(HEALTH)(b"", timeout=5)

    assert [grpc.StatusCode.UNKNOWN] * 2 == codes
    assert 2 == backend.calls
    assert grpc.StatusCode.UNAVAILABLE == rejected.value.code()
    assert ("retry-after", "60") in rejected.value.trailing_metadata()
    assert b"SERVING" == health  # the health service is never guarded


def test_server_streams_count_by_their_end(
    guarded_server: str, backend: Backend, breaker: CircuitBreaker
) -> None:
    """A stream that ends in abort(INTERNAL) fails; abort(NOT_FOUND) does not."""
    with grpc.insecure_channel(guarded_server) as channel:
        backend.end = grpc.StatusCode.INTERNAL
        with pytest.raises(grpc.RpcError):
            list(channel.stream_stream(BIDI)(iter([b"a"]), timeout=5))
        backend.end = grpc.StatusCode.NOT_FOUND
        with pytest.raises(grpc.RpcError):
            list(channel.unary_stream(SERVER_STREAM)(b"a", timeout=5))

    assert wait_until(lambda: breaker.snapshot().calls == 2)
    assert (1, 1) == (breaker.snapshot().successes, breaker.snapshot().failures)


# -- grpc.aio ---------------------------------------------------------------------


@pytest.fixture
def anyio_backend() -> str:
    """grpc.aio runs on asyncio."""
    return "asyncio"


def async_handlers(backend: Backend) -> grpc.GenericRpcHandler:
    """The RPC kinds as async handlers."""

    async def unary(request: bytes, context: Any) -> bytes:
        """Echo, then end as told."""
        await backend.afinish(context)
        return request

    async def server_stream(request: bytes, context: Any) -> AsyncIterator[bytes]:
        """Yield the request, then end as told."""
        yield request
        await backend.afinish(context)

    async def bidi(requests: AsyncIterator[bytes], context: Any) -> None:
        """Write back each request, then end as told."""
        async for request in requests:
            await context.write(request)
        await backend.afinish(context)

    return grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "Unary": grpc.unary_unary_rpc_method_handler(unary),
            "ServerStream": grpc.unary_stream_rpc_method_handler(server_stream),
            "Bidi": grpc.stream_stream_rpc_method_handler(bidi),
        },
    )


async def eventually(predicate: Callable[[], bool]) -> bool:
    """Wait up to 5 s for ``predicate``, without blocking the event loop."""
    for _ in range(500):
        if predicate():
            return True
        await asyncio.sleep(0.01)
    return predicate()


async def aserve(backend: Backend, interceptors: list[Any]) -> tuple[Any, str]:
    """A started grpc.aio server and its address."""
    server = grpc.aio.server(interceptors=interceptors)
    server.add_generic_rpc_handlers((async_handlers(backend),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, f"127.0.0.1:{port}"


@pytest.mark.anyio
async def test_async_client_opens_and_rejects(
    backend: Backend, breaker: CircuitBreaker
) -> None:
    """grpc.aio client interceptors: failures open the breaker, then rejection."""
    server, address = await aserve(backend, [])
    interceptors = async_client_interceptors(breaker)
    try:
        async with grpc.aio.insecure_channel(address, interceptors=interceptors) as ch:
            streamed = [item async for item in ch.unary_stream(SERVER_STREAM)(b"s")]
            backend.end = grpc.StatusCode.UNAVAILABLE
            for _ in range(2):
                with pytest.raises(grpc.RpcError):
                    await ch.unary_unary(UNARY)(b"x", timeout=5)
            assert await eventually(lambda: breaker.state is State.OPEN)
            with pytest.raises(CircuitOpenRpcError):
                await ch.unary_unary(UNARY)(b"x", timeout=5)
    finally:
        await server.stop(None)

    assert [b"s"] == streamed
    assert await eventually(lambda: breaker.snapshot().calls == 3)
    assert (1, 2) == (breaker.snapshot().successes, breaker.snapshot().failures)
    assert 3 == backend.calls


@pytest.mark.anyio
async def test_async_server_sheds_load_while_open(
    backend: Backend, breaker: CircuitBreaker
) -> None:
    """grpc.aio server interceptor: crashes open it, then UNAVAILABLE, streams too."""
    server, address = await aserve(backend, [AsyncBreakerServerInterceptor(breaker)])
    try:
        async with grpc.aio.insecure_channel(address) as channel:
            echoed = [m async for m in channel.stream_stream(BIDI)(iter([b"a", b"b"]))]
            backend.end = "raise"
            for _ in range(2):
                with pytest.raises(grpc.RpcError):
                    await channel.unary_unary(UNARY)(b"x", timeout=5)
            with pytest.raises(grpc.aio.AioRpcError) as rejected:
                await channel.unary_unary(UNARY)(b"x", timeout=5)
            with pytest.raises(grpc.aio.AioRpcError) as rejected_stream:
                [m async for m in channel.unary_stream(SERVER_STREAM)(b"s")]
    finally:
        await server.stop(None)

    assert [b"a", b"b"] == echoed
    assert grpc.StatusCode.UNAVAILABLE == rejected.value.code()
    assert grpc.StatusCode.UNAVAILABLE == rejected_stream.value.code()
    assert ("retry-after", "60") in tuple(rejected.value.trailing_metadata())
    assert 3 == backend.calls
    assert await eventually(lambda: breaker.snapshot().calls == 3)
    assert (1, 2) == (breaker.snapshot().successes, breaker.snapshot().failures)
