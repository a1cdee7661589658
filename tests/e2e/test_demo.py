"""The demo (`make demo`) runs real services, traffic and cbctl, and tells it truly."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from tests.e2e.harness import EXAMPLES, clean_environ

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.slow


def test_the_demo_shows_the_breakers_at_work(tmp_path: Path) -> None:
    """In its short mode: the retune and the hand edit apply on both instances,
    payment fails fast while analytics answers from its cache, the trip holds while
    the others recover, the reset brings checkouts back; /ready follows."""
    report = tmp_path / "report.json"
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "demo.py"), "--short", "--report", str(report)],
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=90,
        check=False,
        env=clean_environ(),
    )
    lines = result.stdout.splitlines()
    commands = [line.strip() for line in lines if line.strip().startswith("$ cbctl")]

    assert 0 == result.returncode, result.stdout + result.stderr
    assert "" == result.stderr
    assert [
        "$ cbctl list",
        '$ cbctl set payment --max-failures 2 --reason "PSP is flaky"',
        '$ cbctl trip payment --reason "INC-42 PSP maintenance" --for 30m',
        "$ cbctl reset payment",
        "$ cbctl history payment",
    ] == commands
    seen = json.loads(report.read_text())
    traffic = seen["traffic"]
    assert {"healthy": 200, "down": 503, "tripped": 503, "reset": 200} == seen["ready"]
    # cbctl set and the hand edit, each applied by both instances...
    assert [2.0, 2.0] == seen["payment_max_failures"]
    assert [3.0, 3.0] == seen["analytics_max_failures"]
    # ...and payment opened after exactly 2 failures on each.
    assert [2.0, 2.0] == seen["failures_before_open"]["payment"]
    assert {"payment", "analytics", "user-profile"} == set(
        seen["states"]["down"]["checkout-1"]
    )
    assert all(
        set(states.values()) == {"open"} for states in seen["states"]["down"].values()
    )
    assert (0, 0) == (
        traffic["healthy"].get("rejected", 0),
        traffic["down"].get("paid", 0),
    )
    assert traffic["down"]["rejected"] > 0
    assert traffic["down"]["recommendations-cache"] > 0
    assert traffic["down"]["profile-static"] > 0
    assert all(
        {"payment": "forced_open", "analytics": "closed", "user-profile": "closed"}
        == states
        for states in seen["states"]["tripped"].values()
    )
    assert 0 == traffic["tripped"].get("paid", 0)
    assert traffic["tripped"]["recommendations-live"] > 0
    assert all(
        set(states.values()) == {"closed"}
        for states in seen["states"]["reset"].values()
    )
    assert traffic["reset"]["paid"] > 0
    assert [0.0, 0.0] == seen["payment_rejected_after_reset"]
    assert seen["fallbacks"]["analytics cache"] > 0
    assert (
        "Done: the services were stopped and the temporary directory removed."
        == (lines[-1])
    )
