"""`cbctl doctor`: the store and the fleet checked; each error once; no trace left."""

from __future__ import annotations

import json
import re
import subprocess
from typing import TYPE_CHECKING

from tests.cli import CBCTL, parse
from tests.support.etcd import free_port

if TYPE_CHECKING:
    from tests.cli import StoreEnv


def _checks(env: StoreEnv, *args: str) -> dict[str, str]:
    data = parse(env.cbctl("doctor", *args, "-o", "json"))
    return {c["check"]: c["status"] for c in data["checks"]}


def test_doctor_of_a_healthy_store(env: StoreEnv):
    """A reachable store with live instances: every check ok (write skipped)."""
    env.instance("payment")

    result = env.cbctl("doctor")

    assert 0 == result.exit_code, result.output
    assert {
        "store": "ok",
        "read": "ok",
        "write": "skip",
        "versions": "ok",
        "instances": "ok",
        "clock skew": "ok",
        "history": "ok",
        "config errors": "ok",
        "differences": "ok",
    } == _checks(env)


def test_the_write_test_leaves_nothing_behind(env: StoreEnv):
    """`--write-test` writes a preset and removes it: export shows no trace."""
    before = env.cbctl("export").stdout

    checks = _checks(env, "--write-test")

    assert "ok" == checks["write"]
    assert before.splitlines()[1:] == env.cbctl("export").stdout.splitlines()[1:]
    assert "cbctl-doctor" not in env.cbctl("presets").stdout


def test_each_config_error_is_reported_once_with_its_instances(env: StoreEnv):
    """Two instances with the same bad env value: one finding naming both."""
    bad = {"PAYMENT_CB_MAX_FAILURES": "0"}
    first = env.instance("payment", environ=bad)
    second = env.instance("payment", environ=bad)

    result = env.cbctl("doctor")
    data = parse(env.cbctl("doctor", "-o", "json"))

    [errors] = [c for c in data["checks"] if c["check"] == "config errors"]
    [item] = errors["items"]
    assert 1 == result.exit_code
    assert "fail" == errors["status"]
    assert first.instance_id in item
    assert second.instance_id in item
    assert 1 == result.stdout.count("PAYMENT_CB_MAX_FAILURES")


def test_differing_instances_are_a_warning(env: StoreEnv):
    """An instance running another value than the rest: `differences` warns."""
    env.instance("payment")
    env.instance("payment", environ={"PAYMENT_CB_MAX_FAILURES": "9"})

    data = parse(env.cbctl("doctor", "-o", "json"))

    [found] = [c for c in data["checks"] if c["check"] == "differences"]
    assert "warn" == found["status"]
    assert found["items"][0].startswith("payment.max_failures: ")


def test_a_late_or_lost_instance_is_a_warning(file_env: StoreEnv):
    """A status file not touched for 15 s: that instance is listed as lost."""
    import os
    import time

    lost = file_env.fake_instance("payment")
    status = file_env.path.parent / "cbcontrol.status" / f"{lost}.json"  # type: ignore[union-attr]
    past = time.time() - 15
    os.utime(status, (past, past))

    data = parse(file_env.cbctl("doctor", "-o", "json"))
    listed = file_env.cbctl("list")

    [found] = [c for c in data["checks"] if c["check"] == "instances"]
    assert "warn" == found["status"]
    assert re.fullmatch(rf"{lost}: lost 1[56]s ago", found["items"][0])
    assert f"{lost} (app stuck, host nowhere, no heartbeat for 1" in listed.stdout


def test_doctor_of_an_unreachable_etcd_fails_fast_naming_the_endpoint():
    """Nothing listens: exit 1, the store check fails naming the endpoint."""
    port = free_port()

    result = subprocess.run(
        [str(CBCTL), "--store", f"etcd://127.0.0.1:{port}/x", "doctor", "-o", "json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert 1 == result.returncode
    [check] = json.loads(result.stdout)["checks"]
    assert ("store", "fail") == (check["check"], check["status"])
    assert f"etcd at 127.0.0.1:{port} is unavailable" in check["detail"]
