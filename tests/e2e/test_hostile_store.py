"""
Hostile store content, with a real app process, real cbctl and real etcd or file.

Deeply nested, huge and malformed values in any key, YAML alias bombs and odd names
cost bounded time and memory, are reported, and never stop the rest of the namespace:
the app keeps serving and applying changes to its other breakers, and cbctl keeps
answering.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import TYPE_CHECKING

import pytest

from cbcontrol.store._etcd._client import EtcdClient
from tests.e2e.harness import App, Cbctl, wait_until

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from tests.support.etcd import EtcdServer

pytestmark = pytest.mark.slow

NESTED_ARRAY = "[" * 5000 + "]" * 5000
NESTED_OBJECT = '{"a":' * 3000 + "1" + "}" * 3000
HUGE = json.dumps({"reason": "x" * 600_000})


@pytest.fixture
def etcd_store(e2e_etcd: EtcdServer) -> Iterator[tuple[str, EtcdClient, str]]:
    """A fresh namespace of the e2e etcd: its URL, a raw client and its prefix."""
    namespace = f"h{uuid.uuid4().hex[:10]}"
    with EtcdClient(e2e_etcd.endpoints) as client:
        yield (
            f"etcd://{e2e_etcd.endpoint}/{namespace}",
            client,
            f"/cbcontrol/{namespace}/",
        )


@pytest.mark.etcd
def test_hostile_values_in_any_key_stop_nothing(
    etcd_store: tuple[str, EtcdClient, str], tmp_path: Path
) -> None:
    """Nested, huge, malformed values and odd keys: the app and cbctl carry on."""
    store, client, prefix = etcd_store
    app = App(store, tmp_path / "app.log", {})
    app.wait_ready()
    cbctl = Cbctl(store)
    assert 0 == cbctl("set", "payment", "--max-failures", "4").exit_code
    hostile = {
        "breakers/deep": NESTED_ARRAY,
        "breakers/huge": HUGE,
        "breakers/text": "max_failures: 3",
        "presets/deep": NESTED_OBJECT,
        "epoch": NESTED_ARRAY,
        "instances/forged": NESTED_OBJECT,
        "status/payment/forged": HUGE,
        "status/deep/forged": NESTED_ARRAY,
        "breakers/x/payment": '{"max_failures": 1}',
        "breakers/bad name": '{"max_failures": 1}',
    }
    for key, value in hostile.items():
        client.put(prefix + key, value)

    started = time.monotonic()
    written = cbctl("set", "payment", "--max-failures", "5", "-o", "json")
    listed = cbctl("list", "-o", "json")
    shown = cbctl("get", "payment", "-o", "json")
    doctor = cbctl("doctor", "-o", "json")
    elapsed = time.monotonic() - started
    served = app.send("fail 5")
    record = client.get(f"{prefix}status/payment/{app.instance_id}")[0] or b""
    identity = client.get(f"{prefix}instances/{app.instance_id}")[0] or b""
    app.close()

    assert (0, 1, 1) == (
        written.exit_code,
        written.json()["applied"],
        written.json()["instances"],
    ), written.output
    assert 0 == listed.exit_code, listed.output
    assert {"payment", "deep", "huge", "text"} == {v["name"] for v in listed.json()}
    assert 0 == shown.exit_code, shown.output
    assert [app.instance_id] == [i["instance_id"] for i in shown.json()["instances"]]
    assert 5 == shown.json()["effective"]["max_failures"]["value"]
    assert 1 == doctor.exit_code
    assert elapsed < 15
    assert ("open", 5) == (served["state"], served["failed"])
    assert len(record) < 2_000
    assert len(identity) < 32 * 1024


@pytest.mark.etcd
def test_a_huge_or_nested_spec_keeps_the_last_good_config(
    etcd_store: tuple[str, EtcdClient, str], tmp_path: Path
) -> None:
    """The app's own spec turned hostile: last good kept, a short error reported."""
    store, client, prefix = etcd_store
    app = App(store, tmp_path / "app.log", {})
    app.wait_ready()
    cbctl = Cbctl(store)
    assert 0 == cbctl("set", "payment", "--max-failures", "2").exit_code

    client.put(prefix + "breakers/payment", HUGE)
    huge_seen = wait_until(
        lambda: "over the limit" in _error(cbctl, app.instance_id), timeout=10
    )
    huge_error = _error(cbctl, app.instance_id)
    client.put(prefix + "breakers/payment", NESTED_OBJECT)
    nested_seen = wait_until(
        lambda: "levels deep" in _error(cbctl, app.instance_id), timeout=10
    )
    kept = app.send("status")["max_failures"]
    record = client.get(f"{prefix}status/payment/{app.instance_id}")[0] or b""
    app.close()

    assert huge_seen
    assert nested_seen
    assert 2 == kept
    assert huge_error.startswith(f'etcd key "{prefix}breakers/payment" at revision '), (
        huge_error
    )
    assert "bytes, over the limit of 32768 bytes" in huge_error
    assert len(huge_error) < 700
    assert len(record) < 2_000


