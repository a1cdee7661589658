"""
Circuit breakers for ``httpx``: a transport for ``httpx.Client`` and one for
``httpx.AsyncClient``. Needs ``pip install 'cbcontrol[http]'``.

::

    import httpx
    from cbcontrol.integrations.httpx import BreakerTransport

    client = httpx.Client(transport=BreakerTransport(plane))  # a breaker per host

.. versionadded:: 0.1.0
"""

from __future__ import annotations

from cbcontrol.integrations._httpx import (
    FAILURE_STATUSES,
    AsyncBreakerTransport,
    BreakerTransport,
    RequestBreaker,
)

__all__ = [
    "FAILURE_STATUSES",
    "AsyncBreakerTransport",
    "BreakerTransport",
    "RequestBreaker",
]
