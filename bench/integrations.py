"""
Per-request overhead of the httpx transport and the ASGI middleware.

Each pair runs side by side in one process, rounds interleaved, the best round kept:
a bare client (or app) and the same one through a closed breaker. Over loopback, the
server is uvicorn in a process of its own; in process, the network is left out
(``httpx.MockTransport``, the ASGI app called directly), which shows the breaker's
own cost in microseconds.

    python bench/integrations.py            # about a minute
    python bench/integrations.py --quick    # smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any, Self

import httpx

from cbcontrol import BreakerConfig, CircuitBreaker
from cbcontrol.integrations.asgi import CircuitBreakerMiddleware
from cbcontrol.integrations.httpx import AsyncBreakerTransport, BreakerTransport

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

BODY = b"ok"


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:  # noqa: ARG001
    """The smallest ASGI app: 200 "ok"."""
    if scope["type"] != "http":
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-length", b"2")],
        }
    )
    await send({"type": "http.response.body", "body": BODY})


def guarded_app() -> CircuitBreakerMiddleware:
    """The same app behind the middleware."""
    return CircuitBreakerMiddleware(app, CircuitBreaker("bench-api"))


def both_apps() -> Callable[..., Awaitable[None]]:
    """``/guarded`` through the middleware, anything else bare: one server for both."""
    guarded = guarded_app()

    async def route(scope: dict[str, Any], receive: Any, send: Any) -> None:
        target = guarded if scope.get("path") == "/guarded" else app
        await target(scope, receive, send)

    return route


def serve(port: int) -> None:
    """Run uvicorn (in the child process)."""
    import uvicorn

    uvicorn.run(
        both_apps(),
        host="127.0.0.1",
        port=port,
        log_level="error",
        access_log=False,
        lifespan="off",
    )


def free_port() -> int:
    """A free loopback port."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """uvicorn in a child process, stopped on exit."""

    def __init__(self) -> None:
        self.port = free_port()
        args = [sys.executable, __file__, "--serve", str(self.port)]
        self._process = subprocess.Popen(args)  # noqa: S603 - this very script
        self.url = f"http://127.0.0.1:{self.port}/"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                httpx.get(self.url)
            except httpx.TransportError:
                time.sleep(0.05)
            else:
                return
        msg = "uvicorn did not start"
        raise RuntimeError(msg)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._process.terminate()
        self._process.wait(timeout=10)


def timed(run: Callable[[int], None], n: int) -> float:
    """Microseconds per request of ``run(n)``."""
    start = time.perf_counter_ns()
    run(n)
    return (time.perf_counter_ns() - start) / n / 1000


def compare(
    rows: dict[str, Callable[[int], None]], n: int, rounds: int
) -> dict[str, float]:
    """The best µs/request of each row, over interleaved rounds."""
    for run in rows.values():
        run(max(1, n // 10))  # warm up: connections, imports, caches
    best = dict.fromkeys(rows, float("inf"))
    for _ in range(rounds):
        for name, run in rows.items():
            best[name] = min(best[name], timed(run, n))
    return best


def breaker(fallback: str = "none") -> CircuitBreaker:
    """A closed breaker; with ``fallback="cache"`` it keeps every answer to a GET."""
    return CircuitBreaker("upstream", BreakerConfig(fallback=fallback))


def sync_client_rows(
    url: str, fallback: str = "none"
) -> dict[str, Callable[[int], None]]:
    """httpx.Client, bare and through BreakerTransport, against ``url``."""
    bare = httpx.Client()
    guarded = httpx.Client(transport=BreakerTransport(breaker(fallback)))

    def run(client: httpx.Client) -> Callable[[int], None]:
        def loop(n: int) -> None:
            for _ in range(n):
                client.get(url)

        return loop

    return {"bare": run(bare), "breaker": run(guarded)}


def async_client_rows(url: str) -> dict[str, Callable[[int], None]]:
    """httpx.AsyncClient, bare and through AsyncBreakerTransport."""
    loop = asyncio.new_event_loop()
    bare = httpx.AsyncClient()
    guarded = httpx.AsyncClient(transport=AsyncBreakerTransport(breaker()))

    def run(client: httpx.AsyncClient) -> Callable[[int], None]:
        async def requests(n: int) -> None:
            for _ in range(n):
                await client.get(url)

        return lambda n: loop.run_until_complete(requests(n))

    return {"bare": run(bare), "breaker": run(guarded)}


def mock_rows(fallback: str = "none") -> dict[str, Callable[[int], None]]:
    """httpx.Client on MockTransport: the transport's cost without a network."""

    def handler(request: httpx.Request) -> httpx.Response:  # noqa: ARG001
        return httpx.Response(200, content=BODY)

    bare = httpx.Client(transport=httpx.MockTransport(handler))
    guarded = httpx.Client(
        transport=BreakerTransport(
            breaker(fallback), transport=httpx.MockTransport(handler)
        )
    )

    def run(client: httpx.Client) -> Callable[[int], None]:
        def loop(n: int) -> None:
            for _ in range(n):
                client.get("http://upstream/")

        return loop

    return {"bare": run(bare), "breaker": run(guarded)}


