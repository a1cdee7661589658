"""
Acknowledgements and audit stay true whatever happened to a spec key.

With a real app, real cbctl and real etcd: after garbage in a key, its deletion or a
hand edit, the next write's generation is above every one seen before, no history
record is overwritten, and an instance that did not apply the exact document (frozen,
or claiming a generation the store never held) is never counted.
"""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING

import pytest

import cbcontrol
from cbcontrol.store._etcd._client import EtcdClient
from tests.e2e.harness import App, Cbctl

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from tests.support.etcd import EtcdServer

pytestmark = [pytest.mark.slow, pytest.mark.etcd]


@pytest.fixture
def namespace(e2e_etcd: EtcdServer) -> Iterator[tuple[str, EtcdClient, str]]:
    """A fresh namespace of the e2e etcd: its URL, a raw client and its prefix."""
    name = f"a{uuid.uuid4().hex[:10]}"
    with EtcdClient(e2e_etcd.endpoints) as client:
        yield f"etcd://{e2e_etcd.endpoint}/{name}", client, f"/cbcontrol/{name}/"


def _frozen(client: EtcdClient, prefix: str, generation: int, digest: str) -> None:
    """A live-looking instance that applied (generation, digest) and never moves."""
    identity = {"format": 2, "instance_id": "frozen", "app": "old", "host": "h"}
    client.put(f"{prefix}instances/frozen", json.dumps(identity))
    record = {"state": "closed", "gen": generation, "digest": digest}
    client.put(f"{prefix}status/payment/frozen", json.dumps(record))


def test_garbage_deletion_and_hand_edits_never_take_generations_back(
    namespace: tuple[str, EtcdClient, str], tmp_path: Path
) -> None:
    """Each write after garbage, a delete or a lower hand edit goes above all seen."""
    store, client, prefix = namespace
    cbctl = Cbctl(store)
    key = f"{prefix}breakers/payment"
    app = App(store, tmp_path / "app.log", {})
    app.wait_ready()
    generations = []
    for value, damage in (
        ("3", None),
        ("4", "{garbage"),
        ("5", None),  # deleted below
        ("6", '{"max_failures": 2, "generation": 1}'),  # edited by hand, lower
        ("7", '{"max_failures": 2, "generation": 40}'),  # edited by hand, higher
        ("8", None),
    ):
        result = cbctl("set", "payment", "--max-failures", value, "-o", "json")
        assert 0 == result.exit_code, result.output
        generations.append(result.json()["generation"])
        if damage is not None:
            client.put(key, damage)
        elif value == "5":
            client.delete(key)
    with cbcontrol.open_store(store) as control:
        history = [
            (r.generation, r.changes["max_failures"][1])
            for r in control.history("payment")
        ]
    app.close()

    assert [1, 2, 3, 4, 5, 41] == generations
    assert [(1, 3), (2, 4), (3, 5), (4, 6), (5, 7), (41, 8)] == history


def test_only_instances_that_applied_the_exact_document_are_counted(
    namespace: tuple[str, EtcdClient, str], tmp_path: Path
) -> None:
    """Frozen on an old document, or claiming a newer generation: pending, exit 4."""
    store, client, prefix = namespace
    cbctl = Cbctl(store)
    app = App(store, tmp_path / "app.log", {})
    app.wait_ready()
    first = cbctl("set", "payment", "--max-failures", "3", "-o", "json").json()
    _frozen(client, prefix, first["generation"], "0123456789abcdef")
    client.put(f"{prefix}status/payment/ahead", json.dumps({"gen": 99, "digest": "x"}))
    client.put(f"{prefix}instances/ahead", json.dumps({"app": "ahead"}))

    second = cbctl(
        "set", "payment", "--max-failures", "4", "--timeout", "2s", "-o", "json"
    )
    applied = app.send("status")
    app.close()

    assert 4 == second.exit_code, second.output
    report = second.json()
    assert (100, 1, 3) == (report["generation"], report["applied"], report["instances"])
    assert ["ahead", "frozen"] == sorted(report["pending"])
    assert 4 == applied["max_failures"]
