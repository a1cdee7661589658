"""
How long a cbctl change takes to be applied and acknowledged by a whole fleet.

What is measured (DESIGN.md §8: "applied by every live instance within tens of
milliseconds (etcd) or a few hundred (file), and confirmed"):

* **etcd, library**: ``ControlStore.update`` (a compare-and-swap write plus its history
  record) followed by ``ControlStore.wait_applied`` until every live instance reports
  the new generation; the time from the start of ``update`` to the return of
  ``wait_applied``, for 1, 10 and 30 instances;
* **etcd, cbctl**: the wall time of a ``cbctl set payment --max-failures N -o json``
  subprocess (interpreter start, imports, connection, write, wait, exit), and the
  ``elapsed_ms`` that cbctl itself reports for its write and wait;
* **file store, library**: the same as the first, on a YAML file store;
* **cbctl start-up**: the wall time of ``cbctl get payment`` (and of ``-o json``,
  ``cbctl list``, ``cbctl set payment --max-failures N --no-wait`` and ``cbctl
  --help``) beside a floor, a script that only imports grpc and the etcd stubs and
  does one read, and ``python -c pass``. cbcontrol and cbctl are byte-compiled
  first, as pip does when it installs the wheel (an editable install run with
  ``PYTHONDONTWRITEBYTECODE`` would otherwise compile ~40 modules on every run).

Instances are real processes (``examples/checkout_app.py``, one ``payment`` breaker
each), all on this machine, talking to a loopback etcd started for the run (the test
suite's helper, Debian's ``etcd``). Each row is ``--writes`` writes (30), one after
the other, each changing ``max_failures``; p99 of 30 samples is the nearest-rank
percentile, i.e. the worst or second-worst sample. Targets: p99 <= 50 ms with
30 instances on etcd; ``cbctl get`` <= 1.5 x the floor, ``cbctl set --no-wait`` <= 2 x
the floor, ``cbctl --help`` <= 300 ms.

Run ``python bench/ack.py`` (about 2 minutes on 2 cores), ``--quick`` for a smoke run,
``--startup`` for the start-up rows alone (one instance, ~30 s), ``--json PATH`` to
keep the numbers. Notes and results: ``bench/ACK.md``.
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import IO, Any, Self, cast

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # for tests.support.etcd, the test suite's etcd helper

import cbcontrol  # noqa: E402
from tests.support.etcd import EtcdServer  # noqa: E402

APP = ROOT / "examples" / "checkout_app.py"
CBCTL = Path(sys.executable).with_name("cbctl")
WAIT_S = 10.0
FLOOR = """\
import sys
import grpc
from pyetcd import etcdrpc
with grpc.insecure_channel(sys.argv[1]) as channel:
    request = etcdrpc.RangeRequest(key=sys.argv[2].encode())
    etcdrpc.KVStub(channel).Range(request, timeout=5)
"""


def percentile(samples: list[float], pct: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


def summary(samples: list[float]) -> dict[str, float]:
    """p50, p99 and max of samples in seconds, as milliseconds."""
    return {
        "p50_ms": round(statistics.median(samples) * 1000, 1),
        "p99_ms": round(percentile(samples, 99) * 1000, 1),
        "max_ms": round(max(samples) * 1000, 1),
    }


def environ(**extra: str) -> dict[str, str]:
    """This environment without cbcontrol settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if "CB_" not in k}
    env.pop("CBCONTROL_STORE", None)
    return {**env, **extra}


