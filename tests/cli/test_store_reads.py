"""
ControlStore's reads that tools build on: status documents and stored specs.

Against both stores, with real instances: what `instance_documents()` returns is
what validating every status gives, whatever format an instance wrote.
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
    from cbcontrol._etcd import EtcdClient

    assert env.etcd is not None
    with EtcdClient(env.etcd.endpoints) as client:
        client.put(f"/cbcontrol/{env.namespace}/breakers/{name}", json.dumps(document))


def _forge_applied(env: StoreEnv, name: str) -> None:
    """A status in this library's format claiming it applied spec ``name`` as is."""
    env.instance("other")
    with env.open() as store:
        document = store.instance_documents()[0]
        stored = store.breakers()[name]
    effective = dict(document["breakers"]["other"]["effective"])
    for field in ("max_failures",):  # what the specs below set
        sep = "." if stored.origin.startswith("file:") else ""
        source = f"{stored.origin}{sep}{field if sep else ''}"
        effective[field] = {"value": stored.data[field], "source": source}
    breaker = {
        **document["breakers"]["other"],
        "observed_generation": stored.data["generation"],
        "effective": effective,
    }
    forged = {**document, "instance_id": "forged", "breakers": {name: breaker}}
    env.put_status("forged", json.dumps(forged))


def test_status_documents_are_the_validated_statuses(env: StoreEnv):
    """Statuses of this format, of another format, and garbage: as `instances()`."""
    env.instance("payment")
    env.instance("payment", "analytics", app="search")
    env.fake_instance("payment")  # no `format`: written by another cbcontrol
    env.put_status("garbage", '{"format": 0, "instance_id": 7}')
    env.put_status("not-json", "{")
    with env.open() as store:
        documents = store.instance_documents()
        statuses = store.instances()

    assert [s.model_dump(mode="json") for s in statuses] == documents
    assert 3 == len(documents)


@pytest.mark.parametrize(
    "status",
    [
        {"format": 1},
        {"format": 1, "instance_id": "x", "breakers": None},
        {"format": 1, "instance_id": "x", "breakers": {"payment": {}}},
        {"format": 1, "instance_id": "x", "started_at": "2026-11-27T00:00:00"},
    ],
    ids=["bare", "null-breakers", "empty-breaker", "naive-time"],
)
def test_a_malformed_status_claiming_this_format_is_validated(
    env: StoreEnv, status: dict[str, Any]
):
    """A status that only claims the format is validated like any other."""
    env.instance("payment")
    good = {
        "instance_id": "x",
        "app": "a",
        "host": "h",
        "pid": 1,
        "started_at": "2026-11-27T00:00:00Z",
        "heartbeat_at": "2026-11-27T00:00:00Z",
    }
    env.put_status("x", json.dumps({**good, **status}))
    with env.open() as store:
        documents = store.instance_documents()
        statuses = store.instances()
    listed = env.run("list", "-o", "json")

    assert [s.model_dump(mode="json") for s in statuses] == documents
    assert (0, "") == (listed.returncode, listed.stderr)


@pytest.mark.parametrize(
    ("extra", "error"),
    [
        ({"labels": {"team": "pay"}}, "labels"),
        ({"preset": 5}, "preset"),
        ({"reset_generation": True}, "reset_generation"),
        ({}, None),  # the control: a valid spec the forged status confirms
    ],
    ids=["unknown-key", "preset-type", "bool-generation", "none"],
)
def test_a_spec_an_instance_claims_to_apply_is_still_checked(
    env: StoreEnv, extra: dict[str, Any], error: str | None
):
    """Keys or types this library would reject are reported, whatever instances say."""
    _put_spec(env, "x", {"generation": 3, "max_failures": 2, **extra})
    _forge_applied(env, "x")

    with env.open() as store:
        stored = store.breakers()["x"]
        having = [s for s in store.instance_documents() if "x" in s["breakers"]]
        confirmed = stored.confirmed_by(having)
    shown = env.run("get", "x", "-o", "json")

    assert 0 == shown.returncode, shown.stderr
    reported = json.loads(shown.stdout)["spec"]["error"]
    assert (error is None, True) == (confirmed, error is None or error in reported)


def test_submodules_are_attributes_of_the_package():
    """`import cbcontrol` then `cbcontrol.config.PRECEDENCE`, as documented."""
    code = (
        "import cbcontrol\n"
        "print(cbcontrol.config.PRECEDENCE[-1], cbcontrol.config.sources.__name__)\n"
    )

    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )

    assert "etcd cbcontrol.config.sources\n" == result.stdout


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
