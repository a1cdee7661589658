"""
Fail-static, with real app processes, real cbctl and a real etcd of the test's own.

A tripped breaker stays tripped through a restart while etcd is down or hung (the
app comes up from its local cache within about a second), and through a wiped etcd,
until an operator accepts the empty store.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.e2e.harness import App, Cbctl, wait_until
from tests.support.etcd import EtcdServer

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = [pytest.mark.slow, pytest.mark.etcd]


@pytest.fixture
def etcd() -> Iterator[EtcdServer]:
    """An etcd of this test's own: it is killed, frozen or wiped."""
    with EtcdServer() as server:
        yield server


def _tripped(store: str, tmp_path: Path) -> tuple[App, Cbctl]:
    """One app on ``store`` whose payment breaker cbctl tripped (and it saved)."""
    app = App(store, tmp_path / "app.log", {})
    app.wait_ready()
    cbctl = Cbctl(store)
    tripped = cbctl("trip", "payment", "--reason", "INC-7")
    assert 0 == tripped.exit_code, tripped.output
    assert "forced_open" == app.state()
    return app, cbctl


def _cached() -> bool:
    """Whether an app's cache (the tests' CBCONTROL_CACHE_DIR) holds the trip."""
    directory = Path(os.environ["CBCONTROL_CACHE_DIR"])
    return any("forced_open" in p.read_text() for p in directory.glob("desired-*"))


@pytest.mark.parametrize("outage", ["down", "hung"])
def test_a_restart_during_an_outage_keeps_a_trip(
    etcd: EtcdServer, tmp_path: Path, outage: str
) -> None:
    """Restarted while etcd is down or frozen, the app is up in ~1 s, still tripped."""
    store = f"etcd://{etcd.endpoint}/f{uuid.uuid4().hex[:8]}"
    app, cbctl = _tripped(store, tmp_path)
    assert wait_until(_cached, timeout=5)
    app.close()
    if outage == "down":
        etcd.kill()
    else:
        etcd.pause()

    started = time.monotonic()
    again = App(store, tmp_path / "again.log", {})
    again.wait_ready()
    ready_after = time.monotonic() - started
    state = again.state()
    rejected = again.send("ok 1")["rejected"]
    if outage == "down":
        etcd.start()
    else:
        etcd.resume()
    reset = cbctl("reset", "payment", "--timeout", "20s")
    closed = again.state()
    again.close()

    assert ("forced_open", 1) == (state, rejected)
    assert ready_after < 3.0, f"ready after {ready_after:.1f} s"
    assert 0 == reset.exit_code, reset.output
    assert "closed" == closed


def test_a_wiped_etcd_keeps_a_trip_until_an_operator_accepts_it(
    etcd: EtcdServer, tmp_path: Path
) -> None:
    """A store that came back empty is reported by doctor; accepting it applies it."""
    store = f"etcd://{etcd.endpoint}/w{uuid.uuid4().hex[:8]}"
    app, cbctl = _tripped(store, tmp_path)

    etcd.wipe()

    def doctor_history() -> str | None:
        report = cbctl("doctor", "-o", "json")
        checks = (
            {c["check"]: c for c in report.json()["checks"]} if report.stdout else {}
        )
        status: str | None = checks.get("history", {}).get("status")
        return status

    reported = wait_until(lambda: doctor_history() == "fail", timeout=20)
    held = app.state()
    doctor = cbctl("doctor")
    accepted = cbctl("doctor", "--accept-history", "--reason", "nothing to restore")
    lifted = wait_until(lambda: app.state() == "closed", timeout=10)
    # doctor reads what instances publish, which follows their state shortly
    cleared = wait_until(lambda: doctor_history() == "ok", timeout=10)
    app.close()

    assert reported
    assert "forced_open" == held
    assert 1 == doctor.exit_code
    assert "the store's history went backwards" in doctor.stderr
    assert "cbctl doctor --accept-history" in doctor.stderr
    assert "accepted" in accepted.stderr
    assert lifted
    assert cleared
