"""A small HTTP server for ``/health``, ``/ready`` and ``/metrics``, in a thread."""

from __future__ import annotations

import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Self

from cbcontrol.instrumentation._endpoints import Endpoints

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from cbcontrol.instrumentation._health import Critical
    from cbcontrol.instrumentation._sources import BreakerSource

__all__ = ["ProbeServer", "start_probe_server"]

logger = logging.getLogger("cbcontrol.instrumentation")
logger.addHandler(logging.NullHandler())

_POLL_S = 0.1  # how often the serving thread looks for close(): its delay at most


class ProbeServer:
    """
    A running probe server; stop it with :meth:`close` (or use it in ``with``).

    Attributes:
        host: The address it listens on.
        port: The port it listens on (the one chosen, when asked for port 0).

    .. versionadded:: 0.1.0
    """

    def __init__(self, server: ThreadingHTTPServer) -> None:
        self._server = server
        host, port = server.server_address[:2]
        self.host = host if isinstance(host, str) else host.decode()
        self.port: int = port
        self._thread = threading.Thread(
            target=server.serve_forever,
            args=(_POLL_S,),
            name="cbcontrol-probes",
            daemon=True,
        )
        self._thread.start()

    @property
    def url(self) -> str:
        """``http://host:port``."""
        return f"http://{self.host}:{self.port}"

    def close(self) -> None:
        """Stop serving and release the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def start_probe_server(
    source: BreakerSource,
    *,
    port: int,
    host: str = "0.0.0.0",  # noqa: S104 - probes and scrapes come from outside the pod
    critical: Critical = (),
    registry: CollectorRegistry | None = None,
    metrics_path: str | None = "/metrics",
) -> ProbeServer:
    """
    Serve ``/health``, ``/ready`` and ``/metrics`` from a thread, for an application
    without a web server of its own (a worker, a consumer, a batch job).

    Args:
        source: What the probes report on: a control plane, a breaker, or breakers.
        port: The port (0 picks a free one; see :attr:`ProbeServer.port`).
        host: The address to listen on.
        critical: The breakers that make the process unready while they reject.
        registry: The Prometheus registry to expose (default: the global one).
        metrics_path: Where metrics answer; ``None`` serves none.

    .. versionadded:: 0.1.0
    """
    endpoints = Endpoints(
        source, critical=critical, registry=registry, metrics_path=metrics_path
    )

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._answer(send_body=True)

        def do_HEAD(self) -> None:
            self._answer(send_body=False)

        def _answer(self, *, send_body: bool) -> None:
            path = self.path.partition("?")[0]
            reply = endpoints.reply(self.command, path, self.headers.get("Accept"))
            if reply is None:
                self.send_error(404)
                return
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            for name, value in reply.headers:
                self.send_header(name, value)
            self.end_headers()
            if send_body:
                self.wfile.write(reply.body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            logger.debug("probe server: " + format, *args)  # noqa: G003

    return ProbeServer(ThreadingHTTPServer((host, port), Handler))
