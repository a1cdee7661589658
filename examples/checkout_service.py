"""
The checkout service of ``make demo``: an ASGI app whose calls to three dependencies
go through live-configured circuit breakers.

::

    UPSTREAM_URL=http://127.0.0.1:8081 CBCONTROL_STORE=file://cbcontrol.yaml \\
        python examples/checkout_service.py

It listens on 127.0.0.1 (``PORT``, default a free port), prints one line
``ready {"url": ..., "instance_id": ...}`` once it accepts requests, and stops on
SIGTERM or ctrl-C. Its routes:

``GET /product/<id>``
    a product page: recommendations from ``analytics`` and the user's profile from
    ``user-profile``. It degrades rather than fails: while a breaker rejects, the
    recommendations come from the breaker's response cache (or are left out) and the
    profile is a static guest profile. The headers ``X-Recommendations-From`` and
    ``X-Profile-From`` say where each part came from (``live``, ``cache``,
    ``static``, ``none``, ``error``).
``POST /checkout``
    charges the order through ``payment``: ``200`` when paid, ``502`` when the
    payment service failed, ``503`` with ``Retry-After`` while the breaker rejects
    (the payment service is not called).
``GET /health``, ``/ready``, ``/metrics``
    the probes and Prometheus metrics; ``/ready`` is 503 while ``payment`` rejects.

The breakers get their config from the presets of the same names, the environment
and the store (``CBCONTROL_STORE``), live. Needs ``cbcontrol[http,prometheus,yaml,
watch]``, starlette and uvicorn (``make venv`` installs them all).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import socket
import sys
from typing import TYPE_CHECKING, Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

import cbcontrol
from cbcontrol import CircuitOpenError
from cbcontrol.instrumentation import PrometheusCollector
from cbcontrol.integrations.asgi import ProbesMiddleware
from cbcontrol.integrations.httpx import AsyncBreakerTransport

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from starlette.requests import Request

    from cbcontrol import CircuitBreaker

GUEST = {"user": "guest", "name": "Guest"}
CRITICAL = {"payment"}  # no payment, no checkout: /ready says so


class Checkout:
    """The routes, and the breakers and httpx client they go through."""

    def __init__(self, plane: cbcontrol.ControlPlane, upstream: str) -> None:
        self.payment = plane.breaker("payment")
        self.analytics = plane.breaker("analytics")  # its preset's fallback: cache
        self.profile = plane.breaker(
            "user-profile",
            # A factory: every request gets a response of its own.
            static_fallback=lambda: httpx.Response(200, json=GUEST),
        )
        by_path = {
            "charge": self.payment,
            "recommendations": self.analytics,
            "profile": self.profile,
        }
        self.client = httpx.AsyncClient(
            base_url=upstream,
            transport=AsyncBreakerTransport(
                lambda request: by_path[request.url.path.split("/")[1]]
            ),
            timeout=5,
        )

    def app(self) -> Starlette:
        """The ASGI app."""

        @contextlib.asynccontextmanager
        async def lifespan(_app: Starlette) -> AsyncIterator[None]:
            yield
            await self.client.aclose()

        routes = [
            Route("/product/{id}", self.product),
            Route("/checkout", self.checkout, methods=["POST"]),
        ]
        return Starlette(routes=routes, lifespan=lifespan)

    async def fetch(self, breaker: CircuitBreaker, path: str) -> tuple[Any, str]:
        """GET ``path`` through ``breaker``: the JSON, and where it came from."""
        with breaker.result_origin() as origin:
            try:
                response = await self.client.get(path)
            except CircuitOpenError:
                return None, "none"  # rejected, and no fallback had an answer
            except httpx.HTTPError:
                return None, "error"
        if response.status_code != httpx.codes.OK:
            return None, "error"
        source = "live" if origin.source == "primary" else origin.source
        return response.json(), source

    async def product(self, request: Request) -> JSONResponse:
        """A product page; it degrades rather than fails."""
        product_id = request.path_params["id"]
        user = request.headers.get("x-user", "alice")
        recommendations, recommendations_from = await self.fetch(
            self.analytics, f"/recommendations?product={product_id}"
        )
        user_profile, profile_from = await self.fetch(self.profile, f"/profile/{user}")
        body = {
            "product": product_id,
            "recommendations": recommendations,
            "profile": user_profile,
        }
        headers = {
            "X-Recommendations-From": recommendations_from,
            "X-Profile-From": profile_from,
        }
        return JSONResponse(body, headers=headers)

    async def checkout(self, request: Request) -> JSONResponse:
        """Charge the order; fail fast while payment's breaker rejects."""
        order = await request.json()
        try:
            response = await self.client.post("/charge", json=order)
        except CircuitOpenError as exc:
            # The payment service is not called while the breaker rejects.
            retry = None if exc.retry_after_s is None else math.ceil(exc.retry_after_s)
            body = {
                "error": "payment temporarily unavailable",
                "status": "circuit_open",
                "state": exc.state,
                "retry_after": retry,
            }
            headers = {} if retry is None else {"Retry-After": str(retry)}
            return JSONResponse(body, 503, headers=headers)
        except httpx.HTTPError as exc:
            return JSONResponse({"error": f"payment failed: {exc}"}, 502)
        if response.status_code != httpx.codes.OK:
            failed = {"error": "payment failed", "upstream": response.status_code}
            return JSONResponse(failed, 502)
        return JSONResponse({"status": "paid", "order": order})


def main() -> int:
    """Connect, build the app with its probes and metrics, serve until stopped."""
    upstream = os.environ.get("UPSTREAM_URL", "http://127.0.0.1:8081")
    plane = cbcontrol.connect(app="checkout")
    try:
        PrometheusCollector(plane)  # /metrics: every breaker of the plane
        app = ProbesMiddleware(
            Checkout(plane, upstream).app(), source=plane, critical=CRITICAL
        )
        listener = socket.socket()
        listener.bind(("127.0.0.1", int(os.environ.get("PORT", "0"))))
        listener.listen(128)
        host, port = listener.getsockname()[:2]
        server = uvicorn.Server(
            uvicorn.Config(app, log_level="warning", access_log=False)
        )
        ready = {"url": f"http://{host}:{port}", "instance_id": plane.instance_id}
        print(
            "ready " + json.dumps(ready), flush=True
        )  # connections queue until served
        server.run(sockets=[listener])
    finally:
        plane.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
