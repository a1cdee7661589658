"""gRPC interceptors for ``grpc`` and ``grpc.aio``: clients, servers, every RPC kind."""

from __future__ import annotations

import asyncio
import collections
import inspect
import math
from collections.abc import Callable, Collection, Container
from typing import TYPE_CHECKING, Any, NoReturn, TypeAlias

from cbcontrol._breaker import CircuitBreaker
from cbcontrol._extras import missing_extra
from cbcontrol.exceptions import CircuitOpenError
from cbcontrol.integrations._guard import Guard

try:
    import grpc
    import grpc.aio
except ImportError as exc:  # pragma: no cover - the tests run with every extra
    raise missing_extra(
        feature="the gRPC integration", package="grpcio", extra="grpc"
    ) from exc

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

__all__ = [
    "DEFAULT_FAILURE_CODES",
    "HEALTH_METHODS",
    "AsyncBreakerServerInterceptor",
    "BreakerClientInterceptor",
    "BreakerServerInterceptor",
    "CircuitOpenRpcError",
    "MethodBreaker",
    "async_client_interceptors",
]

MethodBreaker: TypeAlias = CircuitBreaker | Callable[[str], CircuitBreaker | None]
"""One breaker for every RPC, or a function of the full method name (``None``: none)."""

_Code = grpc.StatusCode

DEFAULT_FAILURE_CODES: frozenset[grpc.StatusCode] = frozenset(
    {
        _Code.UNAVAILABLE,
        _Code.DEADLINE_EXCEEDED,
        _Code.INTERNAL,
        _Code.UNKNOWN,
        _Code.DATA_LOSS,
        _Code.RESOURCE_EXHAUSTED,
    }
)
"""Codes that say the server is in trouble; the others are the caller's own doing."""

HEALTH_METHODS: frozenset[str] = frozenset(
    {"/grpc.health.v1.Health/Check", "/grpc.health.v1.Health/Watch"}
)
"""The standard health service, which a server interceptor leaves alone by default."""

RETRY_AFTER_KEY = "retry-after"


class CircuitOpenRpcError(CircuitOpenError, grpc.RpcError):
    """
    A call rejected by an open breaker, as gRPC code sees it: ``UNAVAILABLE``.

    It is a :class:`~cbcontrol.CircuitOpenError` (``retry_after_s`` tells when to try
    again) and a :class:`grpc.RpcError` with ``code()`` and ``details()``.

    .. versionadded:: 0.1.0
    """

    def code(self) -> grpc.StatusCode:
        """``UNAVAILABLE``."""
        return _Code.UNAVAILABLE

    def details(self) -> str:
        """The rejection's message."""
        return str(self)


class _FailedStatus(grpc.RpcError):
    """Reports a status that counts as a failure to the breaker."""

    def __init__(self, code: grpc.StatusCode) -> None:
        super().__init__(f"the RPC ended with {code.name}")
        self.status = code


def _retry_metadata(err: CircuitOpenError) -> tuple[tuple[str, str | bytes], ...]:
    if err.retry_after_s is None:
        return ()
    return ((RETRY_AFTER_KEY, str(math.ceil(err.retry_after_s))),)


class _Policy:
    """What every interceptor shares: which breaker, and which codes are failures."""

    __slots__ = ("_choose", "_exclude", "_failure_codes")

    def __init__(
        self,
        breaker: MethodBreaker,
        failure_codes: Collection[grpc.StatusCode],
        exclude: Container[str],
    ) -> None:
        if isinstance(breaker, CircuitBreaker):
            self._choose: Callable[[str], CircuitBreaker | None] = lambda _m: breaker
        else:
            self._choose = breaker
        self._failure_codes = frozenset(failure_codes)
        self._exclude = exclude

    def breaker_for(self, method: str | bytes) -> CircuitBreaker | None:
        name = method.decode() if isinstance(method, bytes) else method
        return None if name in self._exclude else self._choose(name)

    def settle(self, guard: Guard, code: grpc.StatusCode | None) -> None:
        """Report the call's end: a failure if its code is one, else a success."""
        if code in self._failure_codes:
            guard.failure(_FailedStatus(code))
        else:
            guard.success()

    def ended_by(self, context: Any, exc: BaseException | None) -> grpc.StatusCode:
        """The code a server handler ended with, having raised ``exc`` (or not)."""
        if isinstance(exc, GeneratorExit | asyncio.CancelledError):
            return _Code.CANCELLED
        code = context.code()
        if exc is None:
            return _Code.OK if code is None else code
        # abort() sets the code before raising; anything else becomes UNKNOWN.
        return _Code.UNKNOWN if code in (None, _Code.OK) else code