class Fleet:
    """``count`` checkout app processes on one store; closed when leaving ``with``."""

    def __init__(self, store: str, count: int, workdir: Path) -> None:
        self.store = store
        self.processes: list[subprocess.Popen[str]] = []
        self.ids: set[str] = set()
        for _ in range(count):
            self.processes.append(
                subprocess.Popen(  # noqa: S603 - this Python, our own script
                    [sys.executable, str(APP)],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                    text=True,
                    env=environ(CBCONTROL_STORE=store),
                    cwd=workdir,
                )
            )

    def __enter__(self) -> Self:
        for process in self.processes:
            # An app prints ready or exits (EOF): connect() never blocks on a store.
            line = cast("IO[str]", process.stdout).readline()
            if not line.startswith("ready "):
                msg = f"an instance did not start: {line!r}"
                raise RuntimeError(msg)
            self.ids.add(json.loads(line.removeprefix("ready "))["instance_id"])
        with cbcontrol.open_store(self.store) as store:
            deadline = time.monotonic() + 30
            while not self.ids <= self.reported(store):
                if time.monotonic() > deadline:
                    msg = "the instances did not report within 30 s"
                    raise RuntimeError(msg)
                time.sleep(0.05)
        return self

    def reported(self, store: cbcontrol.ControlStore) -> set[str]:
        """Instance ids that report a payment breaker."""
        return {s.instance_id for s in store.instances() if "payment" in s.breakers}

    def __exit__(self, *exc_info: object) -> None:
        for process in self.processes:
            with contextlib.suppress(OSError):
                cast("IO[str]", process.stdin).close()
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
            cast("IO[str]", process.stdout).close()


class Values:
    """A different max_failures for every write: 3, 4, ..., 9, 3, ..."""

    def __init__(self) -> None:
        self.n = 0

    def next(self) -> int:
        """The next value."""
        self.n += 1
        return 3 + self.n % 7


def library_acks(store_url: str, writes: int, values: Values) -> dict[str, Any]:
    """
    update + wait_applied, ``writes`` times.

    Two times per write, both from the start of ``update``: when ``wait_applied``
    returned, and when the acknowledgement was complete (the first complete
    :class:`~cbcontrol.Ack` its ``progress`` callback saw, as cbctl does it).
    """
    returned: list[float] = []
    acked: list[float] = []
    incomplete = 0
    with cbcontrol.open_store(store_url) as store:
        # One write first, not counted: it pays for the client's connection and
        # imports, which every later write (and every long-lived tool) reuses.
        warm = store.update(
            "payment", lambda doc: {**doc, "max_failures": values.next()}, actor="bench"
        )
        store.wait_applied("payment", warm.generation, WAIT_S)
        for _ in range(writes):
            value = values.next()
            complete_at: list[float] = []

            def progress(ack: cbcontrol.Ack, seen: list[float] = complete_at) -> None:
                if ack.complete and not seen:
                    seen.append(time.perf_counter())

            start = time.perf_counter()
            result = store.update(
                "payment",
                lambda doc, v=value: {**doc, "max_failures": v},
                actor="bench",
            )
            ack = store.wait_applied(
                "payment", result.generation, WAIT_S, progress=progress
            )
            end = time.perf_counter()
            returned.append(end - start)
            acked.append((complete_at[0] if complete_at else end) - start)
            incomplete += not ack.complete
    return {
        "returned": summary(returned),
        "acked": summary(acked),
        "incomplete": incomplete,
    }


