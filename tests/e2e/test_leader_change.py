"""
Writes through an etcd leader change, on a 3-member cluster the test starts.

Just before a write the leader is killed and a second member frozen: the member the
client talks to has no leader until the frozen one is back (3 s, well past a
call's timeout), so its calls fail as unavailable, and the write is retried within
its own timeout. Nothing is lost or written twice, and the app follows the new leader.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from typing import TYPE_CHECKING

import pytest

import cbcontrol
from tests.e2e.harness import App, Cbctl
from tests.support.etcd import EtcdCluster

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = [pytest.mark.slow, pytest.mark.etcd]


@pytest.fixture
def cluster() -> Iterator[EtcdCluster]:
    """Three etcd members on loopback, with their own ports and data dirs."""
    with EtcdCluster() as members:
        yield members


@pytest.fixture
def restarts(cluster: EtcdCluster) -> Iterator[list[threading.Timer]]:
    """Pending member restarts, finished before the cluster is stopped."""
    timers: list[threading.Timer] = []
    yield timers
    for timer in timers:
        timer.join()


def _url(cluster: EtcdCluster, namespace: str) -> str:
    """The cluster's URL, the leader's endpoint last: the client talks to a follower."""
    leader = cluster.leader()
    ordered = sorted(cluster.members, key=lambda m: m is leader)
    return f"etcd://{','.join(m.endpoint for m in ordered)}/{namespace}"


def _lose_the_leader(
    cluster: EtcdCluster, url: str, restarts: list[threading.Timer]
) -> None:
    """Kill the leader and freeze the second member of ``url`` for 3 s."""
    leader = cluster.leader()
    second = next(m for m in cluster.members if m.endpoint == url.split(",")[1])
    leader.kill()
    second.pause()

    def back() -> None:
        second.resume()
        leader.start()

    timer = threading.Timer(3.0, back)
    restarts.append(timer)
    timer.start()


def test_writes_during_leader_changes_are_retried_and_all_land(
    cluster: EtcdCluster,
    restarts: list[threading.Timer],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Each write right after the leader dies succeeds once; history has them all."""
    caplog.set_level(logging.INFO, logger="cbcontrol.store")
    namespace = f"l{uuid.uuid4().hex[:8]}"
    store = _url(cluster, namespace)
    app = App(store, tmp_path / "app.log", {})
    app.wait_ready()
    generations = []
    for value in (3, 4):
        # The leader moved at the last loss: talk to a follower of the new one.
        store = _url(cluster, namespace)
        with cbcontrol.open_store(store, timeout=1.0) as control:
            _lose_the_leader(cluster, store, restarts)
            result = control.update(
                "payment",
                lambda doc, v=value: {**doc, "max_failures": v},
                actor="test",
                timeout=20,
            )
            generations.append(result.generation)
            ack = control.wait_applied(
                "payment", result.generation, timeout=20, digest=result.digest
            )
            assert ack.complete, ack
    with cbcontrol.open_store(store, timeout=5.0) as control:
        history = [r.generation for r in control.history("payment")]
    store = _url(cluster, namespace)
    _lose_the_leader(cluster, store, restarts)  # and cbctl, the same way
    started = time.monotonic()
    via_cbctl = Cbctl(store)(
        "set", "payment", "--max-failures", "6", "--timeout", "20s", "-o", "json"
    )
    took = time.monotonic() - started
    applied = app.send("status")["max_failures"]
    app.close()

    assert [1, 2] == generations
    assert [1, 2] == history
    assert 0 == via_cbctl.exit_code, via_cbctl.output
    assert (3, 1, 1) == tuple(
        via_cbctl.json()[k] for k in ("generation", "applied", "instances")
    )
    assert 6 == applied
    assert took < 20
    assert any("retrying" in r.getMessage() for r in caplog.records)
