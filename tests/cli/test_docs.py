"""The CLI reference, docs/cli.md, matches cbctl's help and covers every command."""

from __future__ import annotations

import subprocess
import sys
from typing import TYPE_CHECKING

from typer.testing import CliRunner

from cbctl import _docs
from cbctl._app import app

if TYPE_CHECKING:
    from pathlib import Path

COMMANDS = [
    "list",
    "get",
    "watch",
    "history",
    "presets",
    "explain",
    "set",
    "unset",
    "trip",
    "bypass",
    "reset",
    "promote",
    "apply",
    "diff",
    "export",
    "validate",
    "schema",
    "doctor",
    "version",
]


def test_the_reference_is_current():
    """`python -m cbctl._docs --check` passes on the committed docs/cli.md."""
    result = subprocess.run(
        [sys.executable, "-m", "cbctl._docs", "--check"],
        capture_output=True,
        text=True,
        check=False,
    )

    assert 0 == result.returncode, result.stderr
    assert "" == result.stderr


def test_every_command_is_documented_with_its_help():
    """Each command appears in the reference with a help block, and has help text."""
    text = _docs.DOCS.read_text()

    assert COMMANDS == _docs.commands()
    for command in COMMANDS:
        assert f"## cbctl {command}\n" in text, command
        assert f"<!-- [[[cbctl {command} --help]]] -->\n```text\n" in text, command
        help_text = CliRunner().invoke(app, [command, "--help"]).stdout
        assert f"Usage: cbctl {command} [OPTIONS]" in _docs.render_help(command), (
            command
        )
        assert len([line for line in help_text.splitlines() if line.strip()]) > 3


def test_check_fails_on_a_stale_reference(tmp_path: Path):
    """A help block that differs from the help, or a missing command, fails --check."""
    stale = tmp_path / "cli.md"
    stale.write_text(
        "# cbctl\n\n<!-- [[[cbctl get --help]]] -->\nold\n<!-- [[[end]]] -->\n"
    )

    checked = _docs.main(["--check", "--path", str(stale)])
    written = _docs.main(["--path", str(stale)])

    assert 1 == checked
    assert 0 == written
    assert 0 == _docs.main(["--check", "--path", str(stale)])
    assert "## cbctl doctor\n" in stale.read_text()
    assert _docs.render_help("get") in stale.read_text()
