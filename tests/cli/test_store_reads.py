"""
ControlStore's reads that tools build on: status documents and stored specs.

Against both stores, with real instances: what `instance_documents()` returns is
what validating every status gives, whatever an instance (or anyone) wrote.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from tests.cli import StoreEnv


def _put_spec(env: StoreEnv, name: str, document: dict[str, Any]) -> None:
    """Store a spec as a hand-writer would, without cbctl's validation."""
    if env.path is not None:
        env.path.write_text(json.dumps({"version": 1, "breakers": {name: document}}))
        return
    from cbcontrol.store._etcd._client import EtcdClient

    assert env.etcd is not None
    with EtcdClient(env.etcd.endpoints) as client:
        client.put(f"/cbcontrol/{env.namespace}/breakers/{name}", json.dumps(document))


def test_status_documents_are_the_validated_statuses(env: StoreEnv):
    """Live instances' documents validate; an unreadable status is left out."""
    env.instance("payment")
    env.instance("payment", "analytics", app="search")
    env.put_status("not-json", "{")
    env.put_status("not-an-object", "[1, 2]")
    with env.open() as store:
        documents = store.instance_documents()
        statuses = store.instances()

    assert [s.model_dump(mode="json") for s in statuses] == documents
    assert 2 == len(documents)


@pytest.mark.parametrize(
    "record",
    [
        {},
        {"state": 5, "gen": "7", "calls": "many", "window": {"a": 1}},
        {"state": "closed", "calls": [None, "x"], "since": 3, "retry_at": "never"},
        {"state": "open", "local": [{"kind": "env", "values": [1]}], "cfg": 1},
        {"state": "closed", "local": "env", "digest": 7, "error": ["x"]},
    ],
    ids=["empty", "wrong-types", "bad-values", "bad-local", "bad-digest"],
)
def test_a_malformed_record_is_shown_safely(env: StoreEnv, record: dict[str, Any]):
    """A breaker record of any shape becomes a valid status, and cbctl lists it."""
    env.instance("payment")
    env.fake_instance("payment", record=record)
    with env.open() as store:
        documents = store.instance_documents()
        statuses = store.instances()
    listed = env.run("list", "-o", "json")

    assert [s.model_dump(mode="json") for s in statuses] == documents
    assert 2 == len(documents)
    assert (0, "") == (listed.returncode, listed.stderr)


def test_submodules_are_attributes_of_the_package():
    """`import cbcontrol` then `cbcontrol.config.PRECEDENCE`, as documented."""
    code = (
        "import cbcontrol\n"
        "print(cbcontrol.config.PRECEDENCE[-1], cbcontrol.store.__name__)\n"
    )

    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )

    assert "etcd cbcontrol.store\n" == result.stdout


def test_a_stored_spec_is_validated_when_asked(env: StoreEnv):
    """A spec's error and generation come from validating it, on first use."""
    env.cbctl("set", "payment", "--max-failures", "3", "--no-wait")
    with env.open() as store:
        stored = store.breakers()["payment"]

    assert (None, 1, 3) == (stored.error, stored.generation, stored.spec.max_failures)


def test_importing_cbcontrol_loads_no_config_models():
    """`import cbcontrol` is cheap; the models (pydantic) load on first use."""
    code = (
        "import sys, cbcontrol, cbcontrol.config\n"
        "before = 'pydantic' in sys.modules\n"
        "from cbcontrol import BreakerConfig, CircuitBreaker\n"
        "CircuitBreaker('x', BreakerConfig(max_failures=2))\n"
        "print(before, 'pydantic' in sys.modules)\n"
    )

    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )

    assert "False True\n" == result.stdout


@pytest.mark.etcd
def test_etcd_keeps_the_latest_hundred_changes_per_breaker(etcd_env: StoreEnv):
    """History in etcd is bounded: the oldest records go, the newest 100 stay."""
    with etcd_env.open() as store:
        for value in range(105):
            store.update(
                "payment",
                lambda doc, v=value: {**doc, "max_failures": v + 1},
                actor="test",
            )
        generations = [r.generation for r in store.history("payment", limit=500)]

    assert list(range(6, 106)) == generations