class _CallDetails(
    collections.namedtuple(  # noqa: PYI024 - grpc's own details are namedtuples
        "_CallDetails",
        (
            "method",
            "timeout",
            "metadata",
            "credentials",
            "wait_for_ready",
            "compression",
        ),
    ),
    grpc.ClientCallDetails,
):
    """An RPC's details with another timeout (grpc's documented pattern)."""


def _with_deadline(details: Any, breaker: CircuitBreaker, *, aio: bool) -> Any:
    """``details`` with the breaker's ``request_timeout`` when that is shorter."""
    limit = breaker.config.request_timeout
    if limit is None or (details.timeout is not None and details.timeout <= limit):
        return details
    fields = (details.method, limit, details.metadata, details.credentials)
    wait_for_ready = getattr(details, "wait_for_ready", None)
    if aio:
        return grpc.aio.ClientCallDetails(*fields, wait_for_ready)
    return _CallDetails(*fields, wait_for_ready, getattr(details, "compression", None))


def _admit_client(breaker: CircuitBreaker) -> Guard:
    try:
        return Guard(breaker)
    except CircuitOpenError as err:
        raise CircuitOpenRpcError(
            err.breaker, err.state, err.retry_after_s, err.reason
        ) from None


# -- clients -------------------------------------------------------------------------


