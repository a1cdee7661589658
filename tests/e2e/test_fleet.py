"""
A fleet of real app processes operated by the real cbctl, on the file store and etcd.

Each test starts checkout apps (``examples/checkout_app.py``) on a fresh store (a YAML
file in its own directory, or its own etcd namespace) and runs ``cbctl`` as a
subprocess, as an operator would. The apps carry ``PAYMENT_CB_MAX_FAILURES=4`` in
their environment unless a test says otherwise; the ``payment`` preset says 3.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pytest

from tests.e2e.harness import wait_until

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.e2e.harness import App, Cbctl

pytestmark = pytest.mark.slow

ENV = {"PAYMENT_CB_MAX_FAILURES": "4"}


def instances_of(cbctl: Cbctl, name: str = "payment") -> dict[str, dict]:
    """The instances ``cbctl list -o json`` shows for one breaker, by instance id."""
    result = cbctl("list", "-o", "json")
    assert 0 == result.exit_code, result.output
    for breaker in result.json():
        if breaker["name"] == name:
            return {i["instance_id"]: i for i in breaker["instances"]}
    return {}


def test_set_is_acknowledged_and_retunes_the_running_apps(
    cbctl: Cbctl, start_apps: Callable[..., list[App]]
) -> None:
    """`cbctl set --max-failures 3` is applied on 3/3 apps, which then trip after 3."""
    apps = start_apps(3, **ENV)
    before = [app.send("status")["max_failures"] for app in apps]

    result = cbctl("set", "payment", "--max-failures", "3", "--reason", "e2e")
    first = [app.send("fail 2") for app in apps]
    third = [app.send("fail 1") for app in apps]
    after = [app.send("fail 2") for app in apps]

    assert 0 == result.exit_code, result.output
    assert "applied on 3/3" in result.stdout, result.output
    assert "" == result.stderr
    assert [4, 4, 4] == before
    assert [(0, 2, 0, "closed")] * 3 == [
        (a["ok"], a["failed"], a["rejected"], a["state"]) for a in first
    ]
    assert [(0, 1, 0, "open", ["closed -> open"])] * 3 == [
        (a["ok"], a["failed"], a["rejected"], a["state"], a["transitions"])
        for a in third
    ]
    assert [(0, 0, 2, 3)] * 3 == [
        (a["ok"], a["failed"], a["rejected"], a["max_failures"]) for a in after
    ]


def test_trip_makes_every_call_fail_fast(
    cbctl: Cbctl, start_apps: Callable[..., list[App]]
) -> None:
    """`cbctl trip --reason` forces every app open: their calls are rejected at once."""
    apps = start_apps(3, **ENV)
    for app in apps:
        app.send("ok 2")

    result = cbctl("trip", "payment", "--reason", "INC-42 PSP down", "-o", "json")
    started = time.monotonic()
    answers = [app.send("ok 20") for app in apps]
    elapsed = time.monotonic() - started
    ack = result.json()

    assert 0 == result.exit_code, result.output
    assert {"name", "generation", "applied", "instances", "elapsed_ms"} <= set(ack)
    assert ("payment", 3, 3) == (ack["name"], ack["applied"], ack["instances"])
    assert ack["generation"] >= 1
    assert [(0, 0, 20, "forced_open")] * 3 == [
        (a["ok"], a["failed"], a["rejected"], a["state"]) for a in answers
    ]
    assert ["INC-42 PSP down"] * 3 == [
        a["snapshot"]["override_reason"] for a in answers
    ]
    assert [20] * 3 == [a["snapshot"]["rejections"] for a in answers]
    assert elapsed < 2.0


def test_a_timed_trip_expires_by_itself(
    cbctl: Cbctl, start_apps: Callable[..., list[App]]
) -> None:
    """`cbctl trip --for 2s` lifts by itself: the apps serve again after about 2 s."""
    apps = start_apps(2, **ENV)

    result = cbctl("trip", "payment", "--reason", "drill", "--for", "2s")
    started = time.monotonic()
    during = [app.send("ok 1") for app in apps]
    closed = wait_until(lambda: all(app.state() == "closed" for app in apps), timeout=8)
    waited = time.monotonic() - started
    after = [app.send("ok 3") for app in apps]

    assert 0 == result.exit_code, result.output
    assert "applied on 2/2" in result.stdout, result.output
    assert [(0, 1, "forced_open")] * 2 == [
        (a["ok"], a["rejected"], a["state"]) for a in during
    ]
    assert closed, [app.state() for app in apps]
    assert 0.5 < waited < 4.0
    assert [(3, 0, "closed")] * 2 == [
        (a["ok"], a["rejected"], a["state"]) for a in after
    ]


def test_reset_closes_the_breakers_with_zeroed_counters(
    cbctl: Cbctl, start_apps: Callable[..., list[App]]
) -> None:
    """`cbctl reset` lifts a trip and closes every app's breaker with zero counters."""
    apps = start_apps(3, **ENV)
    opened = [app.send("fail 6") for app in apps]
    tripped = cbctl("trip", "payment", "--reason", "INC-7")

    result = cbctl("reset", "payment")
    answers = [app.send("status") for app in apps]
    served = [app.send("ok 1") for app in apps]

    assert [(4, 2, "open")] * 3 == [
        (a["failed"], a["rejected"], a["state"]) for a in opened
    ]
    assert 0 == tripped.exit_code, tripped.output
    assert 0 == result.exit_code, result.output
    assert "applied on 3/3" in result.stdout, result.output
    assert ["closed"] * 3 == [a["state"] for a in answers]
    assert [(0, 0, 0, 0, 0, None)] * 3 == [
        (
            a["snapshot"]["calls"],
            a["snapshot"]["failures"],
            a["snapshot"]["rejections"],
            a["snapshot"]["consecutive_failures"],
            a["snapshot"]["window_calls"],
            a["snapshot"]["override_reason"],
        )
        for a in answers
    ]
    assert [(1, "closed")] * 3 == [(a["ok"], a["state"]) for a in served]


