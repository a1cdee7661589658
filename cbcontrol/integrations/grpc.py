"""
Circuit breakers for gRPC: client and server interceptors for ``grpc`` and
``grpc.aio``, unary and streaming. Needs ``pip install 'cbcontrol[grpc]'``.

::

    from cbcontrol.integrations.grpc import BreakerClientInterceptor

    channel = grpc.intercept_channel(channel, BreakerClientInterceptor(payment))

.. versionadded:: 0.1.0
"""

from __future__ import annotations

from cbcontrol.integrations._grpc import (
    DEFAULT_FAILURE_CODES,
    HEALTH_METHODS,
    AsyncBreakerServerInterceptor,
    BreakerClientInterceptor,
    BreakerServerInterceptor,
    CircuitOpenRpcError,
    MethodBreaker,
    async_client_interceptors,
)

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
