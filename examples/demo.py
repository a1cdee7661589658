"""
``make demo``: a checkout service whose circuit breakers are operated live.

Starts a flaky upstream (real HTTP, in this process), two instances of
``checkout_service.py`` (an ASGI app under uvicorn, its calls going through the httpx
transport and three breakers), and steady traffic against them. Then, step by step,
with the real ``cbctl`` against the same store (a YAML file: no etcd needed):

1. healthy traffic; ``cbctl list``; ``/ready``;
2. ``cbctl set payment --max-failures 2``, applied by both instances at once;
3. a hand edit of ``cbcontrol.yaml`` (as a ConfigMap update would), applied live;
4. the upstream fails: ``payment`` opens and checkouts fail fast while
   ``analytics`` answers from its response cache and ``user-profile`` with a
   static guest profile; ``/ready`` turns 503; ``/metrics`` shows it all;
5. ``cbctl trip payment`` during the incident: the upstream comes back, the other
   breakers close by themselves, payment stays open until the operator says so;
6. ``cbctl reset payment``: checkouts go through again, ``/ready`` is 200;
7. a summary, and ``cbctl history payment``.

It takes about 30 seconds (``--short``: about 15, for the tests), always stops what it
started and removes its temporary directory. ``--report FILE`` writes what it observed
as JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import itertools
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, cast
from urllib.parse import parse_qs, urlsplit

import httpx
from prometheus_client.parser import text_string_to_metric_families
from ruamel.yaml import YAML

if TYPE_CHECKING:
    from collections.abc import Callable

HERE = Path(__file__).resolve().parent
SERVICE = HERE / "checkout_service.py"
INSTANCES = 2
BREAKERS = ("payment", "analytics", "user-profile")
TIMEOUT_S = 20.0  # for any one wait: a service starting, a cbctl run, a state
MIN_REQUESTS = 12  # counted per traffic window: each kind of request is in it
CONFIG = """\
# The live config of the checkout service (the file store): edit it, or use cbctl.
# Short reset timeouts, so that the demo fits in a minute (the presets wait 10-60 s).
version: 1
breakers:
  payment:
    reset_timeout: 10s
  analytics:
    reset_timeout: 2s
    backoff_multiplier: 1
  user-profile:
    reset_timeout: 2s
    backoff_multiplier: 1
"""


class DemoError(Exception):
    """A step of the demo did not go as it should."""


def say(text: str = "") -> None:
    """Narrate."""
    print(text, flush=True)


def wait_for(predicate: Callable[[], bool], what: str) -> float:
    """Poll ``predicate`` every 50 ms; return the seconds it took, or fail naming it."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > TIMEOUT_S:
            msg = f"timed out waiting for {what}"
            raise DemoError(msg)
        time.sleep(0.05)
    return time.monotonic() - started


# -- the upstream: the three dependencies, healthy or down ---------------------------


