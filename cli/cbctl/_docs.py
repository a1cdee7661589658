"""
Keep the CLI reference (``docs/cli.md``) in step with ``cbctl --help``.

    python -m cbctl._docs          # rewrite the help blocks of docs/cli.md
    python -m cbctl._docs --check  # exit 1 if a block is stale or a command missing

Each command's ``--help`` output sits between ``<!-- [[[cbctl COMMAND --help]]] -->``
and ``<!-- [[[end]]] -->`` markers; the prose around them is written by hand. The help
is rendered at a fixed width without colour, so the result is the same everywhere.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

__all__ = ["DOCS", "commands", "main", "render", "render_help"]

DOCS = Path(__file__).resolve().parents[2] / "docs" / "cli.md"
"""The CLI reference, in a source checkout."""
WIDTH = 100
_BLOCK = re.compile(
    r"(<!-- \[\[\[cbctl(?P<command>(?: [a-z-]+)*) --help\]\]\] -->\n)"
    r".*?"
    r"(<!-- \[\[\[end\]\]\] -->)",
    re.DOTALL,
)


def commands() -> list[str]:
    """Every command of cbctl, in the order of ``cbctl --help``."""
    from cbctl._app import COMMANDS

    return list(COMMANDS)


def render_help(command: str | None) -> str:
    """The ``--help`` text of ``cbctl [COMMAND]``, plain, ``WIDTH`` columns wide."""
    from typer.testing import CliRunner

    from cbctl._app import app

    args = [*([command] if command else []), "--help"]
    env = {"COLUMNS": str(WIDTH), "NO_COLOR": "1", "TERM": "dumb"}
    result = CliRunner().invoke(app, args, env=env, prog_name="cbctl", color=False)
    if result.exit_code != 0:
        msg = f"cbctl {' '.join(args)} failed: {result.output}"
        raise RuntimeError(msg)
    text = "\n".join(line.rstrip() for line in result.stdout.splitlines())
    return text.strip("\n") + "\n"


def _block(command: str | None) -> str:
    return f"```text\n{render_help(command)}```\n"


def render(text: str) -> str:
    """``text`` with every help block regenerated and missing commands appended."""

    def fill(match: re.Match[str]) -> str:
        command = match["command"].strip() or None
        return f"{match[1]}{_block(command)}{match[3]}"

    text = _BLOCK.sub(fill, text)
    present = {m["command"].strip() for m in _BLOCK.finditer(text)}
    for command in commands():
        if command not in present:
            text += (
                f"\n## cbctl {command}\n\n"
                f"<!-- [[[cbctl {command} --help]]] -->\n"
                f"{_block(command)}<!-- [[[end]]] -->\n"
            )
    return text


def main(argv: list[str] | None = None) -> int:
    """Rewrite or check the CLI reference; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if stale")
    parser.add_argument("--path", type=Path, default=DOCS, help="the reference")
    args = parser.parse_args(argv)
    current = args.path.read_text(encoding="utf-8") if args.path.exists() else ""
    fresh = render(current)
    if fresh == current:
        return 0
    if args.check:
        sys.stderr.write(
            f"{args.path} is stale: run `python -m cbctl._docs` and commit it\n"
        )
        return 1
    args.path.write_text(fresh, encoding="utf-8")
    sys.stdout.write(f"wrote {args.path}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
