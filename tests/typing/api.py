"""
The public API as users write it, checked by mypy --strict (not run by pytest).

If a change breaks the types users see (the decorator losing a signature, an export
going missing), `make typecheck` fails here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import cbcontrol
from cbcontrol import (
    BreakerConfig,
    BreakerSnapshot,
    CircuitBreaker,
    CircuitOpenError,
    State,
    StateChanged,
    on,
    when,
)
from cbcontrol.config import ConfigBuilder
from cbcontrol.testing import FakeClock, InMemoryConfigSource, capture_events

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

clock = FakeClock()
payment = CircuitBreaker(
    "payment",
    BreakerConfig(max_failures=3, reset_timeout="30s"),
    failure_on=on(ConnectionError) | when(lambda e: "5xx" in str(e)),
    ignore=KeyError,
    clock=clock,
)


@payment
def charge(order_id: str, amount: int) -> str:
    """A sync function keeps its signature through the decorator."""
    return f"{order_id}:{amount}"


@payment
async def fetch(order_id: str) -> bytes:
    """An async function stays awaitable, with its signature."""
    return order_id.encode()


@payment
def rows(n: int) -> Iterator[int]:
    """A generator function."""
    yield from range(n)


@payment
async def stream(n: int) -> AsyncIterator[int]:
    """An async generator function."""
    for i in range(n):
        yield i


def sync_use() -> None:
    """Every sync entry point type-checks with its result type."""
    receipt: str = charge("o-1", 5)
    direct: str = payment.call(charge, "o-2", amount=3)
    with payment:
        pass
    total: int = sum(rows(3))
    state: State = payment.state
    snap: BreakerSnapshot = payment.snapshot()
    explained: dict[str, tuple[object, str]] = payment.explain()
    payment.reconfigure(BreakerConfig(max_failures=5))
    payment.force_open("INC-42", expires_in=60.0)
    payment.clear_override()
    unsubscribe = payment.on_state_change(lambda e: print(e.to_state))
    unsubscribe()
    with capture_events(payment) as events:
        pass
    first: StateChanged | object = events[0] if events else None
    print(receipt, direct, total, state, snap.failure_rate, explained, first)


async def async_use() -> None:
    """Every async entry point type-checks with its result type."""
    data: bytes = await fetch("o-3")
    again: bytes = await payment.acall(fetch, "o-4")
    async with payment:
        pass
    items = [i async for i in stream(2)]
    try:
        await fetch("o-5")
    except CircuitOpenError as exc:
        retry: float | None = exc.retry_after_s
        print(retry)
    print(data, again, items)


def v2_use() -> None:
    """The v2 additions: derived configs, fallbacks and their origin, timers."""
    config: BreakerConfig = BreakerConfig(
        max_failures=None, failure_rate_threshold=50, half_open_max_wait="5s"
    ).with_changes(fallback="cache")
    cached = CircuitBreaker(
        "profile",
        config,
        fallback=lambda user_id: {"id": user_id},
        static_fallback=dict,
        cache_key=lambda user_id: user_id,
    )
    with cached.result_origin() as origin:
        cached.call(charge, "o-6", 1)
    source: str = origin.source
    wait: float | None = cached.retry_after
    stop = cached.on_state_change(lambda e: print(e.trigger), on_time=True)
    stop()
    by_source = cached.snapshot().fallbacks_by_source["cache"]
    moves = cached.snapshot().transitions.get(("closed", "open"), 0)
    print(source, wait, str(cached), by_source, moves)


def compat_use() -> None:
    """The drop-in shims keep the replaced libraries' names."""
    from cbcontrol.compat import circuitbreaker, pybreaker

    db = pybreaker.CircuitBreaker(fail_max=3, reset_timeout=30, name="db")
    db.fail_max = 4
    state: str = db.current_state

    @circuitbreaker.circuit(failure_threshold=2, name="search")
    def search() -> str:
        return "hits"

    print(state, search(), db.call(charge, "o-7", 2))


def plane_use() -> None:
    """The control plane and the builder."""
    source = InMemoryConfigSource()
    with cbcontrol.connect(source=source, app="checkout") as plane:
        pay: CircuitBreaker = plane.breaker("payment")
        source.put("breakers", "payment", {"max_failures": 2})
        print(pay.explain(), plane.errors(), plane.status().instance_id)
    config: BreakerConfig = (
        ConfigBuilder("payment").with_preset("payment").from_environment().build()
    )
    print(config.max_failures)


def store_use() -> None:
    """The operator API cbctl is built on."""
    with cbcontrol.open_store("file://cbcontrol.yaml") as store:
        result: cbcontrol.WriteResult = store.update(
            "payment", lambda doc: {**doc, "max_failures": 3}, actor="ops"
        )
        ack: cbcontrol.Ack = store.wait_applied("payment", result.generation, 5.0)
        print(ack.complete, [s.instance_id for s in store.instances()])
