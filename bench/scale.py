"""
How the control plane scales: breakers per process, specs per store, idle writes.

What is measured, against a loopback etcd started for the run (the test suite's
helper, Debian's ``etcd``, fsync on):

* **breakers per process** (10, 1,000, 10,000): a fresh process connects, creates N
  breakers and waits until all their status records are in etcd. Reported: the time
  to publish them all, status bytes per breaker (key + value of its record, plus the
  instance's identity shared out), the largest record, RSS per breaker (the
  process's RSS growth over the breakers, divided by N), and the status writes the
  idle instance makes in a minute (keys written under ``instances/`` and ``status/``,
  counted by a watch over ``--idle`` seconds and scaled to a minute);
* **30 instances x 5,000 specs**: 5,000 breaker specs in the store, 30
  ``examples/checkout_app.py`` processes (one ``payment`` breaker each), ``--writes``
  writes of ``payment`` one after the other, each timed from the start of
  ``ControlStore.update`` to the complete acknowledgement, as ``bench/ack.py`` does;
* **cbctl list over 5,000 breakers**: the wall time of ``cbctl list`` (table and
  ``-o json``) with those 5,000 specs and 30 instances, and with one instance that
  has all 5,000 breakers.

Targets (the store issue): 10,000 breakers per process publish; <= 256 status bytes
per idle closed breaker; 0 status writes from an idle instance; 30 instances x 5,000
specs acknowledged p99 <= 100 ms; ``cbctl list`` over 5,000 breakers <= 1 s.

    python bench/scale.py              # about 4 minutes on 2 cores
    python bench/scale.py --quick      # 10 and 1,000 breakers, 10 instances, 10 writes
    python bench/scale.py --json PATH  # keep the numbers
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from pathlib import Path
from typing import IO, Any, cast

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # for tests.support.etcd, the test suite's etcd helper
sys.path.insert(0, str(Path(__file__).resolve().parent))  # for ack.py

from ack import CBCTL, Fleet, Values, environ, library_acks  # noqa: E402

import cbcontrol  # noqa: E402
from cbcontrol.store import Scope, StoreBackend, open_backend, parse_store_url  # noqa: E402
from tests.support.etcd import EtcdServer  # noqa: E402

MAX_RECORD_BYTES = 256  # the targets of the store issue
MAX_ACK_P99_MS = 100
MAX_LIST_S = 1.0

PROCESS = textwrap.dedent(
    """
    import json, os, sys, time
    import cbcontrol
    from cbcontrol.store import Scope

    def rss():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    url, count = sys.argv[1], int(sys.argv[2])
    plane = cbcontrol.connect(url, app="scale")
    names = [f"b{i:05d}" for i in range(count)]
    before = rss()
    start = time.perf_counter()
    for name in names:
        plane.breaker(name)
    created = time.perf_counter() - start
    after = rss()
    with cbcontrol.open_store(url) as store:
        while True:
            found = store.backend.read(Scope.STATUS).documents
            mine = [d for d in found if d.kind == "status"
                    and d.instance == plane.instance_id and d.data is not None]
            if len(mine) == count:
                break
            if time.perf_counter() - start > 120:
                raise SystemExit(f"only {len(mine)} of {count} records published")
            time.sleep(0.05)
    published = time.perf_counter() - start
    print(json.dumps({"instance": plane.instance_id, "created_s": created,
                      "published_s": published, "rss_bytes": after - before}),
          flush=True)
    sys.stdin.readline()  # stay up, idle, until told
    plane.close()
    """
)


def backend_of(url: str) -> StoreBackend:
    """The backend of a store URL (etcd here)."""
    backend = open_backend(parse_store_url(url))
    if backend is None:
        msg = f"{url} is no shared store"
        raise RuntimeError(msg)
    return backend


def pipes(process: subprocess.Popen[str]) -> tuple[IO[str], IO[str]]:
    """A child's stdin and stdout (both piped)."""
    return cast("IO[str]", process.stdin), cast("IO[str]", process.stdout)


def status_bytes(url: str, instance: str) -> dict[str, Any]:
    """Bytes of one instance's identity and records as stored in etcd."""
    store = parse_store_url(url)
    backend = backend_of(url)
    prefix = f"/cbcontrol/{store.namespace}/"
    client = backend.client  # type: ignore[attr-defined]
    records = [
        len(k) + len(v)
        for k, (v, _) in client.range(prefix + "status/").kvs.items()
        if k.endswith("/" + instance)
    ]
    identity = client.range(f"{prefix}instances/{instance}", prefix=False).kvs
    backend.close()
    identity_bytes = sum(len(k) + len(v) for k, (v, _) in identity.items())
    return {
        "records": len(records),
        "record_bytes": sum(records),
        "max_record": max(records, default=0),
        "identity_bytes": identity_bytes,
    }