def cbctl(store_url: str, *args: str) -> tuple[float, str]:
    """Run the ``cbctl`` console script; its wall time and stdout."""
    start = time.perf_counter()
    done = subprocess.run(  # noqa: S603 - this Python's cbctl, our arguments
        [str(CBCTL), "--store", store_url, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=environ(CBCTL_ACTOR="bench"),
        check=False,
    )
    wall = time.perf_counter() - start
    if done.returncode != 0:
        msg = f"cbctl {' '.join(args)} exited with {done.returncode}: {done.stderr}"
        raise RuntimeError(msg)
    return wall, done.stdout


def cbctl_acks(store_url: str, writes: int, values: Values) -> dict[str, Any]:
    """``cbctl set -o json``, ``writes`` times: wall time and cbctl's elapsed_ms."""
    walls: list[float] = []
    reported: list[float] = []
    incomplete = 0
    for _ in range(writes):
        wall, out = cbctl(
            store_url,
            "set",
            "payment",
            "--max-failures",
            str(values.next()),
            "-o",
            "json",
        )
        result = json.loads(out)
        walls.append(wall)
        reported.append(result["elapsed_ms"] / 1000)
        incomplete += result["applied"] != result["instances"]
    return {
        "wall": summary(walls),
        "reported": summary(reported),
        "incomplete": incomplete,
    }


def get_vs_floor(
    etcd: EtcdServer, store_url: str, runs: int, values: Values
) -> dict[str, Any]:
    """cbctl's start-up (get, list, set --no-wait, --help) beside one bare etcd read."""
    for package in (ROOT / "cbcontrol", ROOT / "cli" / "cbctl"):
        compileall.compile_dir(package, quiet=1)
    namespace = store_url.rsplit("/", 1)[-1]
    key = f"/cbcontrol/{namespace}/breakers/payment"
    floor = [sys.executable, "-c", FLOOR, etcd.endpoint, key]
    bare = [sys.executable, "-c", "pass"]
    commands: dict[str, Any] = {
        "get": ["get", "payment"],
        "get_json": ["get", "payment", "-o", "json"],
        "list": ["list"],
        "set_no_wait": lambda: [
            "set",
            "payment",
            "--max-failures",
            str(values.next()),
            "--no-wait",
        ],
        "help": ["--help"],
    }
    times: dict[str, list[float]] = {n: [] for n in (*commands, "floor", "python")}
    for _ in range(runs):  # interleaved, so that drifts hit all of them alike
        for name, args in commands.items():
            times[name].append(
                cbctl(store_url, *(args() if callable(args) else args))[0]
            )
        for name, argv in (("floor", floor), ("python", bare)):
            start = time.perf_counter()
            subprocess.run(argv, check=True, capture_output=True, timeout=60)  # noqa: S603
            times[name].append(time.perf_counter() - start)
    result = {name: summary(samples) for name, samples in times.items()}
    floor_p50 = result["floor"]["p50_ms"]
    return {
        **result,
        "ratio_p50": round(result["get"]["p50_ms"] / floor_p50, 2),
        "set_ratio_p50": round(result["set_no_wait"]["p50_ms"] / floor_p50, 2),
    }


def startup(runs: int) -> dict[str, Any]:
    """Only the start-up rows: one instance on a fresh etcd."""
    values = Values()
    workdir = Path(tempfile.mkdtemp(prefix="cbcontrol-bench-"))
    try:
        with EtcdServer() as etcd:
            url = f"etcd://{etcd.endpoint}/bench{uuid.uuid4().hex[:8]}"
            with Fleet(url, 1, workdir):
                cbctl(url, "set", "payment", "--max-failures", str(values.next()))
                return get_vs_floor(etcd, url, runs, values)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def row(cells: list[object], widths: list[int]) -> str:
    """One table row, first column left-aligned."""
    first, *rest = (str(c) for c in cells)
    return f"{first:<{widths[0]}}" + "".join(
        f"{c:>{w}}" for c, w in zip(rest, widths[1:], strict=True)
    )


def main() -> None:
    """Run the measurements and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 and 10, 10 writes")
    parser.add_argument("--writes", type=int, default=None, help="writes per row")
    parser.add_argument("--json", type=Path, help="write the numbers here too")
    parser.add_argument("--startup", action="store_true", help="start-up rows only")
    args = parser.parse_args()
    if args.startup:
        found = startup(args.writes or 30)
        report_startup(found)
        if args.json is not None:
            args.json.write_text(json.dumps(found, indent=2))
        return
    sizes = [1, 10] if args.quick else [1, 10, 30]
    writes = args.writes or (10 if args.quick else 30)
    print(
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"cbcontrol {cbcontrol.__version__}; {writes} writes per row\n",
        flush=True,
    )
    values = Values()
    results: dict[str, Any] = {"etcd": {}, "file": {}}
    workdir = Path(tempfile.mkdtemp(prefix="cbcontrol-bench-"))
    try:
        with EtcdServer() as etcd:
            for count in sizes:
                url = f"etcd://{etcd.endpoint}/bench{uuid.uuid4().hex[:8]}"
                with Fleet(url, count, workdir):
                    library = library_acks(url, writes, values)
                    cli = cbctl_acks(url, writes, values)
                    if count == 1:
                        results["get"] = get_vs_floor(etcd, url, writes, values)
                results["etcd"][count] = {"library": library, "cbctl": cli}
                print(f"  etcd, {count} instance(s): done", flush=True)
            for count in sizes:
                path = workdir / f"store{count}" / "cbcontrol.yaml"
                path.parent.mkdir()
                path.write_text("version: 1\n")  # a missing store is an error
                url = f"file://{path}"
                with Fleet(url, count, workdir):
                    results["file"][count] = library_acks(url, writes, values)
                print(f"  file, {count} instance(s): done", flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    report(results)
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2, default=str))


def report_startup(get: dict[str, Any]) -> None:
    """Print the start-up table and its ratios to the floor."""
    print("\ncbctl start-up, wall time of a fresh process (ms)")
    print(row(["", "p50", "p99"], [34, 10, 10]))
    for name, label in (
        ("get", "cbctl get payment"),
        ("get_json", "cbctl get payment -o json"),
        ("list", "cbctl list"),
        ("set_no_wait", "cbctl set payment ... --no-wait"),
        ("help", "cbctl --help"),
        ("floor", "floor: grpc + etcd stubs, 1 read"),
        ("python", "python -c pass"),
    ):
        print(row([label, *pair(get[name])], [34, 10, 10]))
    print(f"cbctl get / floor (p50): {get['ratio_p50']}x (target <= 1.5x)")
    print(f"cbctl set --no-wait / floor (p50): {get['set_ratio_p50']}x (target <= 2x)")
    print(f"cbctl --help (p50): {get['help']['p50_ms']} ms (target <= 300 ms)")


def pair(stats: dict[str, float]) -> list[float]:
    """p50 and p99 of a summary."""
    return [stats["p50_ms"], stats["p99_ms"]]


def report(results: dict[str, Any]) -> None:
    """Print the tables."""
    widths = [10, 10, 10, 13, 13, 10, 10, 12, 12]
    print("\nWrite -> acknowledged by every instance, etcd on loopback (ms)")
    head = ["instances", "acked p50", "acked p99", "returned p50", "returned p99"]
    print(row([*head, "cbctl p50", "cbctl p99", "its own p50", "its own p99"], widths))
    for count, r in results["etcd"].items():
        lib, cli = r["library"], r["cbctl"]
        cells = [*pair(lib["acked"]), *pair(lib["returned"])]
        cells += [*pair(cli["wall"]), *pair(cli["reported"])]
        print(row([count, *cells], widths))
    print("(acked: from update() until the ack was complete; returned: until")
    print(" wait_applied() returned; cbctl: wall time of `cbctl set -o json`;")
    print(" its own: the elapsed_ms cbctl reports, from the start of its write)")
    print("\nWrite -> acknowledged by every instance, file store (ms)")
    print(row(head, widths[:5]))
    for count, lib in results["file"].items():
        print(row([count, *pair(lib["acked"]), *pair(lib["returned"])], widths[:5]))
    incomplete = sum(r["library"]["incomplete"] for r in results["etcd"].values())
    incomplete += sum(r["cbctl"]["incomplete"] for r in results["etcd"].values())
    incomplete += sum(r["incomplete"] for r in results["file"].values())
    print(f"(writes not acknowledged by all within {WAIT_S:.0f} s: {incomplete})")
    report_startup(results["get"])
    top = max(results["etcd"])
    lib = results["etcd"][top]["library"]
    print(
        f"ack p99 with {top} instances: {lib['acked']['p99_ms']} ms "
        f"(wait_applied returned: {lib['returned']['p99_ms']} ms; target <= 50 ms)"
    )


if __name__ == "__main__":
    main()
