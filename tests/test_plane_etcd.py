"""The control plane on a real etcd: live apply, bad documents, outages, status."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

import pytest

import cbcontrol
from cbcontrol import State
from tests.support.waiting import wait_until

if TYPE_CHECKING:
    from collections.abc import Iterator

    from cbcontrol.config import InstanceStatus
    from tests.support.etcd import EtcdServer

pytestmark = pytest.mark.etcd


class Etcd:
    """A raw view of the namespace, written the way cbctl or an operator would."""

    def __init__(self, server: EtcdServer, namespace: str) -> None:
        from cbcontrol.store._etcd._client import EtcdClient

        self.client = EtcdClient(server.endpoints)
        self.prefix = f"/cbcontrol/{namespace}/"
        self.url = f"etcd://{server.endpoint}/{namespace}"

    def put(self, key: str, value: object) -> int:
        """Write JSON (or raw text) under the namespace; returns the revision."""
        raw = value if isinstance(value, str) else json.dumps(value)
        return self.client.put(self.prefix + key, raw)

    def statuses(self) -> list[InstanceStatus]:
        """The instance statuses currently published."""
        with cbcontrol.open_store(self.url) as store:
            return store.instances()


def connect(server: EtcdServer, namespace: str) -> cbcontrol.ControlPlane:
    """A plane on the server, as CBCONTROL_STORE=etcd://... would make it."""
    url = f"etcd://{server.endpoint}/{namespace}"
    return cbcontrol.connect(url, app="checkout", environ={})


@pytest.fixture
def etcd(etcd_server: EtcdServer, etcd_namespace: str) -> Iterator[Etcd]:
    """Raw access to this test's namespace on the session's etcd."""
    view = Etcd(etcd_server, etcd_namespace)
    yield view
    view.client.close()


@pytest.fixture
def plane(
    etcd_server: EtcdServer, etcd_namespace: str
) -> Iterator[cbcontrol.ControlPlane]:
    """A plane on this test's namespace."""
    plane = connect(etcd_server, etcd_namespace)
    yield plane
    plane.close()


def test_a_put_is_applied_to_the_live_breaker(
    plane: cbcontrol.ControlPlane, etcd: Etcd, etcd_namespace: str
) -> None:
    """A spec written to etcd retunes the running breaker, with key and revision."""
    pay = plane.breaker("payment")

    revision = etcd.put("breakers/payment", {"max_failures": 2, "generation": 1})
    applied = wait_until(lambda: pay.config.max_failures == 2)

    assert applied
    assert (
        2,
        f"etcd:/cbcontrol/{etcd_namespace}/breakers/payment@{revision}",
    ) == pay.explain()["max_failures"]


def test_the_instance_reports_its_status_and_withdraws_it(
    etcd_server: EtcdServer, etcd_namespace: str, etcd: Etcd
) -> None:
    """A plane publishes its status on a lease and removes it when closed."""
    plane = connect(etcd_server, etcd_namespace)
    plane.breaker("payment")
    etcd.put("breakers/payment", {"max_failures": 2, "generation": 5})

    reported = wait_until(
        lambda: (
            [5]
            == [
                s.breakers["payment"].observed_generation
                for s in etcd.statuses()
                if "payment" in s.breakers
            ]
        )
    )
    plane.close()

    assert reported
    assert [] == etcd.statuses()


def test_garbage_in_a_key_keeps_the_last_good_config(
    plane: cbcontrol.ControlPlane, etcd: Etcd, etcd_namespace: str
) -> None:
    """Unparsable JSON and invalid values are rejected and reported; nothing changes."""
    pay = plane.breaker("payment")
    etcd.put("breakers/payment", {"max_failures": 2})
    wait_until(lambda: pay.config.max_failures == 2)

    revision = etcd.put("breakers/payment", "{not json")
    garbage_seen = wait_until(lambda: "breakers/payment" in plane.errors())
    garbage_error = plane.errors().get("breakers/payment", "")
    etcd.put("breakers/payment", {"max_failures": -3})
    invalid_seen = wait_until(
        lambda: "-3" in plane.errors().get("breakers/payment", "")
    )

    assert garbage_seen
    assert garbage_error.startswith(
        f'etcd key "/cbcontrol/{etcd_namespace}/breakers/payment" at revision '
        f"{revision} must be a JSON object, got invalid JSON"
    )
    assert invalid_seen
    assert 2 == pay.config.max_failures
    assert pay.call(lambda: "ok") == "ok"


def test_a_restarted_etcd_is_caught_up_with(
    fresh_etcd_server: EtcdServer, etcd_namespace: str
) -> None:
    """While etcd is down breakers serve; a change after its return applies in 5 s."""
    plane = connect(fresh_etcd_server, etcd_namespace)
    try:
        pay = plane.breaker("payment")
        fresh_etcd_server.kill()
        down_reported = wait_until(lambda: "store" in plane.errors())
        served_while_down = pay.call(lambda: "ok")

        fresh_etcd_server.start()
        back = time.monotonic()
        etcd = Etcd(fresh_etcd_server, etcd_namespace)
        etcd.put("breakers/payment", {"max_failures": 7})
        applied = wait_until(lambda: pay.config.max_failures == 7, timeout=5.0)
        etcd.client.close()

        assert down_reported
        assert "ok" == served_while_down
        assert applied, (
            f"not applied {time.monotonic() - back:.1f}s after etcd's return"
        )
    finally:
        plane.close()


def test_a_hung_etcd_is_detected_and_recovered_from(
    fresh_etcd_server: EtcdServer, etcd_namespace: str
) -> None:
    """A SIGSTOPped etcd is reported within 10 s; after SIGCONT changes flow again."""
    plane = connect(fresh_etcd_server, etcd_namespace)
    try:
        pay = plane.breaker("payment")
        fresh_etcd_server.pause()
        hung_reported = wait_until(lambda: "store" in plane.errors(), timeout=10.0)
        fresh_etcd_server.resume()
        etcd = Etcd(fresh_etcd_server, etcd_namespace)
        etcd.put("breakers/payment", {"max_failures": 6})
        applied = wait_until(lambda: pay.config.max_failures == 6, timeout=10.0)
        healthy = wait_until(lambda: "store" not in plane.errors())
        etcd.client.close()

        assert hung_reported
        assert applied
        assert healthy
    finally:
        fresh_etcd_server.resume()
        plane.close()


def test_changes_missed_during_an_outage_and_compacted_converge(
    fresh_etcd_server: EtcdServer, etcd_namespace: str
) -> None:
    """Revisions written and compacted while the plane was away end in the latest."""
    plane = connect(fresh_etcd_server, etcd_namespace)
    try:
        pay = plane.breaker("payment")
        fresh_etcd_server.kill()
        wait_until(lambda: "store" in plane.errors())
        fresh_etcd_server.start()
        etcd = Etcd(fresh_etcd_server, etcd_namespace)
        for n in range(2, 8):
            etcd.put("breakers/payment", {"max_failures": n})
        etcd.put("breakers/payment", {"override": {"mode": "forced_open"}})
        fresh_etcd_server.compact()
        converged = wait_until(lambda: pay.state is State.FORCED_OPEN, timeout=10.0)
        etcd.client.close()

        assert converged
        assert 3 == pay.config.max_failures  # the preset's: the last spec sets none
    finally:
        plane.close()