def test_unset_lets_the_env_or_preset_value_show_through(
    cbctl: Cbctl, start_apps: Callable[..., list[App]]
) -> None:
    """`cbctl unset --max-failures` brings back each app's env or preset value."""
    with_env = start_apps(1, **ENV)[0]
    without_env = start_apps(1)[0]
    set_result = cbctl("set", "payment", "--max-failures", "2")
    live = cbctl("get", "payment", "-o", "json").json()

    result = cbctl("unset", "payment", "--max-failures")
    got = cbctl("get", "payment", "-o", "json").json()
    sources = {
        i["instance_id"]: i["effective"]["max_failures"] for i in got["instances"]
    }

    assert 0 == set_result.exit_code, set_result.output
    assert [2, 2] == [
        i["effective"]["max_failures"]["value"] for i in live["instances"]
    ]
    assert 0 == result.exit_code, result.output
    assert "applied on 2/2" in result.stdout, result.output
    assert "max_failures" not in got["spec"]
    assert got["effective"]["max_failures"]["source"].startswith("env:")  # oldest app
    assert 4 == sources[with_env.instance_id]["value"]
    assert sources[with_env.instance_id]["source"].startswith("env:")
    assert {"value": 3, "source": "preset:payment"} == sources[without_env.instance_id]
    assert (4, 3) == (
        with_env.send("status")["max_failures"],
        without_env.send("status")["max_failures"],
    )


TEN_FIELDS = {
    "max-failures": ("7", 7),
    "failure-rate-threshold": ("50", 50.0),
    "slow-call-duration": ("2s", 2.0),
    "window-size": ("50", 50),
    "minimum-calls": ("5", 5),
    "reset-timeout": ("45s", 45.0),
    "backoff-multiplier": ("1.5", 1.5),
    "jitter": ("0.1", 0.1),
    "half-open-max-calls": ("2", 2),
    "success-threshold": ("3", 3),
}


def test_concurrent_sets_of_different_fields_lose_none(
    cbctl: Cbctl, start_apps: Callable[..., list[App]]
) -> None:
    """Ten `cbctl set` run at once, one field each: the spec keeps all ten values."""
    apps = start_apps(2, **ENV)

    runs = [
        cbctl.start("set", "payment", f"--{option}", text, "--reason", option)
        for option, (text, _) in TEN_FIELDS.items()
    ]
    outputs = [run.communicate(timeout=60) for run in runs]
    got = cbctl("get", "payment", "-o", "json").json()
    fields = [option.replace("-", "_") for option in TEN_FIELDS]

    assert [0] * 10 == [run.returncode for run in runs], outputs
    assert set(fields) <= set(got["spec"])
    assert got["spec"]["generation"] >= 10
    assert {f: v for f, (_, v) in zip(fields, TEN_FIELDS.values(), strict=True)} == {
        f: got["effective"][f]["value"] for f in fields
    }
    for instance in got["instances"]:
        assert {
            f: v for f, (_, v) in zip(fields, TEN_FIELDS.values(), strict=True)
        } == {f: instance["effective"][f]["value"] for f in fields}
    assert 2 == len(got["instances"])
    assert [7, 7] == [app.send("status")["max_failures"] for app in apps]


def test_a_killed_instance_leaves_the_list_after_the_ttl(
    cbctl: Cbctl, start_apps: Callable[..., list[App]]
) -> None:
    """A SIGKILLed app leaves the breaker's instances once its status expires
    (~10 s), and is listed as lost, with its heartbeat age, instead of vanishing."""
    survivor, victim = start_apps(2, **ENV)
    before = set(instances_of(cbctl))

    victim.kill()
    killed_at = time.monotonic()
    gone = wait_until(
        lambda: set(instances_of(cbctl)) == {survivor.instance_id}, timeout=20
    )
    waited = time.monotonic() - killed_at
    listed = cbctl("list")
    doctor = cbctl("doctor", "-o", "json")

    assert {survivor.instance_id, victim.instance_id} == before
    assert gone, instances_of(cbctl)
    assert waited > 2.0  # it expired; nothing withdrew it
    assert f"{victim.instance_id} (" in listed.output
    assert "no heartbeat for" in listed.output
    [check] = [c for c in doctor.json()["checks"] if c["check"] == "instances"]
    assert "warn" == check["status"]
    assert any(
        item.startswith(f"{victim.instance_id}: lost ") for item in check["items"]
    ), check
