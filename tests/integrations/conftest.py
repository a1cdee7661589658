"""A flaky HTTP upstream on loopback, told by each test how to answer."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator


class Upstream:
    """
    A real HTTP server on 127.0.0.1 whose answer the test sets.

    Attributes:
        status: The status of every answer.
        delay: Seconds to wait before answering.
        hits: How many requests reached it.
    """

    def __init__(self) -> None:
        self.status = 200
        self.delay = 0.0
        self.hits = 0
        self._lock = threading.Lock()
        self._closing = threading.Event()
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with upstream._lock:
                    upstream.hits += 1
                    status, delay = upstream.status, upstream.delay
                if delay and upstream._closing.wait(delay):
                    return
                body = f"answered {status}".encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # the client gave up waiting (a timeout test)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                """Quiet."""

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.02,), daemon=True
        )

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Serve from a thread."""
        self._thread.start()

    def close(self) -> None:
        """Stop serving."""
        self._closing.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    """A flaky upstream that answers 200 until told otherwise."""
    server = Upstream()
    server.start()
    yield server
    server.close()