class Upstream:
    """Payment, analytics and user profiles over HTTP; ``down``: all answer 503."""

    def __init__(self) -> None:
        self.down = False
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real services do
            disable_nagle_algorithm = True  # headers and body leave at once

            def do_GET(self) -> None:
                self._answer()

            def do_POST(self) -> None:
                self._answer()

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                status, body = upstream.answer(self.path)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                """Quiet."""

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )
        self._thread.start()

    def answer(self, path: str) -> tuple[int, dict[str, Any]]:
        """The status and JSON body for ``path``."""
        if self.down:
            return 503, {"error": "service unavailable"}
        url = urlsplit(path)
        if url.path == "/charge":
            return 200, {"charged": True}
        if url.path == "/recommendations":
            product = parse_qs(url.query).get("product", ["?"])[0]
            return 200, {"for": product, "items": [f"p{product}-a", f"p{product}-b"]}
        if url.path.startswith("/profile/"):
            user = url.path.removeprefix("/profile/")
            return 200, {"user": user, "name": user.title()}
        return 404, {"error": "not found"}

    def close(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()


# -- the checkout service instances ---------------------------------------------------


class Service:
    """One ``checkout_service.py`` process."""

    def __init__(self, number: int, env: dict[str, str], workdir: Path) -> None:
        self.number = number
        self.name = f"checkout-{number}"
        self._log = (workdir / f"{self.name}.log").open("wb")
        self.process = subprocess.Popen(  # noqa: S603 - this Python, our own script
            [sys.executable, str(SERVICE)],
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            encoding="utf-8",
            env=env,
            cwd=workdir,
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        stdout = cast("IO[str]", self.process.stdout)
        threading.Thread(target=self._read, args=(stdout,), daemon=True).start()
        self.url = ""
        self.client = httpx.Client(timeout=5)

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def wait_ready(self) -> None:
        """Wait for the ``ready`` line that gives the service's URL."""
        try:
            line = self._lines.get(timeout=TIMEOUT_S)
        except queue.Empty:
            line = None
        if line is None or not line.startswith("ready "):
            msg = f"{self.name} did not start (exit code {self.process.poll()})"
            raise DemoError(msg)
        self.url = json.loads(line.removeprefix("ready "))["url"]

    def get(self, path: str) -> httpx.Response:
        """GET ``path`` on this instance."""
        return self.client.get(self.url + path)

    def states(self) -> dict[str, str]:
        """Each breaker's state, from ``/health``."""
        breakers = self.get("/health").json()["circuit_breakers"]
        return {name: breakers[name]["state"] for name in BREAKERS}

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """``/metrics``, parsed: ``{(sample name, labels): value}``."""
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(self.get("/metrics").text)
            for s in family.samples
        }

    def metric(self, name: str, **labels: str) -> float | None:
        """One sample of ``/metrics``."""
        return self.metrics().get((name, tuple(sorted(labels.items()))))

    def stop(self) -> None:
        """SIGTERM (uvicorn shuts down, the plane closes); kill it if it hangs."""
        self.client.close()
        if self.process.poll() is None:
            self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)
        self._log.close()


# -- traffic --------------------------------------------------------------------------


class Traffic:
    """
    Steady requests, spread over the instances: two product pages for each checkout.

    Every answer is counted by what the caller got (``paid``, ``rejected`` fast,
    ``failed``; a page's recommendations and profile by where they came from).
    """

    def __init__(self, services: list[Service], interval: float = 0.01) -> None:
        self._services = services
        self._interval = interval
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        """Start sending."""
        self._thread.start()

    def stop(self) -> None:
        """Stop sending (the request in flight ends first)."""
        self._stop.set()
        self._thread.join(timeout=TIMEOUT_S)

    def counts(self) -> Counter[str]:
        """What the callers got so far."""
        with self._lock:
            return Counter(self._counts)

    def _run(self) -> None:
        with httpx.Client(timeout=5) as client:
            for n in itertools.count():
                if self._stop.wait(self._interval):
                    return
                service = self._services[n % len(self._services)]
                try:
                    seen = self._one(client, service.url, n)
                except httpx.HTTPError:
                    seen = ["error"]
                with self._lock:
                    self._counts.update(seen)

    @staticmethod
    def _one(client: httpx.Client, url: str, n: int) -> list[str]:
        if n % 3 == 0:
            answer = client.post(f"{url}/checkout", json={"order": n})
            if answer.status_code == httpx.codes.OK:
                return ["checkout", "paid"]
            fast = (
                answer.status_code == httpx.codes.SERVICE_UNAVAILABLE
                and "Retry-After" in answer.headers
            )
            return ["checkout", "rejected" if fast else "failed"]
        page = client.get(f"{url}/product/{n % 5 + 1}")
        if page.status_code != httpx.codes.OK:
            return ["page", "page-error"]
        parts = (page.headers["X-Recommendations-From"], page.headers["X-Profile-From"])
        return [
            "page",
            "page-full" if parts == ("live", "live") else "page-degraded",
            f"recommendations-{parts[0]}",
            f"profile-{parts[1]}",
        ]


def requests(counts: Counter[str]) -> int:
    """How many requests ``counts`` holds."""
    return counts["checkout"] + counts["page"] + counts["error"]


def describe(counts: Counter[str]) -> list[str]:
    """The traffic lines a viewer reads: what checkouts and pages got."""
    checkout = [
        f"{counts[k]} {label}"
        for k, label in (
            ("paid", "paid"),
            ("rejected", "rejected at once (503 + Retry-After; payment not called)"),
            ("failed", "failed (502: the payment service answered 503)"),
        )
        if counts[k] or k == "paid"
    ]
    sources = {
        "recommendations": (
            ("live", "live"),
            ("cache", "from the cache"),
            ("none", "left out"),
            ("error", "failed"),
        ),
        "profile": (("live", "live"), ("static", "static guest"), ("error", "failed")),
    }
    parts = [
        f"{what} "
        + ", ".join(
            f"{counts[f'{what}-{k}']} {label}"
            for k, label in kinds
            if counts[f"{what}-{k}"]
        )
        for what, kinds in sources.items()
    ]
    pages = f"{counts['page']} served: " + "; ".join(parts)
    if counts["page-error"]:
        pages += f" ({counts['page-error']} errors)"
    return [f"    checkouts  {', '.join(checkout)}", f"    pages      {pages}"]


