"""
ASGI middleware for Starlette, FastAPI and any ASGI app: a circuit breaker around the
app (the article's Gin middleware) and the ``/health``, ``/ready`` and ``/metrics``
endpoints. Needs nothing beyond cbcontrol; ``/metrics`` needs
``pip install 'cbcontrol[prometheus]'``.

::

    from cbcontrol.integrations.asgi import CircuitBreakerMiddleware, ProbesMiddleware

    app.add_middleware(CircuitBreakerMiddleware, breaker=plane.breaker("checkout-api"))
    app.add_middleware(ProbesMiddleware, source=plane, critical={"payment"})

.. versionadded:: 0.1.0
"""

from __future__ import annotations

from cbcontrol.integrations._asgi import (
    PROBE_PATHS,
    STATE_HEADER,
    ASGIApp,
    CircuitBreakerMiddleware,
    ProbesMiddleware,
    Receive,
    Scope,
    ScopeBreaker,
    Send,
)

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
]
