"""
Circuit breakers where a service meets its dependencies and its callers.

One module per integration, each imported on its own, so an application pays only for
what it uses; a missing optional dependency raises an ``ImportError`` that names the
``pip install 'cbcontrol[...]'`` that fixes it:

- :mod:`cbcontrol.integrations.httpx`: a transport for ``httpx.Client`` and
  ``httpx.AsyncClient`` (extra ``http``).
- :mod:`cbcontrol.integrations.asgi`: middleware for Starlette, FastAPI and any ASGI
  app, and the ``/health``, ``/ready`` and ``/metrics`` endpoints (no extra; metrics
  need ``prometheus``).
- :mod:`cbcontrol.integrations.grpc`: client and server interceptors for ``grpc`` and
  ``grpc.aio`` (extra ``grpc``).
- :mod:`cbcontrol.integrations.dbapi`: a DB-API 2.0 connection wrapper (no extra).

.. versionadded:: 0.1.0
"""

from __future__ import annotations

__all__: list[str] = []