def asgi_rows() -> dict[str, Callable[[int], None]]:
    """The ASGI app called directly: the middleware's own cost per request."""
    loop = asyncio.new_event_loop()
    scope = {"type": "http", "path": "/", "method": "GET", "headers": []}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:  # noqa: ARG001
        return None

    def run(target: Callable[..., Awaitable[None]]) -> Callable[[int], None]:
        async def calls(n: int) -> None:
            for _ in range(n):
                await target(scope, receive, send)

        return lambda n: loop.run_until_complete(calls(n))

    return {"bare": run(app), "breaker": run(guarded_app())}


def report(title: str, best: dict[str, float], unit: str = "µs") -> None:
    """One markdown row pair."""
    bare, guarded = best["bare"], best["breaker"]
    scale = 1000.0 if unit == "ns" else 1.0
    print(
        f"| {title:<48} | {bare * scale:>9.1f} | {guarded * scale:>9.1f} "
        f"| {(guarded - bare) * scale:>+8.1f} | {(guarded / bare - 1) * 100:>+6.1f}% |"
    )


def main() -> None:
    """Run every comparison and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        serve(args.serve)
        return
    # Many short rounds, interleaved, the best kept: the load of other work on the
    # machine comes and goes, and can only add time.
    n, rounds = (200, 3) if args.quick else (300, 30)
    print("cbcontrol integrations overhead benchmark")
    print(f"Python {platform.python_version()}, {platform.platform()}")
    print(f"CPUs: {os.cpu_count()}; httpx {httpx.__version__}")
    print(f"best of {rounds} interleaved rounds of {n} requests per row\n")
    header = "| {:<48} | {:>9} | {:>9} | {:>8} | {:>7} |".format(
        "per request", "bare", "breaker", "added", "added %"
    )
    print(header)
    print("|" + "|".join("-" * len(c) for c in header.split("|")[1:-1]) + "|")
    with Server() as server:
        report(
            "httpx.Client over loopback (µs)",
            compare(sync_client_rows(server.url), n, rounds),
        )
        report(
            "httpx.Client over loopback, cache mode (µs)",
            compare(sync_client_rows(server.url, "cache"), n, rounds),
        )
        report(
            "httpx.AsyncClient over loopback (µs)",
            compare(async_client_rows(server.url), n, rounds),
        )
        servers = {"bare": server.url, "breaker": f"{server.url}guarded"}
        client = httpx.Client()

        def hit(url: str) -> Callable[[int], None]:
            def loop(k: int) -> None:
                for _ in range(k):
                    client.get(url)

            return loop

        report(
            "uvicorn app, middleware, over loopback (µs)",
            compare({name: hit(url) for name, url in servers.items()}, n, rounds),
        )
    report(
        "httpx.Client on MockTransport (ns)", compare(mock_rows(), n * 5, rounds), "ns"
    )
    report(
        "httpx.Client on MockTransport, cache mode (ns)",
        compare(mock_rows("cache"), n * 5, rounds),
        "ns",
    )
    report(
        "ASGI app called in process (ns)", compare(asgi_rows(), n * 50, rounds), "ns"
    )


if __name__ == "__main__":
    main()
