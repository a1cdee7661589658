"""`cbctl doctor` against reachable stores, an unreachable etcd, with a write test."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from tests.cli import StoreEnv, lines, parse
from tests.support.etcd import free_port

if TYPE_CHECKING:
    from pathlib import Path

CHECKS = [
    "store",
    "read",
    "write",
    "versions",
    "instances",
    "clock skew",
    "history",
    "config errors",
]


def test_doctor_of_a_healthy_store(env: StoreEnv):
    """Every check passes with a live instance; the write test is skipped by default."""
    env.instance("payment")

    result = env.cbctl("doctor", "-o", "json")

    report = parse(result)
    assert 0 == result.exit_code, result.output
    assert (env.url, True) == (report["store"], report["ok"])
    assert CHECKS == [c["check"] for c in report["checks"]]
    assert ["ok", "ok", "skip", "ok", "ok", "ok", "ok", "ok"] == [
        c["status"] for c in report["checks"]
    ]
    assert "1 live (checkout (1))" == report["checks"][4]["detail"]


def test_doctor_table_without_instances_warns(env: StoreEnv):
    """No live instance is a warning, not a failure."""
    result = env.cbctl("doctor")

    rows = {
        line.split()[0]: line.split()[1] for line in lines(result.stdout)[2:] if line
    }
    assert 0 == result.exit_code, result.output
    assert "warn" == rows["instances"]
    assert re.match(
        rf"^ store +ok +{re.escape(env.url)} answered in \d+ ms$",
        lines(result.stdout)[2],
    )


def test_doctor_write_test_writes_a_preset(env: StoreEnv):
    """`--write-test` proves write access by writing the cbctl-doctor preset."""
    first = parse(env.cbctl("doctor", "--write-test", "-o", "json"))
    second = parse(env.cbctl("doctor", "--write-test", "-o", "json"))

    assert ["ok", "ok"] == [
        next(c["status"] for c in r["checks"] if c["check"] == "write")
        for r in (first, second)
    ]
    with env.open() as store:
        assert {"max_failures": 2} == store.store_presets()[
            "cbctl-doctor"
        ].config_values()


def test_doctor_reports_config_errors_and_clock_skew(file_env: StoreEnv):
    """A rejected spec fails the doctor; a heartbeat from the future is a warning."""
    assert file_env.path is not None
    file_env.path.write_text("version: 1\nbreakers:\n  payment: {max_failures: 0}\n")
    stuck = file_env.fake_instance("payment")
    status_file = file_env.path.parent / "cbcontrol.status" / f"{stuck}.json"
    status = json.loads(status_file.read_text())
    ahead = datetime.now(UTC) + timedelta(seconds=60)
    status["instance"]["updated_at"] = ahead.isoformat()
    status_file.write_text(json.dumps(status))

    result = file_env.cbctl("doctor", "-o", "json")

    checks = {c["check"]: c for c in parse(result)["checks"]}
    assert 1 == result.exit_code
    assert "warn" == checks["clock skew"]["status"]
    assert re.match(
        rf"^{stuck} is (59\.\d|60\.0) s ahead of this host \(override expiry with "
        r"--for depends on clocks\)$",
        checks["clock skew"]["detail"],
    )
    assert "fail" == checks["config errors"]["status"]
    assert result.stderr.startswith(
        'error: config errors: breakers/payment: breaker "payment"'
    )


@pytest.mark.slow
def test_doctor_of_an_unreachable_etcd_fails_fast_naming_the_endpoint(tmp_path: Path):
    """Nothing listening: exit 1 within a few seconds, naming the endpoint and cause."""
    port = free_port()
    env = StoreEnv("etcd", f"etcd://127.0.0.1:{port}/x")
    start = time.monotonic()

    result = env.run("doctor")

    elapsed = time.monotonic() - start
    assert 1 == result.returncode
    assert elapsed < 5
    assert re.match(
        rf"^error: store: etcd at 127\.0\.0\.1:{port} is unavailable \(read "
        r"'/cbcontrol/x/'\): .+$",
        result.stderr,
    ), result.stderr
    assert 1 == len(lines(result.stderr))
    assert re.search(
        rf"^ store +fail +etcd at 127\.0\.0\.1:{port} is unavailable",
        result.stdout,
        re.MULTILINE,
    )