# -- the operator's side -------------------------------------------------------------


def cbctl(store: str, *args: str) -> None:
    """Run the real cbctl against the store; show the command and its output as is."""
    shown = " ".join(f'"{a}"' if " " in a else a for a in args)
    say(f"  $ cbctl {shown}")
    width = max(shutil.get_terminal_size((120, 24)).columns, 100)
    env = {**os.environ, "COLUMNS": str(width), "PYTHONIOENCODING": "utf-8"}
    env.setdefault("CBCTL_ACTOR", "demo@ops")
    done = subprocess.run(  # noqa: S603 - this Python's cbctl, our arguments
        [sys.executable, "-m", "cbctl", "--store", store, *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=TIMEOUT_S,
        env=env,
        check=False,
    )
    output = "\n".join(
        line.rstrip() for line in (done.stdout + done.stderr).splitlines()
    )
    say(textwrap.indent(output.rstrip(), "      "))
    if done.returncode != 0:  # 4: not applied by every instance in time
        msg = f"cbctl {shown} exited with {done.returncode}"
        raise DemoError(msg)


def hand_edit(path: Path, breaker: str, field: str, value: object) -> None:
    """Edit the YAML file as a person (or a ConfigMap update) would; show the diff."""
    yaml = YAML()  # round trip: comments and layout kept
    before = path.read_text()
    document = yaml.load(before)
    document["breakers"][breaker][field] = value
    edited = path.with_suffix(".edit")
    with edited.open("w") as out:
        yaml.dump(document, out)
    after = edited.read_text()
    edited.replace(path)  # one rename, as editors and the kubelet do
    say(f"  $ vi {path.name}")
    for line in difflib.unified_diff(
        before.splitlines(), after.splitlines(), lineterm="", n=2
    ):
        if not line.startswith(("---", "+++")):
            say(f"      {line}")


# -- the demo ------------------------------------------------------------------------


@dataclass
class Demo:
    """The running parts, and what was observed (``--report``)."""

    store: str
    config: Path
    services: list[Service]
    upstream: Upstream
    traffic: Traffic
    window: float
    started: float = field(default_factory=time.monotonic)
    report: dict[str, Any] = field(default_factory=dict)
    steps: list[tuple[str, Counter[str]]] = field(default_factory=list)

    def title(self, text: str) -> None:
        """A step's title, with the time since the start."""
        say(f"\n[{time.monotonic() - self.started:4.1f}s] {text}")

    def observe(self, step: str) -> Counter[str]:
        """Let traffic flow for a window (and a dozen requests at least); show and
        keep what the callers got."""
        before = self.traffic.counts()
        started = time.monotonic()
        time.sleep(self.window)
        wait_for(
            lambda: requests(self.traffic.counts() - before) >= MIN_REQUESTS,
            "traffic",
        )
        got = self.traffic.counts() - before
        say(f"  traffic, {time.monotonic() - started:.1f} s:")
        for line in describe(got):
            say(line)
        self.steps.append((step, got))
        self.report.setdefault("traffic", {})[step] = dict(got)
        return got

    def ready(self, step: str) -> int:
        """Show ``/ready`` of the first instance, as a load balancer would see it."""
        answer = self.services[0].get("/ready")
        body = answer.json()
        reasons = body.get("reasons", [])
        shown = f"{answer.status_code} {body['status']}"
        if reasons:
            shown += " - " + "; ".join(reasons)
        say(f"  GET {self.services[0].name}/ready -> {shown}")
        self.report.setdefault("ready", {})[step] = answer.status_code
        return answer.status_code

    def states(self, step: str) -> dict[str, dict[str, str]]:
        """Show every instance's breaker states (from ``/health``)."""
        found = {service.name: service.states() for service in self.services}
        say("  breakers:     " + "".join(f"{name:<14}" for name in BREAKERS))
        for name, states in found.items():
            row = "".join(f"{states[b]:<14}" for b in BREAKERS)
            say(f"    {name:<12}{row}")
        self.report.setdefault("states", {})[step] = found
        return found

    def all_in(self, breaker: str, wanted: set[str]) -> bool:
        """Whether ``breaker`` is in one of the ``wanted`` states on every instance."""
        return all(s.states()[breaker] in wanted for s in self.services)

    def config_value(self, breaker: str, field_name: str) -> list[float | None]:
        """A config gauge of ``/metrics``, on every instance."""
        name = f"circuit_breaker_config_{field_name}"
        return [s.metric(name, service=breaker) for s in self.services]

    def show_metrics(self, *names: str) -> None:
        """The lines of the first instance's ``/metrics`` for these metric names."""
        text = self.services[0].get("/metrics").text
        say(f"  GET {self.services[0].name}/metrics   (excerpt)")
        for line in text.splitlines():
            if line.split("{")[0] in names and not line.endswith(" 0.0"):
                say(f"      {line}")


def run(demo: Demo) -> None:
    """The story."""
    store, services = demo.store, demo.services
    demo.title("1. All is well. Traffic flows: product pages and checkouts.")
    demo.observe("healthy")
    demo.ready("healthy")
    say("  What an operator sees, every instance at once:")
    cbctl(store, "list")

    demo.title("2. An operator retunes payment live: trip after 2 failures, not 3.")
    cbctl(store, "set", "payment", "--max-failures", "2", "--reason", "PSP is flaky")
    values = demo.report["payment_max_failures"] = demo.config_value(
        "payment", "max_failures"
    )
    say("  -> both instances applied it before cbctl returned; their /metrics say")
    say(f'     circuit_breaker_config_max_failures{{service="payment"}}: {values}')

    demo.title("3. The platform team edits cbcontrol.yaml (a ConfigMap update would):")
    hand_edit(demo.config, "analytics", "max_failures", 3)
    took = wait_for(
        lambda: demo.config_value("analytics", "max_failures") == [3.0] * INSTANCES,
        "the hand edit to apply",
    )
    demo.report["analytics_max_failures"] = demo.config_value(
        "analytics", "max_failures"
    )
    say(f"  -> applied live by both instances within {took * 1000:.0f} ms; no restart.")

    demo.title("4. The upstream fails: every call to it answers 503.")
    demo.upstream.down = True
    took = wait_for(
        lambda: all(demo.all_in(b, {"open"}) for b in BREAKERS),
        "the breakers to open",
    )
    failures = demo.report["failures_before_open"] = {
        breaker: [
            s.metric(
                "circuit_breaker_requests_total", service=breaker, outcome="failure"
            )
            for s in services
        ]
        for breaker in BREAKERS
    }
    say(f"  -> every breaker opened within {took:.1f} s, each after its own number of")
    say("     failures (on each instance):")
    for breaker, why in zip(
        BREAKERS,
        ("cbctl set, step 2", "the hand edit, step 3", "its preset"),
        strict=True,
    ):
        counts = ", ".join(f"{v:g}" for v in failures[breaker] if v is not None)
        say(f"       {breaker:<14}{counts:<10}({why})")
    demo.states("down")
    demo.ready("down")
    got = demo.observe("down")
    say("  -> checkouts fail fast instead of waiting on a dead service; pages still")
    say(f"     load, {got['recommendations-cache']} with cached recommendations.")
    demo.show_metrics(
        "circuit_breaker_state",
        "circuit_breaker_fallbacks_total",
        "circuit_breaker_cache_hits_total",
        "circuit_breaker_cache_misses_total",
    )

    demo.title("5. Incident INC-42: the PSP is under maintenance. Trip payment.")
    cbctl(
        store, "trip", "payment", "--reason", "INC-42 PSP maintenance", "--for", "30m"
    )
    say("  The upstream comes back. analytics and user-profile probe it and close by")
    say("  themselves; payment stays open until an operator resets it:")
    demo.upstream.down = False
    wait_for(
        lambda: (
            demo.all_in("analytics", {"closed"})
            and demo.all_in("user-profile", {"closed"})
        ),
        "analytics and user-profile to close",
    )
    demo.states("tripped")
    demo.observe("tripped")
    demo.ready("tripped")

    demo.title("6. The PSP is back. Reset payment everywhere.")
    cbctl(store, "reset", "payment")
    demo.states("reset")
    demo.observe("reset")
    demo.ready("reset")
    demo.report["payment_rejected_after_reset"] = [
        s.metric(
            "circuit_breaker_requests_total", service="payment", outcome="rejected"
        )
        for s in services
    ]


def summary(demo: Demo) -> None:
    """What happened, in a table, and where to look next."""
    demo.title("7. Summary: what the callers got, step by step")
    say(f"  {'':<10}{'checkouts':<24}{'product pages':<24}/ready")
    say(f"  {'step':<10}{'paid':>6}{'failed fast':>14}    {'full':>6}{'degraded':>12}")
    for step, got in demo.steps:
        ready = demo.report["ready"][step]
        say(
            f"  {step:<10}{got['paid']:>6}{got['rejected']:>14}    "
            f"{got['page-full']:>6}{got['page-degraded']:>12}      {ready}"
        )
    served = Counter[str]()
    for service in demo.services:
        for (name, labels), value in service.metrics().items():
            if name == "circuit_breaker_fallbacks_total" and value:
                served[" ".join(v for _, v in labels)] += int(value)
    say("  Fallbacks served on both instances (circuit_breaker_fallbacks_total):")
    say("    " + ", ".join(f"{key} {n}" for key, n in sorted(served.items())))
    demo.report["fallbacks"] = dict(served)
    say("  The audit trail of payment, as cbctl keeps it:")
    cbctl(demo.store, "history", "payment")
    say(
        "\n  Read next: examples/checkout_service.py (the service), "
        "docs/integrations.md, deploy/ (Kubernetes, alerts, dashboard)."
    )


def main(argv: list[str] | None = None) -> int:
    """Start everything in a temporary directory, run the demo, always clean up."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--short", action="store_true", help="short windows (tests)")
    parser.add_argument("--report", type=Path, help="write what was observed as JSON")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="cbcontrol-demo-"))
    config = workdir / "cbcontrol.yaml"
    config.write_text(CONFIG)
    store = f"file://{config}"
    upstream = Upstream()
    env = {k: v for k, v in os.environ.items() if "CB_" not in k}
    env.update(
        CBCONTROL_STORE=store,
        CBCONTROL_CACHE_DIR=str(workdir / "cache"),
        UPSTREAM_URL=upstream.url,
    )
    services: list[Service] = []
    traffic = None
    try:
        intro(upstream, config)
        services = [Service(n, env, workdir) for n in range(1, INSTANCES + 1)]
        for service in services:
            service.wait_ready()
        traffic = Traffic(services)
        traffic.start()
        demo = Demo(
            store, config, services, upstream, traffic, 0.6 if args.short else 1.5
        )
        run(demo)
        summary(demo)
        if args.report is not None:
            args.report.write_text(json.dumps(demo.report, indent=2))
    except (DemoError, OSError, httpx.HTTPError, subprocess.TimeoutExpired) as exc:
        print(f"demo failed: {exc}", file=sys.stderr)
        for log in sorted(workdir.glob("*.log")):
            print(f"--- {log.name}\n{log.read_text(errors='replace')}", file=sys.stderr)
        return 1
    finally:
        if traffic is not None:
            traffic.stop()
        for service in services:
            service.stop()
        upstream.close()
        shutil.rmtree(workdir, ignore_errors=True)
    say("\nDone: the services were stopped and the temporary directory removed.")
    return 0


def intro(upstream: Upstream, config: Path) -> None:
    """What runs, and what to watch."""
    say(
        textwrap.dedent(f"""\
        cbcontrol demo: circuit breakers you can operate live
        =====================================================
          traffic --> checkout service x{INSTANCES} --httpx--> flaky upstream
                      (ASGI app, uvicorn)          ({upstream.url})

        The checkout service calls three dependencies, each through a breaker:
          payment        POST /charge            no payment, no checkout (critical)
          analytics      GET  /recommendations   falls back to its response cache
          user-profile   GET  /profile/<user>    falls back to a static guest profile
        Each instance serves /health, /ready and /metrics and reads its breakers'
        config live from {config.name} (the file store: no etcd needed):
        """)
    )
    say(textwrap.indent(config.read_text().rstrip(), "    | "))
    say(
        "\nWatch after each step: what the callers got (the traffic lines), the\n"
        "breakers' states, and /ready (503 takes an instance out of its load balancer)."
    )


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