def idle_writes(url: str, instance: str, seconds: float) -> int:
    """Keys the instance writes while idle, counted by a watch for ``seconds``."""
    backend = backend_of(url)
    stop = threading.Event()
    count = 0

    def follow() -> None:
        nonlocal count
        for update in backend.watch(Scope.STATUS, stop):
            if not update.complete and update.error is None:
                count += sum(
                    1 for d in update.documents if instance in (d.name, d.instance)
                )

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    time.sleep(seconds)
    stop.set()
    thread.join(timeout=5)
    backend.close()
    return count


def breakers_per_process(etcd: EtcdServer, count: int, idle_s: float) -> dict[str, Any]:
    """One process with ``count`` breakers: publish time, bytes, RSS, idle writes."""
    url = f"etcd://{etcd.endpoint}/scale{uuid.uuid4().hex[:8]}"
    process = subprocess.Popen(  # noqa: S603 - this Python, our own script
        [sys.executable, "-c", PROCESS, url, str(count)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=environ(),
    )
    stdin, stdout = pipes(process)
    try:
        report = json.loads(stdout.readline())
        time.sleep(1.5)  # one more sweep of the publisher, then idle
        sizes = status_bytes(url, report["instance"])
        writes = idle_writes(url, report["instance"], idle_s)
    finally:
        stdin.close()
        process.wait(timeout=60)
    per = (sizes["record_bytes"] + sizes["identity_bytes"]) / max(1, count)
    return {
        "breakers": count,
        "published": sizes["records"] == count,
        "publish_s": round(report["published_s"], 2),
        "bytes_per_breaker": round(per, 1),
        "record_bytes_avg": round(sizes["record_bytes"] / max(1, count), 1),
        "max_record_bytes": sizes["max_record"],
        "identity_bytes": sizes["identity_bytes"],
        "rss_per_breaker": round(report["rss_bytes"] / max(1, count)),
        "idle_writes_per_min": round(writes * 60 / idle_s, 1),
    }


def put_specs(etcd: EtcdServer, url: str, count: int) -> None:
    """``count`` breaker specs (b00000...) written straight into etcd, 100 a txn."""
    store = parse_store_url(url)
    backend = backend_of(url)
    client = backend.client  # type: ignore[attr-defined]
    prefix = f"/cbcontrol/{store.namespace}/breakers/"
    for start in range(0, count, 100):
        puts = {
            f"{prefix}b{i:05d}": json.dumps(
                {"max_failures": 3 + i % 5, "reset_timeout": "30s", "generation": 1}
            ).encode()
            for i in range(start, min(count, start + 100))
        }
        client.txn("specs", unchanged={}, puts=puts)
    backend.close()
    del etcd


def cbctl_wall(url: str, *args: str, runs: int = 5) -> dict[str, float]:
    """The wall time of ``cbctl --store URL args`` (median and worst of ``runs``)."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run(  # noqa: S603 - this Python's cbctl, our arguments
            [str(CBCTL), "--store", url, *args],
            capture_output=True,
            text=True,
            timeout=120,
            env=environ(CBCTL_ACTOR="bench", COLUMNS="200"),
            check=False,
        )
        times.append(time.perf_counter() - start)
        if done.returncode != 0:
            msg = f"cbctl {' '.join(args)}: {done.stderr}"
            raise RuntimeError(msg)
    times.sort()
    return {"p50_s": round(times[len(times) // 2], 3), "max_s": round(times[-1], 3)}


def many_specs(
    etcd: EtcdServer, specs: int, instances: int, writes: int
) -> dict[str, Any]:
    """Acks with ``specs`` specs and ``instances`` apps; cbctl list over them."""
    url = f"etcd://{etcd.endpoint}/specs{uuid.uuid4().hex[:8]}"
    put_specs(etcd, url, specs)
    workdir = Path(tempfile.mkdtemp(prefix="cbcontrol-scale-"))
    try:
        with Fleet(url, instances, workdir):
            acks = library_acks(url, writes, Values())
            listing = {
                "table": cbctl_wall(url, "list"),
                "json": cbctl_wall(url, "list", "-o", "json"),
            }
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    # One instance with every breaker: each has a record to show.
    process = subprocess.Popen(  # noqa: S603 - this Python, our own script
        [sys.executable, "-c", PROCESS, url, str(specs)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=environ(),
    )
    stdin, stdout = pipes(process)
    try:
        stdout.readline()
        listing["one instance, all breakers"] = cbctl_wall(url, "list")
    finally:
        stdin.close()
        process.wait(timeout=60)
    return {"specs": specs, "instances": instances, "acks": acks, "list": listing}


def main() -> None:
    """Run the measurements and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smaller smoke run")
    parser.add_argument("--writes", type=int, default=None, help="writes per row")
    parser.add_argument("--idle", type=float, default=20.0, help="idle seconds")
    parser.add_argument("--json", type=Path, help="write the numbers here too")
    args = parser.parse_args()
    sizes = [10, 1_000] if args.quick else [10, 1_000, 10_000]
    instances = 10 if args.quick else 30
    writes = args.writes or (10 if args.quick else 30)
    for package in (ROOT / "cbcontrol", ROOT / "cli" / "cbctl"):
        compileall.compile_dir(package, quiet=1)
    os.environ.setdefault("CBCONTROL_CACHE_DIR", tempfile.mkdtemp(prefix="cbc-cache-"))
    print(
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"cbcontrol {cbcontrol.__version__}\n",
        flush=True,
    )
    results: dict[str, Any] = {"per_process": []}
    with EtcdServer("--quota-backend-bytes=8589934592") as etcd:
        for count in sizes:
            results["per_process"].append(breakers_per_process(etcd, count, args.idle))
            print(f"  {count} breakers: done", flush=True)
        results["specs"] = many_specs(etcd, 5_000, instances, writes)
        print("  5,000 specs: done", flush=True)
    report(results)
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2))


