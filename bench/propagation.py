"""
Config propagation: how long from a store write until the running breaker has it.

Two measurements, each over N writes (default 50) to one live plane in this process:

* file store: the YAML file is rewritten by an editor-style rename; the clock runs
  from just before the rename to the plane's ``on_applied`` callback;
* etcd: a put on a loopback etcd (started here, like the tests do); the clock runs
  from just before the put to the callback.

Targets (issue "Configuration"): file p99 <= 300 ms, etcd p99 <= 20 ms.

    python bench/propagation.py [--writes N] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cbcontrol

TARGETS_MS = {"file": 300.0, "etcd": 20.0}
_WARMUP = 3


def _measure(plane: cbcontrol.ControlPlane, write: object, writes: int) -> list[float]:
    """Milliseconds from each write to its application."""
    applied = threading.Event()
    plane.on_applied(lambda name: applied.set() if name == "payment" else None)
    breaker = plane.breaker("payment")
    samples = []
    # The first writes after connect() race the watch being set up; they measure
    # start-up, not propagation, and are left out.
    for n in range(-_WARMUP, writes):
        value = 2 + n % 7
        if breaker.config.max_failures == value:
            value += 10
        applied.clear()
        start = time.perf_counter()
        write(value)  # type: ignore[operator]
        if not applied.wait(5.0):
            msg = f"write {n} was not applied within 5 s"
            raise RuntimeError(msg)
        if n >= 0:
            samples.append((time.perf_counter() - start) * 1000)
        if breaker.config.max_failures != value:
            msg = f"applied {breaker.config.max_failures}, wrote {value}"
            raise RuntimeError(msg)
        time.sleep(0.02)
    return samples


def file_store(writes: int) -> list[float]:
    """Write -> applied on the YAML file store."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cbcontrol.yaml"
        path.write_text("version: 1\nbreakers: {}\n")

        def write(value: int) -> None:
            staged = path.with_name(".cbcontrol.yaml.tmp")
            staged.write_text(
                f"version: 1\nbreakers:\n  payment:\n    max_failures: {value}\n"
            )
            staged.replace(path)

        with cbcontrol.connect(f"file://{path}", app="bench", environ={}) as plane:
            return _measure(plane, write, writes)


def etcd_store(writes: int) -> list[float]:
    """Put -> applied on a loopback etcd (puts through etcd's own gRPC stubs)."""
    import grpc
    from pyetcd import etcdrpc

    from tests.support.etcd import EtcdServer

    with EtcdServer() as server, grpc.insecure_channel(server.endpoint) as channel:
        kv = etcdrpc.KVStub(channel)
        key = b"/cbcontrol/bench/breakers/payment"

        def write(value: int) -> None:
            body = json.dumps({"max_failures": value}).encode()
            kv.Put(etcdrpc.PutRequest(key=key, value=body), timeout=5)

        url = f"etcd://{server.endpoint}/bench"
        with cbcontrol.connect(url, app="bench", environ={}) as plane:
            return _measure(plane, write, writes)


def summary(samples: list[float]) -> dict[str, float]:
    """p50, p99 and max in ms."""
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return {"p50": statistics.median(ordered), "p99": p99, "max": ordered[-1]}


def main() -> int:
    """Run both measurements and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--writes", type=int, default=50)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results = {
        "file": summary(file_store(args.writes)),
        "etcd": summary(etcd_store(args.writes)),
    }
    print(f"{'store':6} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'target p99':>11}")
    for store, s in results.items():
        verdict = "PASS" if s["p99"] <= TARGETS_MS[store] else "FAIL"
        print(
            f"{store:6} {s['p50']:8.1f} {s['p99']:8.1f} {s['max']:8.1f} "
            f"{TARGETS_MS[store]:>8.0f} ms {verdict}"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
