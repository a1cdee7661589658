"""The demo (`make demo`) runs the real cbctl against real apps and tells it truly."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.e2e.harness import EXAMPLES, clean_environ

pytestmark = pytest.mark.slow


def test_the_demo_narrates_retune_trip_expiry_and_reset() -> None:
    """The demo's apps ack the change 3/3, trip after 2, are forced open, then close."""
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "demo.py")],
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
        check=False,
        env=clean_environ(),
    )
    lines = result.stdout.splitlines()
    transitions = [line.strip() for line in lines if "[breaker]" in line]
    commands = [line for line in lines if line.startswith("$ cbctl")]

    assert 0 == result.returncode, result.stdout + result.stderr
    assert "" == result.stderr
    assert [
        "$ cbctl list",
        "$ cbctl set payment --max-failures 2 --reason demo",
        "$ cbctl trip payment --reason INC-42 --for 3s",
        "$ cbctl reset payment",
        "$ cbctl get payment",
        "$ cbctl history payment",
    ] == commands
    assert 3 == sum("applied on 3/3 instances" in line for line in lines)
    assert [
        f"app {n}: [breaker] {change}"
        for change in ("closed -> open", "open -> forced_open", "forced_open -> closed")
        for n in (1, 2, 3)
    ] == transitions
    assert [
        f"app {n}: 0 ok, 2 failed, 1 rejected; breaker open" for n in (1, 2, 3)
    ] == [line.strip() for line in lines if "2 failed, 1 rejected" in line]
    assert [
        f"app {n}: breaker closed, 0 calls, 0 failures, 0 rejections" for n in (1, 2, 3)
    ] == [line.strip() for line in lines if ", 0 calls," in line]
    assert any("expired after" in line for line in lines)
    assert "Done: the apps were stopped and the temporary store removed." == lines[-1]
