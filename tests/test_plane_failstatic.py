"""
The control plane's fail-static behaviour and its health, on the in-memory store.

The memory store plays a shared store here (``shared=True``), so the plane keeps its
local cache of it as it would of a file or etcd; ``fail()`` and ``wipe()`` play a
store that is away and one whose history went backwards.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import cbcontrol
import cbcontrol._plane
from cbcontrol import State
from cbcontrol.store import MemoryStore, Scope
from tests.support.waiting import wait_until

if TYPE_CHECKING:
    import pytest

TRIP = {"override": {"mode": "forced_open", "reason": "INC-1"}, "max_failures": 2}


def _saved(store: MemoryStore) -> cbcontrol.ControlPlane:
    """A plane that applied the trip and saved it to its cache, then closed."""
    plane = cbcontrol.connect(store, app="a")
    plane.breaker("payment")
    store.put("breakers", "payment", TRIP)
    time.sleep(0.1)  # the cache's first save goes out at once
    plane.close()
    return plane


def test_a_healthy_plane_says_where_its_config_came_from() -> None:
    """health(): the store, reachable, loaded from it, no history problem."""
    store = MemoryStore()
    with cbcontrol.connect(store, app="a") as plane:
        health = plane.health()

    assert ("memory", True, "store", None, False, True) == (
        health.store,
        health.reachable,
        health.loaded_from,
        health.last_error,
        health.history_backwards,
        health.ok,
    )


def test_a_start_while_the_store_is_away_comes_up_from_the_cache(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Overrides and retunes come back from the cache; the store wins once back;
    a store that fails at once costs the start no wait."""
    monkeypatch.setattr(cbcontrol._plane, "_START_WAIT_S", 60.0)
    store = MemoryStore(shared=True)
    _saved(store)
    store.fail("etcd is unreachable")

    started = time.monotonic()
    plane = cbcontrol.connect(store, app="b")
    took = time.monotonic() - started
    payment = plane.breaker("payment")
    away = (payment.state, payment.config.max_failures, plane.health())
    store.fail(None)
    store.put("breakers", "payment", {"max_failures": 5})
    back = (payment.state, payment.config.max_failures, plane.health().loaded_from)
    plane.close()

    assert (State.FORCED_OPEN, 2) == away[:2]
    assert ("cache", False, "etcd is unreachable") == (
        away[2].loaded_from,
        away[2].reachable,
        away[2].last_error,
    )
    assert took < 30  # far below the 60 s a silent store would cost
    assert (State.CLOSED, 5, "store") == back


def test_a_wiped_store_is_held_until_an_operator_accepts_it() -> None:
    """A history gone back keeps the trip, says so, and yields to an accepted epoch."""
    store = MemoryStore(shared=True)
    control = cbcontrol.open_store(store)
    control.update("payment", lambda doc: {**doc, **TRIP}, actor="ops")
    plane = cbcontrol.connect(store, app="a")
    payment = plane.breaker("payment")
    tripped = payment.state

    store.wipe()
    held = (payment.state, plane.health().history_backwards, plane.errors())
    control.update("other", lambda doc: {**doc, "max_failures": 3}, actor="ops")
    still = payment.state
    control.accept_history(actor="ops", reason="nothing to restore")
    accepted = wait_until(lambda: payment.state is State.CLOSED)
    health = plane.health()
    plane.close()

    assert State.FORCED_OPEN == tripped
    assert (State.FORCED_OPEN, True) == held[:2]
    assert held[2]["store/history"].startswith(
        "the history of memory went backwards (its history id changed from "
    )
    assert State.FORCED_OPEN == still
    assert accepted
    assert (False, True) == (health.history_backwards, health.ok)


def test_a_restart_after_a_wipe_holds_the_cached_state() -> None:
    """A process that starts on a wiped store keeps what its cache says."""
    store = MemoryStore(shared=True)
    cbcontrol.open_store(store).update(
        "payment", lambda doc: {**doc, **TRIP}, actor="ops"
    )
    _saved(store)
    store.wipe()

    plane = cbcontrol.connect(store, app="b")
    payment = plane.breaker("payment")
    health = plane.health()
    plane.close()

    assert State.FORCED_OPEN == payment.state
    assert (True, "cache") == (health.history_backwards, health.loaded_from)


def test_an_idle_instance_writes_nothing() -> None:
    """Once its status is out, an idle instance leaves the store's revision alone."""
    store = MemoryStore()
    plane = cbcontrol.connect(store, app="a")
    for name in ("payment", "search", "ads"):
        plane.breaker(name)
    assert wait_until(lambda: len(store.read(Scope.STATUS).documents) == 4, timeout=3)
    time.sleep(1.2)  # the first sweep
    before = store.read(Scope.STATUS).revision

    time.sleep(2.5)  # two more sweeps, nothing happening
    idle = store.read(Scope.STATUS).revision
    plane.breaker("payment").call(lambda: None)
    moved = wait_until(lambda: store.read(Scope.STATUS).revision > idle, timeout=3)
    plane.close()

    assert before == idle
    assert moved
