"""Targeted changes end to end: 4 app processes in 2 zones on a real etcd."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import pytest

import cbcontrol
from tests.e2e.harness import App, Cbctl, wait_until

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from tests.support.etcd import EtcdServer

pytestmark = [pytest.mark.slow, pytest.mark.etcd]


@pytest.fixture
def zones(
    e2e_etcd: EtcdServer, tmp_path: Path
) -> Iterator[tuple[Cbctl, dict[str, App]]]:
    """eu-a, eu-b (zone eu-1), us-a, us-canary (zone us-1; the last a canary)."""
    store = f"etcd://{e2e_etcd.endpoint}/zones{uuid.uuid4().hex[:10]}"
    labels = {
        "eu-a": "zone=eu-1",
        "eu-b": "zone=eu-1",
        "us-a": "zone=us-1",
        "us-canary": "zone=us-1,track=canary",
    }
    apps = {
        name: App(store, tmp_path / f"{name}.log", {"CBCONTROL_LABELS": text})
        for name, text in labels.items()
    }
    try:
        for app in apps.values():
            app.wait_ready()
        with cbcontrol.open_store(store) as control:
            expected = {a.instance_id for a in apps.values()}
            assert wait_until(
                lambda: (
                    expected
                    <= {
                        s.instance_id
                        for s in control.instances()
                        if "payment" in s.breakers
                    }
                ),
                timeout=15,
            )
        yield Cbctl(store), apps
    finally:
        for app in apps.values():
            app.close()


def test_trip_one_zone_canary_then_promote_and_reset_by_selector(
    zones: tuple[Cbctl, dict[str, App]],
) -> None:
    """eu-1 tripped (2/2 of 4 live), a canary retune promoted, eu-1 reset alone."""
    cbctl, apps = zones

    tripped = cbctl(
        "trip", "payment", "-l", "zone=eu-1", "--reason", "INC-42", "-o", "json"
    )
    calls = {name: app.send("ok 1") for name, app in apps.items()}
    canary = cbctl("set", "payment", "-l", "track=canary", "--max-failures", "2")
    retuned = {name: app.send("status")["max_failures"] for name, app in apps.items()}
    promoted = cbctl("promote", "payment", "-l", "track=canary", "--reason", "good")
    everywhere = {
        name: app.send("status")["max_failures"] for name, app in apps.items()
    }
    reset = cbctl("reset", "payment", "-l", "zone=eu-1", "--reason", "INC-42 over")
    after = {name: app.send("ok 1") for name, app in apps.items()}
    history = cbctl("history", "payment", "-o", "json").json()

    assert 0 == tripped.exit_code, tripped.output
    assert (2, 2, 4) == tuple(
        tripped.json()[k] for k in ("applied", "instances", "live")
    )
    assert {"eu-a": 1, "eu-b": 1, "us-a": 0, "us-canary": 0} == {
        name: answer["rejected"] for name, answer in calls.items()
    }
    assert {"forced_open"} == {calls["eu-a"]["state"], calls["eu-b"]["state"]}
    assert 0 == canary.exit_code, canary.output
    assert "applied on 1/1 matching instance, 4 live, in" in canary.stdout
    assert {"eu-a": 3, "eu-b": 3, "us-a": 3, "us-canary": 2} == retuned
    assert 0 == promoted.exit_code, promoted.output
    assert {2} == set(everywhere.values())
    assert 0 == reset.exit_code, reset.output
    assert "applied on 2/2 matching instances, 4 live, in" in reset.stdout
    assert {(1, "closed")} == {(a["ok"], a["state"]) for a in after.values()}
    assert [
        ("trip", "zone=eu-1"),
        ("set", "track=canary"),
        ("promote", None),
        ("reset", "zone=eu-1"),
    ] == [(r["action"], r["selector"]) for r in history]
