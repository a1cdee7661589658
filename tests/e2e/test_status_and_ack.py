"""
The reporting path under the fleet tests: instance status and write acknowledgement.

Both tests pin down races seen while running the fleet tests, in a form that fails
every time rather than one run in ten: an older record overwriting a newer one in etcd,
and ``wait_applied`` sleeping past a complete acknowledgement.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from types import SimpleNamespace
from typing import TYPE_CHECKING

import pytest

import cbcontrol
from cbcontrol.store._etcd._backend import _StatusWriter
from cbcontrol.store._etcd._client import EtcdClient
from tests.support.waiting import wait_until

if TYPE_CHECKING:
    from tests.support.etcd import EtcdServer

pytestmark = pytest.mark.slow

_KEEPER_THREAD = "cbcontrol-etcd-lease"


class SlowKeeperPutClient:
    """An etcd client double whose put from the lease keeper's thread is slow."""

    timeout = 1.0

    def __init__(self) -> None:
        self.stored: bytes | None = None
        self.puts = 0
        self.keeper_in_put = threading.Event()
        self.other_put_done = threading.Event()

    def grant_lease(self, ttl: int) -> int:
        """Grant lease 7."""
        return 7

    def keepalive(self, lease: int) -> int:
        """Keep it alive."""
        return 10

    def revoke(self, lease: int) -> None:
        """Revoke it."""

    def txn(
        self,
        what: str,
        *,
        unchanged: dict[str, int],
        puts: dict[str, bytes | None],
        lease: int = 0,
    ) -> bool:
        """Store the values; the keeper's write lands after the other (or 0.5 s)."""
        del what, unchanged, lease
        value = puts.get("/cbcontrol/ns/status/payment/i")
        if threading.current_thread().name == _KEEPER_THREAD:
            self.keeper_in_put.set()
            self.other_put_done.wait(0.5)
            self.stored = value
        else:
            self.stored = value
            self.other_put_done.set()
        self.puts += 1
        return True


def test_a_newer_status_is_never_overwritten_by_an_older_one() -> None:
    """The first lease's write of an old record cannot land after a newer one's."""
    client = SlowKeeperPutClient()
    backend = SimpleNamespace(client=client, prefix="/cbcontrol/ns/")
    writer = _StatusWriter(backend, "i")  # type: ignore[arg-type]
    writer.publish(None, {"payment": {"state": "closed"}})  # the keeper writes this
    keeper_putting = client.keeper_in_put.wait(5)

    writer.publish(None, {"payment": {"state": "open"}})  # the breaker opened
    both = wait_until(lambda: client.puts == 2, timeout=5)
    writer.close()

    assert keeper_putting
    assert both
    assert b'{"state":"open"}' == client.stored


def _record(generation: int) -> bytes:
    return json.dumps({"state": "closed", "gen": generation}).encode()


@pytest.mark.etcd
def test_wait_applied_returns_when_the_last_instance_acknowledges(
    e2e_etcd: EtcdServer,
) -> None:
    """`wait_applied` returns at the acknowledgement, not at the store's next change."""
    namespace = f"e2e{uuid.uuid4().hex[:12]}"
    key = f"/cbcontrol/{namespace}/status/payment/app-1"
    with (
        EtcdClient(e2e_etcd.endpoints) as client,
        cbcontrol.open_store(f"etcd://{e2e_etcd.endpoint}/{namespace}") as store,
    ):
        client.put(key, _record(0))
        written = store.update(
            "payment", lambda doc: {**doc, "max_failures": 2}, actor="test"
        )
        threading.Timer(0.3, client.put, (key, _record(1))).start()
        started = time.monotonic()
        ack = store.wait_applied("payment", written.generation, timeout=5)
        waited = time.monotonic() - started

    assert (1, 1, 1) == (written.generation, ack.applied, ack.instances)
    assert waited < 1.0