class BreakerClientInterceptor(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
):
    """
    Sends every RPC of a ``grpc`` channel through a circuit breaker.

    While the breaker rejects, the RPC is not sent and the caller gets
    :class:`CircuitOpenRpcError` (``UNAVAILABLE``). An RPC that ends with a code in
    ``failure_codes`` counts as a failure, any other as a success; a stream is judged
    when it ends. The breaker's fallback chain is not used (an interceptor answers
    with a gRPC call, not a value): for fallbacks, call the stub through the breaker
    instead, ``breaker.call(stub.Charge, request)``, without this interceptor.
    The breaker's ``request_timeout`` is the RPC's deadline when it has none or a
    later one (``DEADLINE_EXCEEDED``, a failure).

    Args:
        breaker: One breaker for every RPC, or a function of the full method name
            (``"/shop.Payments/Charge"``) returning a breaker or ``None``.
        failure_codes: Codes that count as failures (default
            :data:`DEFAULT_FAILURE_CODES`).

    ::

        channel = grpc.intercept_channel(channel, BreakerClientInterceptor(payment))

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        breaker: MethodBreaker,
        *,
        failure_codes: Collection[grpc.StatusCode] = DEFAULT_FAILURE_CODES,
    ) -> None:
        self._policy = _Policy(breaker, failure_codes, ())

    def _intercept(self, continuation: Any, details: Any, request: Any) -> Any:
        policy = self._policy
        breaker = policy.breaker_for(details.method)
        if breaker is None:
            return continuation(details, request)
        guard = _admit_client(breaker)
        try:
            call = continuation(_with_deadline(details, breaker, aio=False), request)
        except BaseException as exc:
            guard.failure(exc)
            raise
        # Every call object of grpc is a Future: the callback runs when the RPC ends,
        # at once if it has ended already (a blocking unary call).
        call.add_done_callback(lambda done: policy.settle(guard, done.code()))
        return call

    def intercept_unary_unary(
        self, continuation: Any, client_call_details: Any, request: Any
    ) -> Any:
        """Guard a unary-unary RPC."""
        return self._intercept(continuation, client_call_details, request)

    def intercept_unary_stream(
        self, continuation: Any, client_call_details: Any, request: Any
    ) -> Any:
        """Guard a unary-stream RPC."""
        return self._intercept(continuation, client_call_details, request)

    def intercept_stream_unary(
        self, continuation: Any, client_call_details: Any, request_iterator: Any
    ) -> Any:
        """Guard a stream-unary RPC."""
        return self._intercept(continuation, client_call_details, request_iterator)

    def intercept_stream_stream(
        self, continuation: Any, client_call_details: Any, request_iterator: Any
    ) -> Any:
        """Guard a stream-stream RPC."""
        return self._intercept(continuation, client_call_details, request_iterator)


class _AsyncClient:
    """The ``grpc.aio`` client logic; one subclass per RPC kind (see below)."""

    def __init__(self, policy: _Policy, pending: set[asyncio.Future[None]]) -> None:
        self._policy = policy
        self._pending = pending

    async def _intercept(self, continuation: Any, details: Any, request: Any) -> Any:
        breaker = self._policy.breaker_for(details.method)
        if breaker is None:
            return await continuation(details, request)
        guard = _admit_client(breaker)
        try:
            call = await continuation(
                _with_deadline(details, breaker, aio=True), request
            )
        except BaseException as exc:
            guard.failure(exc)
            raise
        call.add_done_callback(lambda done: self._settle_later(guard, done))
        return call

    def _settle_later(self, guard: Guard, call: Any) -> None:
        # grpc.aio gives the code to coroutines only; the call has ended, so the
        # task finishes at its first step. Tasks are kept until then.
        task = asyncio.ensure_future(self._settle(guard, call))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _settle(self, guard: Guard, call: Any) -> None:
        self._policy.settle(guard, await call.code())


class _AsyncUnaryUnary(_AsyncClient, grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(
        self, continuation: Any, client_call_details: Any, request: Any
    ) -> Any:
        return await self._intercept(continuation, client_call_details, request)


class _AsyncUnaryStream(_AsyncClient, grpc.aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(
        self, continuation: Any, client_call_details: Any, request: Any
    ) -> Any:
        return await self._intercept(continuation, client_call_details, request)


class _AsyncStreamUnary(_AsyncClient, grpc.aio.StreamUnaryClientInterceptor):
    async def intercept_stream_unary(
        self, continuation: Any, client_call_details: Any, request_iterator: Any
    ) -> Any:
        return await self._intercept(
            continuation, client_call_details, request_iterator
        )


class _AsyncStreamStream(_AsyncClient, grpc.aio.StreamStreamClientInterceptor):
    async def intercept_stream_stream(
        self, continuation: Any, client_call_details: Any, request_iterator: Any
    ) -> Any:
        return await self._intercept(
            continuation, client_call_details, request_iterator
        )


def async_client_interceptors(
    breaker: MethodBreaker,
    *,
    failure_codes: Collection[grpc.StatusCode] = DEFAULT_FAILURE_CODES,
) -> list[grpc.aio.ClientInterceptor]:
    """
    The ``grpc.aio`` twin of :class:`BreakerClientInterceptor`, as a list.

    ``grpc.aio`` files an interceptor under one RPC kind only, so the four kinds come
    as four interceptors::

        channel = grpc.aio.insecure_channel(target,
                                            interceptors=async_client_interceptors(payment))

    Args:
        breaker: One breaker for every RPC, or a function of the full method name.
        failure_codes: Codes that count as failures.

    .. versionadded:: 0.1.0
    """
    policy = _Policy(breaker, failure_codes, ())
    pending: set[asyncio.Future[None]] = set()
    kinds = (_AsyncUnaryUnary, _AsyncUnaryStream, _AsyncStreamUnary, _AsyncStreamStream)
    return [kind(policy, pending) for kind in kinds]


# -- servers -------------------------------------------------------------------------

_HANDLER_KINDS = {
    (False, False): ("unary_unary", grpc.unary_unary_rpc_method_handler),
    (False, True): ("unary_stream", grpc.unary_stream_rpc_method_handler),
    (True, False): ("stream_unary", grpc.stream_unary_rpc_method_handler),
    (True, True): ("stream_stream", grpc.stream_stream_rpc_method_handler),
}


def _rewrap(handler: Any, wrap: Callable[[Any, bool], Any]) -> Any:
    """The same handler with its behavior wrapped (``wrap(behavior, streaming)``)."""
    streaming = bool(handler.response_streaming)
    attr, make = _HANDLER_KINDS[bool(handler.request_streaming), streaming]
    return make(
        wrap(getattr(handler, attr), streaming),
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


def _unreachable() -> NoReturn:
    msg = "unreachable: context.abort() raises"
    raise AssertionError(msg)


class BreakerServerInterceptor(grpc.ServerInterceptor):
    """
    Guards the handlers of a ``grpc`` server with a circuit breaker (the article's
    gRPC interceptors).

    While the breaker rejects, the RPC is answered ``UNAVAILABLE`` with ``retry-after``
    trailing metadata, and the handler does not run (the breaker's fallback chain is
    not used: a server sheds load). A handler that ends with a code
    in ``failure_codes`` (an exception is ``UNKNOWN``; ``context.abort()`` gives its
    code) counts as a failure, any other end as a success.

    Args:
        breaker: One breaker for every RPC, or a function of the full method name
            returning a breaker or ``None``.
        failure_codes: Codes that count as failures.
        exclude_methods: Methods never guarded (default: the health service).

    ::

        server = grpc.server(pool, interceptors=[BreakerServerInterceptor(breaker)])

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        breaker: MethodBreaker,
        *,
        failure_codes: Collection[grpc.StatusCode] = DEFAULT_FAILURE_CODES,
        exclude_methods: Container[str] = HEALTH_METHODS,
    ) -> None:
        self._policy = _Policy(breaker, failure_codes, exclude_methods)

    def intercept_service(self, continuation: Any, handler_call_details: Any) -> Any:
        """Wrap the handler of one RPC."""
        handler = continuation(handler_call_details)
        breaker = self._policy.breaker_for(handler_call_details.method)
        if handler is None or breaker is None:
            return handler
        return _rewrap(
            handler,
            lambda behavior, streaming: self._wrap(
                breaker, behavior, streaming=streaming
            ),
        )

    def _wrap(
        self, breaker: CircuitBreaker, behavior: Any, *, streaming: bool
    ) -> Callable[[Any, Any], Any]:
        policy = self._policy

        def admit(context: Any) -> Guard:
            try:
                return Guard(breaker)
            except CircuitOpenError as err:
                context.set_trailing_metadata(_retry_metadata(err))
                context.abort(_Code.UNAVAILABLE, str(err))
                _unreachable()

        def guarded(request: Any, context: Any) -> Any:
            guard = admit(context)
            try:
                response = behavior(request, context)
            except BaseException as exc:
                policy.settle(guard, policy.ended_by(context, exc))
                raise
            policy.settle(guard, policy.ended_by(context, None))
            return response

        def guarded_stream(request: Any, context: Any) -> Iterator[Any]:
            guard = admit(context)
            try:
                yield from behavior(request, context)
            except BaseException as exc:
                policy.settle(guard, policy.ended_by(context, exc))
                raise
            policy.settle(guard, policy.ended_by(context, None))

        return guarded_stream if streaming else guarded


