"""circuitbreaker's own test suite, unmodified, run against cbcontrol's drop-in shim."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.compat.upstream import CIRCUITBREAKER, fetch

ROOT = Path(__file__).resolve().parents[2]


def run_upstream_suite(tests: Path, module: str) -> subprocess.CompletedProcess[str]:
    """Run the suite in ``tests`` in its own pytest, ``module`` aliased to the shim."""
    env = {
        **os.environ,
        "CBCONTROL_UPSTREAM_MODULE": module,
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])
        ),
    }
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "tests.compat.upstream_plugin",
            "-p",
            "no:cacheprovider",
            "-W",
            "error",
            "-q",
            "-rfEX",
            "--rootdir",
            str(tests.parent),
            "-c",
            os.devnull,
            str(tests),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tests.parent,
        timeout=300,
        check=False,
    )


def test_circuitbreaker_upstream_suite_passes_against_the_shim() -> None:
    """circuitbreaker 2.1.3's tests pass with `circuitbreaker` resolving to the shim."""
    sdist = fetch(CIRCUITBREAKER)

    result = run_upstream_suite(sdist / "tests", "circuitbreaker")

    summary = result.stdout.strip().splitlines()[-1] if result.stdout else ""
    assert 0 == result.returncode, result.stdout[-4000:] + result.stderr[-2000:]
    assert re.fullmatch(r"\d+ passed in [\d.]+s", summary), summary
    assert int(summary.split()[0]) >= 60, summary