def report(results: dict[str, Any]) -> None:
    """Print the tables and the targets."""
    print("\nBreakers in one process, status in etcd")
    head = (
        f"{'breakers':>9} {'published':>9} {'in s':>6} {'bytes/breaker':>14} "
        f"{'record avg':>11} {'record max':>11} {'identity':>9} {'RSS/breaker':>12} "
        f"{'idle writes/min':>16}"
    )
    print(head)
    for row in results["per_process"]:
        print(
            f"{row['breakers']:>9,} {'yes' if row['published'] else 'NO':>9} "
            f"{row['publish_s']:>6} {row['bytes_per_breaker']:>14} "
            f"{row['record_bytes_avg']:>11} {row['max_record_bytes']:>11} "
            f"{row['identity_bytes']:>9} {row['rss_per_breaker']:>12,} "
            f"{row['idle_writes_per_min']:>16}"
        )
    specs = results["specs"]
    acked = specs["acks"]["acked"]
    print(
        f"\n{specs['instances']} instances x {specs['specs']:,} specs: write -> "
        f"acknowledged by all, p50 {acked['p50_ms']} ms, p99 {acked['p99_ms']} ms "
        f"(max {acked['max_ms']} ms; incomplete {specs['acks']['incomplete']})"
    )
    for label, stats in specs["list"].items():
        print(f"cbctl list, {label}: p50 {stats['p50_s']} s (max {stats['max_s']} s)")
    biggest = max(results["per_process"], key=lambda r: r["breakers"])
    print()
    print(
        f"TARGET {biggest['breakers']:,} breakers per process publish: "
        f"{'PASS' if biggest['published'] else 'FAIL'}"
    )
    worst = max(r["record_bytes_avg"] for r in results["per_process"])
    print(
        f"TARGET <= {MAX_RECORD_BYTES} status bytes per idle closed breaker: "
        f"{'PASS' if worst <= MAX_RECORD_BYTES else 'FAIL'} ({worst} bytes)"
    )
    idle = max(r["idle_writes_per_min"] for r in results["per_process"])
    verdict = "PASS" if idle == 0 else "FAIL"
    print(f"TARGET 0 status writes from an idle instance: {verdict} ({idle}/min)")
    p99 = acked["p99_ms"]
    print(
        f"TARGET {specs['instances']} x 5,000 specs acknowledged p99 <= "
        f"{MAX_ACK_P99_MS} ms: {'PASS' if p99 <= MAX_ACK_P99_MS else 'FAIL'} ({p99} ms)"
    )
    table = specs["list"]["table"]["p50_s"]
    print(
        f"TARGET cbctl list over 5,000 breakers <= {MAX_LIST_S:g} s: "
        f"{'PASS' if table <= MAX_LIST_S else 'FAIL'} ({table} s)"
    )


if __name__ == "__main__":
    main()