class AsyncBreakerServerInterceptor(grpc.aio.ServerInterceptor):
    """
    The ``grpc.aio`` twin of :class:`BreakerServerInterceptor`, with the same
    arguments, for ``async def`` handlers (streaming ones may ``yield`` or
    ``await context.write()``).

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        breaker: MethodBreaker,
        *,
        failure_codes: Collection[grpc.StatusCode] = DEFAULT_FAILURE_CODES,
        exclude_methods: Container[str] = HEALTH_METHODS,
    ) -> None:
        self._policy = _Policy(breaker, failure_codes, exclude_methods)

    async def intercept_service(
        self, continuation: Any, handler_call_details: Any
    ) -> Any:
        """Wrap the handler of one RPC."""
        handler = await continuation(handler_call_details)
        breaker = self._policy.breaker_for(handler_call_details.method)
        if handler is None or breaker is None:
            return handler
        return _rewrap(
            handler, lambda behavior, _streaming: self._wrap(breaker, behavior)
        )

    def _wrap(
        self, breaker: CircuitBreaker, behavior: Any
    ) -> Callable[[Any, Any], Any]:
        policy = self._policy

        async def admit(context: Any) -> Guard:
            try:
                return Guard(breaker)
            except CircuitOpenError as err:
                await context.abort(
                    _Code.UNAVAILABLE, str(err), trailing_metadata=_retry_metadata(err)
                )
                _unreachable()

        async def guarded(request: Any, context: Any) -> Any:
            guard = await admit(context)
            try:
                response = await behavior(request, context)
            except BaseException as exc:
                policy.settle(guard, policy.ended_by(context, exc))
                raise
            policy.settle(guard, policy.ended_by(context, None))
            return response

        async def guarded_stream(request: Any, context: Any) -> AsyncIterator[Any]:
            guard = await admit(context)
            try:
                async for item in behavior(request, context):
                    yield item
            except BaseException as exc:
                policy.settle(guard, policy.ended_by(context, exc))
                raise
            policy.settle(guard, policy.ended_by(context, None))

        if inspect.isasyncgenfunction(behavior):
            return guarded_stream
        if inspect.iscoroutinefunction(behavior):
            return guarded
        msg = (
            f"AsyncBreakerServerInterceptor guards async handlers, got {behavior!r}; "
            "use BreakerServerInterceptor on a grpc.server for sync handlers"
        )
        raise TypeError(msg)