def _error(cbctl: Cbctl, instance_id: str) -> str:
    """The error the instance reports for payment, as cbctl shows it."""
    result = cbctl("get", "payment", "-o", "json")
    if result.exit_code != 0:
        return ""
    found = [i for i in result.json()["instances"] if i["instance_id"] == instance_id]
    return str(found[0]["error"] or "") if found else ""


ALIAS_BOMB = (
    "version: 1\n"
    "presets:\n"
    "  a: &a [x, x, x, x, x, x, x, x, x]\n"
    + "".join(
        f"  {chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n"
        for i in range(8)
    )
    + "breakers:\n  payment: {max_failures: 9}\n"
)
MERGE_BOMB = (
    "version: 1\nbreakers:\n  payment: {max_failures: 9}\npresets:\n"
    "  p0: &p0 {k0: 1}\n"
    + "".join(
        f"  p{i}: &p{i}\n    <<: [*p{i - 1}, *p{i - 1}, *p{i - 1}]\n    k{i}: 1\n"
        for i in range(1, 30)
    )
)
DEEP = "version: 1\nbreakers:\n  payment: " + "[" * 3000 + "]" * 3000 + "\n"


@pytest.mark.parametrize(
    "text", [ALIAS_BOMB, MERGE_BOMB, DEEP], ids=["aliases", "merges", "nested"]
)
def test_a_hostile_yaml_file_costs_bounded_time_and_keeps_the_last_good(
    tmp_path: Path, text: str
) -> None:
    """Bombs and deep nesting in the file: refused fast, last good kept, cbctl says."""
    path = tmp_path / "cbcontrol.yaml"
    path.write_text("version: 1\nbreakers:\n  payment: {max_failures: 2}\n")
    store = f"file://{path}"
    app = App(store, tmp_path / "app.log", {})
    app.wait_ready()
    cbctl = Cbctl(store)

    path.write_text(text)
    started = time.monotonic()
    doctor = cbctl("doctor", "-o", "json")
    listed = cbctl("list")
    elapsed = time.monotonic() - started
    time.sleep(0.3)  # the app's watch has read the file by now
    kept = app.send("status")["max_failures"]
    path.write_text("version: 1\nbreakers:\n  payment: {max_failures: 6}\n")
    fixed = wait_until(lambda: app.send("status")["max_failures"] == 6, timeout=5)
    app.close()

    assert 2 == kept
    assert fixed
    assert elapsed < 10
    assert (1, 1) == (doctor.exit_code, listed.exit_code)
    assert str(path) in listed.stderr
    assert any(
        word in listed.stderr for word in ("expands to more than", "nests deeper")
    ), listed.stderr


@pytest.mark.parametrize(
    "name", ["a/b", "", "bad name", "x" * 200, "-flag-like", "ünïcode"]
)
def test_cbctl_refuses_names_outside_the_grammar(tmp_path: Path, name: str) -> None:
    """A breaker name outside the grammar is a usage error (exit 2), for any command."""
    path = tmp_path / "cbcontrol.yaml"
    path.write_text("version: 1\n")
    cbctl = Cbctl(f"file://{path}")

    results = [
        cbctl("set", "--", name, "--max-failures", "3")
        if name.startswith("-")
        else cbctl("set", name, "--max-failures", "3"),
        cbctl("get", "--", name) if name.startswith("-") else cbctl("get", name),
    ]

    assert [2, 2] == [r.exit_code for r in results], [r.output for r in results]
    assert all(
        "must be 1-128 characters" in " ".join(r.stderr.replace("│", " ").split())
        for r in results
    )
    assert "version: 1\n" == path.read_text()
