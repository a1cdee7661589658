"""
Per-call overhead of cbcontrol against pybreaker, circuitbreaker and purgatory.

What is measured: the cost of one call through a *closed* breaker on the success path,
the only path a healthy service takes millions of times. The protected function is a
trivial ``def f(x): return x`` (``async def`` for the async table), so the figures are
pure breaker overhead.

Method:

* every candidate is a function ``run(n)`` that calls the protected function ``n``
  times in a tight ``for`` loop and returns the elapsed ``time.perf_counter_ns``;
* ``n`` is calibrated per candidate so that one loop lasts about 200 ms (60 ms with
  ``--quick``; the calibration runs double as warm-up), then the loop is repeated
  7 times (3) with the garbage collector disabled and the *best* (minimum) time per
  call is kept: noise from the machine only ever adds time;
* "net" is the candidate's ns/call minus the bare call's, so the loop's own cost
  cancels out; the ``functools.wraps`` pass-through wrapper is the floor that any
  decorator pays;
* async candidates are awaited in the same kind of loop inside one event loop
  (a coroutine that never suspends never reaches the loop's scheduler);
* threads: 1 and 4 threads run ``n`` calls each on the *same* breaker; total calls/s
  is calls / (last thread's end - first thread's start), best of 5 (3) runs, 1- and
  4-thread runs alternating. Under the GIL the ideal 4-thread / 1-thread ratio is
  about 1.0: a breaker should lose nothing to contention;
* memory: ``tracemalloc`` bytes retained per breaker while 1,000 breakers are alive
  (names are allocated beforehand, a cbcontrol ``BreakerConfig`` is shared).

Run ``make bench`` (or ``python bench/overhead.py``); ``--quick`` for a smoke run,
``--json PATH`` to keep the numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import gc
import importlib.metadata
import json
import math
import os
import platform
import sys
import threading
import time
import tracemalloc
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path
from typing import Any, Generic, TypeVar

SyncRun = Callable[[int], int]
"""Run ``n`` calls, return the elapsed nanoseconds."""
AsyncRun = Callable[[int], Coroutine[Any, Any, int]]
"""The same, awaiting each call."""
R = TypeVar("R", SyncRun, AsyncRun)

PEERS = ("cbcontrol", "pybreaker", "circuitbreaker", "purgatory")
THREADS = 4
MEMORY_INSTANCES = 1000
# Issue targets: closed-state net overhead as a fraction of circuitbreaker's.
NET_TARGETS = {
    "cbcontrol/consecutive/decorator": 0.3,
    "cbcontrol/count/decorator": 0.3,
    "cbcontrol/time/decorator": 0.4,
}
ASYNC_TARGET = 0.4  # the async decorator's net, as a fraction of circuitbreaker's
REJECT_TARGET = 0.5  # a rejected call, as a fraction of a closed-state call
THREAD_TARGET = 0.9  # 4-thread throughput >= 0.9 x 1-thread
MEMORY_TARGET = 2048  # bytes per breaker, every window config


@dataclass(frozen=True)
class Settings:
    """How long and how often to time each candidate."""

    repeats: int
    target_ns: int
    thread_repeats: int


DEFAULT = Settings(repeats=7, target_ns=200_000_000, thread_repeats=5)
QUICK = Settings(repeats=3, target_ns=60_000_000, thread_repeats=3)


# -- the protected functions and the timing loops --------------------------------------


def f(x: int) -> int:
    """The protected call: as cheap as a Python call gets."""
    return x


async def af(x: int) -> int:
    """The async protected call; never suspends."""
    return x


def _direct(fn: Callable[[int], object]) -> SyncRun:
    def run(n: int) -> int:
        x = 1
        t0 = time.perf_counter_ns()
        for _ in repeat(None, n):
            fn(x)
        return time.perf_counter_ns() - t0

    return run


def _via(call: Callable[[Callable[[int], int], int], object]) -> SyncRun:
    """``call(f, x)``, e.g. ``breaker.call(f, x)``."""

    def run(n: int) -> int:
        x = 1
        t0 = time.perf_counter_ns()
        for _ in repeat(None, n):
            call(f, x)
        return time.perf_counter_ns() - t0

    return run


def _adirect(fn: Callable[[int], Awaitable[object]]) -> AsyncRun:
    async def run(n: int) -> int:
        x = 1
        t0 = time.perf_counter_ns()
        for _ in repeat(None, n):
            await fn(x)
        return time.perf_counter_ns() - t0

    return run


def _avia(
    call: Callable[[Callable[[int], Awaitable[int]], int], Awaitable[object]],
) -> AsyncRun:
    """``await call(af, x)``, e.g. ``await breaker.acall(af, x)``."""

    async def run(n: int) -> int:
        x = 1
        t0 = time.perf_counter_ns()
        for _ in repeat(None, n):
            await call(af, x)
        return time.perf_counter_ns() - t0

    return run


# -- candidates ------------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate(Generic[R]):
    """One row: ``build()`` makes a fresh breaker and returns its timing loop."""

    key: str
    label: str
    build: Callable[[], R]


def _wraps(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)

    return wrapper


def _awraps(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        return await fn(*args, **kwargs)

    return wrapper


def _cb_config(kind: str) -> Any:
    from cbcontrol import BreakerConfig

    if kind == "consecutive":
        return BreakerConfig(max_failures=5)
    return BreakerConfig(
        window_type="count" if kind == "count" else "time",
        window_size={"count": 100, "time": 60, "hour": 3600}[kind],
        failure_rate_threshold=50,
        minimum_calls=10,
    )


def _cbcontrol(kind: str) -> Any:
    from cbcontrol import CircuitBreaker

    return CircuitBreaker("bench", _cb_config(kind))


def _pybreaker() -> Any:
    import pybreaker

    return pybreaker.CircuitBreaker(fail_max=5)


def _circuitbreaker() -> Any:
    import circuitbreaker

    return circuitbreaker.circuit(failure_threshold=5)


def _purgatory_sync() -> Any:
    import purgatory

    return purgatory.SyncCircuitBreakerFactory(default_threshold=5)("bench")


def _purgatory_async() -> Any:
    import purgatory

    return purgatory.AsyncCircuitBreakerFactory(default_threshold=5)("bench")


CB_KINDS = (
    ("consecutive", "consecutive (max_failures=5)"),
    ("count", "count window 100 + rate"),
    ("time", "time window 60 s + rate"),
)
MEMORY_KINDS = (*CB_KINDS, ("hour", "time window 3600 s + rate"))

BARE = "bare"
WRAPS = "wraps"
CIRCUITBREAKER = "circuitbreaker"
CB_COUNT = "cbcontrol/count/decorator"


def sync_candidates() -> list[Candidate[SyncRun]]:
    """The sync rows, floor first."""
    rows: list[Candidate[SyncRun]] = [
        Candidate(BARE, "bare call f(x)", lambda: _direct(f)),
        Candidate(WRAPS, "functools.wraps pass-through", lambda: _direct(_wraps(f))),
    ]
    for kind, text in CB_KINDS:
        rows.append(
            Candidate(
                f"cbcontrol/{kind}/decorator",
                f"cbcontrol {text}, @b",
                functools.partial(lambda k: _direct(_cbcontrol(k)(f)), kind),
            )
        )
        if kind != "time":
            rows.append(
                Candidate(
                    f"cbcontrol/{kind}/call",
                    f"cbcontrol {text}, b.call(f, x)",
                    functools.partial(lambda k: _via(_cbcontrol(k).call), kind),
                )
            )
    rows += [
        Candidate(
            "pybreaker", "pybreaker fail_max=5, @b", lambda: _direct(_pybreaker()(f))
        ),
        Candidate(
            CIRCUITBREAKER,
            "circuitbreaker failure_threshold=5",
            lambda: _direct(_circuitbreaker()(f)),
        ),
        Candidate(
            "purgatory",
            "purgatory SyncCircuitBreakerFactory",
            lambda: _direct(_purgatory_sync()(f)),
        ),
    ]
    return rows


def async_candidates() -> list[Candidate[AsyncRun]]:
    """The async rows; pybreaker has no asyncio support (only Tornado)."""
    rows: list[Candidate[AsyncRun]] = [
        Candidate(BARE, "bare await f(x)", lambda: _adirect(af)),
        Candidate(WRAPS, "functools.wraps pass-through", lambda: _adirect(_awraps(af))),
    ]
    for kind, text in CB_KINDS:
        rows.append(
            Candidate(
                f"cbcontrol/{kind}/decorator",
                f"cbcontrol {text}, @b",
                functools.partial(lambda k: _adirect(_cbcontrol(k)(af)), kind),
            )
        )
        if kind != "time":
            rows.append(
                Candidate(
                    f"cbcontrol/{kind}/acall",
                    f"cbcontrol {text}, await b.acall(f, x)",
                    functools.partial(lambda k: _avia(_cbcontrol(k).acall), kind),
                )
            )
    rows += [
        Candidate(
            CIRCUITBREAKER,
            "circuitbreaker failure_threshold=5",
            lambda: _adirect(_circuitbreaker()(af)),
        ),
        Candidate(
            "purgatory",
            "purgatory AsyncCircuitBreakerFactory",
            lambda: _adirect(_purgatory_async()(af)),
        ),
    ]
    return rows


def _opened(decorate: Callable[[Callable[[int], int]], Callable[[int], int]]) -> Any:
    """Decorate a flaky function, succeed once, fail until the breaker is open."""
    failing = [False]

    def flaky(x: int) -> int:
        if failing[0]:
            raise ValueError(x)
        return x

    guarded = decorate(flaky)
    guarded(1)  # a success: what a response cache would keep
    failing[0] = True
    for _ in range(10):
        try:
            guarded(1)
        except Exception:  # noqa: BLE001, S112 - each library raises its own error
            continue
    failing[0] = False
    return guarded


def _rejecting(fn: Callable[[int], object]) -> SyncRun:
    """Time ``fn(x)`` when every call is rejected and caught."""

    def run(n: int) -> int:
        x = 1
        t0 = time.perf_counter_ns()
        # A plain try/except: contextlib.suppress would add its own cost to the row.
        for _ in repeat(None, n):
            try:  # noqa: SIM105
                fn(x)
            except Exception:  # noqa: BLE001, S110 - the rejection being timed
                pass
        return time.perf_counter_ns() - t0

    return run


def _cb_open(mode: str = "none", **options: Any) -> Any:
    from cbcontrol import BreakerConfig, CircuitBreaker

    config = BreakerConfig(max_failures=1, reset_timeout=3600, fallback=mode)  # type: ignore[arg-type]
    return _opened(CircuitBreaker("bench", config, **options))


def rejected_candidates() -> list[Candidate[SyncRun]]:
    """Calls to an open breaker: rejected, or served by a fallback."""

    def cb_call() -> SyncRun:
        from cbcontrol import BreakerConfig, CircuitBreaker

        b = CircuitBreaker("bench", BreakerConfig(max_failures=1, reset_timeout=3600))
        _opened(b)
        return _rejecting(lambda x: b.call(f, x))

    def cbk(*, fallback: bool) -> SyncRun:
        import circuitbreaker

        breaker = circuitbreaker.circuit(
            failure_threshold=1,
            recovery_timeout=3600,
            fallback_function=(lambda x: x) if fallback else None,
        )
        return _rejecting(_opened(breaker))

    def pyb() -> SyncRun:
        import pybreaker

        return _rejecting(
            _opened(pybreaker.CircuitBreaker(fail_max=1, reset_timeout=3600))
        )

    def purg() -> SyncRun:
        import purgatory

        factory = purgatory.SyncCircuitBreakerFactory(
            default_threshold=1, default_ttl=3600
        )
        return _rejecting(_opened(factory("bench")))

    return [
        Candidate(REJECT_CALL, "cbcontrol b.call(f, x), rejected", cb_call),
        Candidate(
            REJECT_DECORATOR, "cbcontrol @b, rejected", lambda: _rejecting(_cb_open())
        ),
        Candidate(
            REJECT_STATIC,
            "cbcontrol @b, served by a static fallback",
            lambda: _rejecting(_cb_open(static_fallback=0)),
        ),
        Candidate(
            "cbcontrol/alternative",
            "cbcontrol @b, served by a fallback callable",
            lambda: _rejecting(_cb_open(fallback=f)),
        ),
        Candidate(
            "cbcontrol/cache",
            "cbcontrol @b, served from the response cache",
            lambda: _rejecting(_cb_open("cache")),
        ),
        Candidate("pybreaker", "pybreaker @b, rejected", pyb),
        Candidate(
            CIRCUITBREAKER,
            "circuitbreaker, rejected",
            functools.partial(cbk, fallback=False),
        ),
        Candidate(
            "circuitbreaker/fallback",
            "circuitbreaker, served by fallback_function",
            functools.partial(cbk, fallback=True),
        ),
        Candidate("purgatory", "purgatory, rejected", purg),
    ]


REJECT_CALL = "cbcontrol/rejected/call"
REJECT_DECORATOR = "cbcontrol/rejected/decorator"
REJECT_STATIC = "cbcontrol/static"


THREAD_KEYS = (
    BARE,
    WRAPS,
    "cbcontrol/consecutive/decorator",
    CB_COUNT,
    "cbcontrol/time/decorator",
    "pybreaker",
    CIRCUITBREAKER,
    "purgatory",
)


# -- measuring -------------------------------------------------------------------------


def _calibrate(execute: Callable[[int], int], target_ns: int) -> int:
    """Find ``n`` so that ``execute(n)`` lasts about ``target_ns`` (warms up too)."""
    n = 100
    while True:
        elapsed = execute(n)
        if elapsed >= target_ns // 8:
            return max(100, round(n * target_ns / elapsed))
        n *= 4


def best_ns_per_call(execute: Callable[[int], int], settings: Settings) -> float:
    """The minimum ns/call over ``settings.repeats`` timed loops, gc disabled."""
    n = _calibrate(execute, settings.target_ns)
    best = math.inf
    gc.collect()
    gc.disable()
    try:
        for _ in range(settings.repeats):
            best = min(best, execute(n) / n)
    finally:
        gc.enable()
    return best


def _timed_worker(
    run: SyncRun, n: int, barrier: threading.Barrier, spans: list[tuple[int, int]]
) -> None:
    barrier.wait()
    t0 = time.perf_counter_ns()
    run(n)
    spans.append((t0, time.perf_counter_ns()))  # list.append is atomic


def throughput(run: SyncRun, threads: int, n: int) -> float:
    """Total calls/s of ``threads`` threads running ``run(n)`` together, once."""
    barrier = threading.Barrier(threads)
    spans: list[tuple[int, int]] = []
    pool = [
        threading.Thread(target=_timed_worker, args=(run, n, barrier, spans))
        for _ in range(threads)
    ]
    gc.collect()
    gc.disable()
    try:
        for t in pool:
            t.start()
        for t in pool:
            t.join()
    finally:
        gc.enable()
    wall = max(end for _, end in spans) - min(start for start, _ in spans)
    return threads * n * 1e9 / wall


def scaling(run: SyncRun, n: int, repeats: int) -> tuple[float, float]:
    """
    Best 1-thread and best ``THREADS``-thread calls/s, ``n`` calls per thread.

    The two are alternated so that a burst of load from other processes hits both.
    """
    one = many = 0.0
    for _ in range(repeats):
        one = max(one, throughput(run, 1, n))
        many = max(many, throughput(run, THREADS, n))
    return one, many


def bytes_per_instance(make: Callable[[str], object], count: int) -> float:
    """``tracemalloc`` bytes retained per object made by ``make(name)``."""
    make("warm-up")  # first-use caches are not per-instance costs
    names = [f"dependency-{i}" for i in range(count)]
    keep: list[object] = [None] * count
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i, name in enumerate(names):
            keep[i] = make(name)
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    return (after - before) / count


def _memory_makers() -> list[tuple[str, str, Callable[[], Callable[[str], object]]]]:
    def cb(kind: str) -> Callable[[str], object]:
        from cbcontrol import CircuitBreaker

        config = _cb_config(kind)
        return lambda name: CircuitBreaker(name, config)

    def pyb() -> Callable[[str], object]:
        import pybreaker

        return lambda name: pybreaker.CircuitBreaker(fail_max=5, name=name)

    def cbk() -> Callable[[str], object]:
        import circuitbreaker

        return lambda name: circuitbreaker.circuit(failure_threshold=5, name=name)

    def purg() -> Callable[[str], object]:
        import purgatory

        factory = purgatory.SyncCircuitBreakerFactory(default_threshold=5)
        return factory.get_breaker

    rows = [
        (f"cbcontrol/{kind}", f"cbcontrol {text}", functools.partial(cb, kind))
        for kind, text in MEMORY_KINDS
    ]
    return [
        *rows,
        ("pybreaker", "pybreaker CircuitBreaker(fail_max=5)", pyb),
        (CIRCUITBREAKER, "circuitbreaker circuit(failure_threshold=5)", cbk),
        ("purgatory", "purgatory factory.get_breaker(name) (1 factory)", purg),
    ]


# -- reporting -------------------------------------------------------------------------


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table, aligned for the terminal; numbers right-aligned."""
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        out = [
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "| " + " | ".join(out) + " |"

    rule = (
        "|"
        + "|".join("-" * (w + 1) + (":" if i else "-") for i, w in enumerate(widths))
        + "|"
    )
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None or math.isnan(value) else format(value, spec)


def _x(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _ratio(num: float | None, den: float | None) -> float | None:
    if num is None or den is None or den <= 0:
        return None
    return num / den


def _cpu_model() -> str:
    try:
        for row in Path("/proc/cpuinfo").read_text().splitlines():
            if row.startswith("model name"):
                return row.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        try:
            __import__(dist)
        except ImportError:
            return "not installed"
        return "not installed as a distribution (imported from the source tree)"


def header() -> dict[str, Any]:
    """What the numbers were measured on."""
    return {
        "python": sys.version.replace("\n", " "),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpus": os.cpu_count(),
        "switch_interval_s": sys.getswitchinterval(),
        "versions": {dist: _version(dist) for dist in PEERS},
    }


def _overhead_table(
    title: str, results: dict[str, float | None], labels: dict[str, str]
) -> tuple[str, dict[str, dict[str, float | None]]]:
    bare = results.get(BARE)
    floor = results.get(WRAPS)
    cbk = results.get(CIRCUITBREAKER)
    floor_net = None if floor is None or bare is None else floor - bare
    cbk_net = None if cbk is None or bare is None else cbk - bare
    rows, data = [], {}
    for key, ns in results.items():
        net = None if ns is None or bare is None else ns - bare
        vs_cbk, vs_floor = _ratio(net, cbk_net), _ratio(net, floor_net)
        if key == BARE:
            vs_cbk = vs_floor = None
        data[key] = {"ns": ns, "net_ns": net, "vs_circuitbreaker": vs_cbk}
        data[key]["vs_wraps"] = vs_floor
        if ns is None:
            rows.append([labels[key], "not installed", "", "", ""])
            continue
        cells = [_fmt(ns, ".1f"), _fmt(net, "+.1f"), _x(vs_cbk), _x(vs_floor)]
        rows.append([labels[key], *cells])
    heads = [title, "ns/call", "net ns", "net / circuitbreaker", "net / wraps"]
    return _table(heads, rows), data


def _measure_all(
    candidates: Sequence[Candidate[R]],
    execute_for: Callable[[R], Callable[[int], int]],
    settings: Settings,
) -> dict[str, float | None]:
    results: dict[str, float | None] = {}
    for cand in candidates:
        try:
            run = cand.build()
        except ImportError:
            results[cand.key] = None
            continue
        results[cand.key] = best_ns_per_call(execute_for(run), settings)
    return results


def run_threads(
    candidates: Sequence[Candidate[SyncRun]],
    per_call: dict[str, float | None],
    settings: Settings,
) -> tuple[str, dict[str, dict[str, float]]]:
    """Throughput of 1 and ``THREADS`` threads on one breaker, per candidate."""
    by_key = {c.key: c for c in candidates}
    rows, data = [], {}
    for key in THREAD_KEYS:
        ns = per_call.get(key)
        if ns is None:
            rows.append([by_key[key].label, "not installed", "", ""])
            continue
        run = by_key[key].build()
        n = max(1000, round(settings.target_ns / ns))
        one, many = scaling(run, n, settings.thread_repeats)
        data[key] = {"calls_s_1": one, f"calls_s_{THREADS}": many, "ratio": many / one}
        rows.append([by_key[key].label, f"{one:,.0f}", f"{many:,.0f}", _x(many / one)])
    heads = ["threads, same breaker", "1 thread calls/s", f"{THREADS} threads calls/s"]
    return _table([*heads, f"{THREADS}T / 1T"], rows), data


def run_memory() -> tuple[str, dict[str, dict[str, float | None]]]:
    """Bytes per breaker for each library, and the ratio to circuitbreaker's."""
    makers = _memory_makers()
    mem: dict[str, float | None] = {}
    for key, _, factory in makers:
        try:
            make = factory()
        except ImportError:
            mem[key] = None
            continue
        mem[key] = bytes_per_instance(make, MEMORY_INSTANCES)
    rows, data = [], {}
    for key, label, _ in makers:
        vs = _ratio(mem[key], mem.get(CIRCUITBREAKER))
        data[key] = {"bytes": mem[key], "vs_circuitbreaker": vs}
        value = "not installed" if mem[key] is None else f"{mem[key]:,.0f}"
        rows.append([label, value, _x(vs)])
    heads = [f"memory ({MEMORY_INSTANCES:,} breakers)", "bytes/breaker"]
    return _table([*heads, "/ circuitbreaker"], rows), data


def _verdict(value: float | None, limit: float, *, at_most: bool = True) -> str:
    if value is None:
        return "n/a"
    ok = value <= limit if at_most else value >= limit
    return "PASS" if ok else "FAIL"


def targets(
    sync: dict[str, dict[str, float | None]],
    asyn: dict[str, dict[str, float | None]],
    rejected: dict[str, dict[str, float | None]],
    threads: dict[str, dict[str, float]],
    memory: dict[str, dict[str, float | None]],
) -> tuple[str, dict[str, float | None]]:
    """The issue's acceptance lines, each with its verdict and its figures."""
    lines, data = [], {}
    labels = dict(CB_KINDS)
    for key, limit in NET_TARGETS.items():
        ratio = sync[key]["vs_circuitbreaker"]
        data[f"{key}/vs_circuitbreaker"] = ratio
        kind = key.split("/")[1]
        lines.append(
            f"TARGET closed {labels[kind]} @b net <= {limit}x circuitbreaker's: "
            f"{_verdict(ratio, limit)} ({_x(ratio)})"
        )
    ratio = asyn["cbcontrol/consecutive/decorator"]["vs_circuitbreaker"]
    data["async/vs_circuitbreaker"] = ratio
    lines.append(
        f"TARGET async @b net <= {ASYNC_TARGET}x circuitbreaker's: "
        f"{_verdict(ratio, ASYNC_TARGET)} ({_x(ratio)})"
    )
    closed = sync["cbcontrol/consecutive/decorator"]["ns"]
    # Both ways a rejected call ends: answered by a fallback (no error is built),
    # and raised (raising and catching alone cost about a closed call).
    for key, what in (
        (REJECT_STATIC, "served by a static fallback"),
        (REJECT_DECORATOR, "raising"),
    ):
        reject = rejected[key]["ns"]
        ratio = _ratio(reject, closed)
        data[f"{key}/vs_closed"] = ratio
        lines.append(
            f"TARGET rejected @b call, {what}, <= {REJECT_TARGET}x a closed @b "
            f"call: {_verdict(ratio, REJECT_TARGET)} ({_fmt(reject, '.1f')} ns / "
            f"{_fmt(closed, '.1f')} ns = {_x(ratio)})"
        )
    lowest = min(
        (v["ratio"] for k, v in threads.items() if k.startswith("cbcontrol/")),
        default=None,
    )
    data["threads_ratio_lowest"] = lowest
    lines.append(
        f"TARGET {THREADS}-thread throughput >= {THREAD_TARGET}x 1-thread: "
        f"{_verdict(lowest, THREAD_TARGET, at_most=False)} (lowest cbcontrol row "
        f"{_x(lowest)})"
    )
    largest = max(
        (v["bytes"] or 0.0 for k, v in memory.items() if k.startswith("cbcontrol/")),
        default=None,
    )
    data["memory_largest"] = largest
    lines.append(
        f"TARGET <= {MEMORY_TARGET} bytes per breaker, every window config: "
        f"{_verdict(largest, MEMORY_TARGET)} (largest {_fmt(largest, ',.0f')})"
    )
    return "\n".join(lines), data


def run_rejected(
    settings: Settings, closed: dict[str, dict[str, float | None]]
) -> tuple[str, dict[str, dict[str, float | None]]]:
    """Calls to an open breaker, beside cbcontrol's closed call and the peers'."""
    cands = rejected_candidates()
    results = _measure_all(cands, lambda run: run, settings)
    closed_ns = closed["cbcontrol/consecutive/decorator"]["ns"]
    cbk_ns = results.get(CIRCUITBREAKER)
    rows, data = [], {}
    for cand in cands:
        ns = results[cand.key]
        vs_closed, vs_cbk = _ratio(ns, closed_ns), _ratio(ns, cbk_ns)
        data[cand.key] = {"ns": ns, "vs_closed": vs_closed, "vs_circuitbreaker": vs_cbk}
        if ns is None:
            rows.append([cand.label, "not installed", "", ""])
            continue
        rows.append([cand.label, _fmt(ns, ".1f"), _x(vs_closed), _x(vs_cbk)])
    heads = [
        "sync, open breaker",
        "ns/call",
        "/ cbcontrol closed @b",
        "/ circuitbreaker rejected",
    ]
    return _table(heads, rows), data


def main(argv: Sequence[str] | None = None) -> int:
    """Measure, print the tables and the issue's targets."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].strip())
    parser.add_argument("--quick", action="store_true", help="smoke run (~20 s)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="write results")
    args = parser.parse_args(argv)
    settings = QUICK if args.quick else DEFAULT
    started = time.perf_counter()

    meta = header()
    print(f"cbcontrol overhead benchmark{' (--quick)' if args.quick else ''}")
    print(f"Python {meta['python']} ({meta['implementation']}), {meta['platform']}")
    print(f"CPU: {meta['cpu']} ({meta['cpus']} logical CPUs)")
    for dist, ver in meta["versions"].items():
        print(f"  {dist:<15} {ver}")
    print(
        f"best of {settings.repeats} loops of ~{settings.target_ns / 1e6:.0f} ms per "
        "row, gc disabled; net = ns/call - bare ns/call\n"
    )

    sync = sync_candidates()
    sync_ns = _measure_all(sync, lambda run: run, settings)
    labels = {c.key: c.label for c in sync}
    text, sync_data = _overhead_table("sync, closed, success", sync_ns, labels)
    print(text + "\n")

    text, thread_data = run_threads(sync, sync_ns, settings)
    print(text + "\n")

    acands = async_candidates()
    with asyncio.Runner() as runner:
        async_ns = _measure_all(
            acands, lambda run: lambda n: runner.run(run(n)), settings
        )
    labels = {c.key: c.label for c in acands}
    text, async_data = _overhead_table("async, closed, success", async_ns, labels)
    print(text)
    print("  pybreaker: no asyncio support (its call_async needs Tornado)\n")

    text, rejected_data = run_rejected(settings, sync_data)
    print(text + "\n")

    text, mem_data = run_memory()
    print(text + "\n")

    text, target_data = targets(
        sync_data, async_data, rejected_data, thread_data, mem_data
    )
    print(text)
    elapsed = time.perf_counter() - started
    print(f"\n(total {elapsed:.0f} s)")

    if args.json:
        report = {
            "meta": meta,
            "settings": {"quick": args.quick, "repeats": settings.repeats},
            "sync": sync_data,
            "threads": thread_data,
            "async": async_data,
            "rejected": rejected_data,
            "memory": mem_data,
            "targets": target_data,
            "elapsed_s": elapsed,
        }
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"results written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
