"""The wheel holds `cbcontrol` and `cbctl` (no `cli`) and installs a working cbctl."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Building in an isolated environment and installing the dependencies takes a while.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


@dataclasses.dataclass(frozen=True)
class Installed:
    """A wheel built from the working tree and the fresh venv it was installed into."""

    wheel: Path
    venv: Path


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """Build the wheel once and install it, with its dependencies, into a fresh venv."""
    tmp = tmp_path_factory.mktemp("packaging")
    dist = tmp / "dist"
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(dist), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = dist.glob("cbcontrol-*.whl")
    env_dir = tmp / "venv"
    venv.create(env_dir, with_pip=False)
    # The test environment's pip installs into the new venv: no ensurepip round-trip.
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(env_dir / "bin" / "python"),
            "install",
            "--quiet",
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    return Installed(wheel=wheel, venv=env_dir)


def test_wheel_top_level_is_cbcontrol_cbctl_and_dist_info(installed: Installed):
    """The wheel's top level holds exactly `cbcontrol`, `cbctl` and its dist-info."""
    with zipfile.ZipFile(installed.wheel) as zf:
        top_level = {name.split("/", 1)[0] for name in zf.namelist()}

    dist_info = {name for name in top_level if name.endswith(".dist-info")}
    assert 1 == len(dist_info)
    assert {"cbcontrol", "cbctl", *dist_info} == top_level


def test_wheel_ships_py_typed(installed: Installed):
    """The wheel marks cbcontrol as typed with `cbcontrol/py.typed`."""
    with zipfile.ZipFile(installed.wheel) as zf:
        names = set(zf.namelist())

    assert "cbcontrol/py.typed" in names


def test_installed_cbctl_help(installed: Installed):
    """The installed `cbctl` console script prints its usage and exits 0."""
    result = subprocess.run(
        [str(installed.venv / "bin" / "cbctl"), "--help"],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin", "NO_COLOR": "1", "COLUMNS": "120"},
    )

    assert 0 == result.returncode, result.stderr
    assert "Usage: cbctl" in result.stdout


def test_installed_cbctl_version_matches_metadata(installed: Installed):
    """`cbctl version` prints the version the installed distribution reports."""
    python = installed.venv / "bin" / "python"
    expected = subprocess.run(
        [
            str(python),
            "-c",
            "import importlib.metadata as m; print(m.version('cbcontrol'))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()

    result = subprocess.run(
        [str(installed.venv / "bin" / "cbctl"), "version"],
        capture_output=True,
        text=True,
        check=False,
    )

    assert 0 == result.returncode, result.stderr
    assert f"cbctl {expected}\n" == result.stdout
