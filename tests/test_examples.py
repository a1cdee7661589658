"""The examples run, and show what they claim to show."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).parent.parent / "examples"


def test_quickstart_trips_and_recovers() -> None:
    """The quickstart's breaker opens, rejects, probes and closes, in that order."""
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "quickstart.py")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    lines = result.stdout.splitlines()
    transitions = [line.split(": ")[0].strip() for line in lines if "[breaker]" in line]

    assert 0 == result.returncode, result.stderr
    assert [
        "[breaker] closed -> open",
        "[breaker] open -> half_open",
        "[breaker] half_open -> closed",
    ] == transitions
    assert any("rejected at once" in line for line in lines)
    assert lines[-1].startswith("final state closed:")
    assert "Traceback" not in result.stderr
