"""A flaky HTTP upstream on loopback, told by each test how to answer."""

from __future__ import annotations

import gzip
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
        trickle: Seconds between header lines (a slow answer that never goes quiet
            for long: each read gets data, the whole takes 20 of them).
        gzip: Send the body gzip-encoded (``Content-Encoding: gzip``).
        hits: How many requests reached it.
    """

    def __init__(self) -> None:
        self.status = 200
        self.delay = 0.0
        self.trickle = 0.0
        self.gzip = False
        self.hits = 0
        self._lock = threading.Lock()
        self._closing = threading.Event()
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                upstream.answer(self)

            def do_POST(self) -> None:
                upstream.answer(self)

            def do_HEAD(self) -> None:
                upstream.answer(self)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                """Quiet."""

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.02,), daemon=True
        )

    def answer(self, handler: BaseHTTPRequestHandler) -> None:
        """Answer one request as told: ``answered <status> (#<hit>)``."""
        length = int(handler.headers.get("Content-Length") or 0)
        if length:
            handler.rfile.read(length)
        with self._lock:
            self.hits += 1
            count, status, delay = self.hits, self.status, self.delay
            trickle, encode = self.trickle, self.gzip
        if delay and self._closing.wait(delay):
            return
        body = f"answered {status} (#{count})".encode()
        try:
            handler.send_response(status)
            if encode:
                body = gzip.compress(body)
                handler.send_header("Content-Encoding", "gzip")
            handler.send_header("Content-Length", str(len(body)))
            for i in range(20 if trickle else 0):
                handler.send_header(f"X-Trickle-{i}", "1")
                handler.flush_headers()
                if self._closing.wait(trickle):
                    return
            handler.end_headers()
            if handler.command != "HEAD":
                handler.wfile.write(body)
        except OSError:
            pass  # the client gave up waiting (a timeout test)

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
