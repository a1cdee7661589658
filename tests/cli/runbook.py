"""
docs/runbook.md: an incident walked through with cbctl's real output.

The page is prose around command blocks. Each block is produced by running the real
``cbctl`` against a fleet of live instances in this process (three, in two zones),
the breakers of one zone failing, as in the incident the page tells; volatile parts
(instance ids, times, milliseconds, paths) are replaced by stable stand-ins, so the
page reads the same every time::

    python -m tests.cli.runbook          # rewrite docs/runbook.md
    python -m tests.cli.runbook --check  # exit 1 if the page is stale

``tests/cli/test_runbook.py`` runs the check: the page cannot go stale.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cbcontrol

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "runbook.md"
CBCTL = Path(sys.executable).with_name("cbctl")
_BLOCK = re.compile(
    r"(<!-- \[\[\[run (?P<args>.*?)\]\]\] -->\n).*?(<!-- \[\[\[end\]\]\] -->)",
    re.DOTALL,
)
_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?P<ms>\.\d+)?Z")
_LEFT = re.compile(r"\((?:\d+m\d\ds|\d+s)\)")


def _fail(breaker: cbcontrol.CircuitBreaker, count: int) -> None:
    def down() -> None:
        raise ConnectionError

    for _ in range(count):
        with contextlib.suppress(ConnectionError, cbcontrol.CircuitOpenError):
            breaker.call(down)


class Incident:
    """Three live instances on a file store; payment failing in zone eu-1."""

    def __init__(self, workdir: Path) -> None:
        self.path = workdir / "cbcontrol.yaml"
        self.path.write_text("version: 1\n")
        self.url = f"file://{self.path}"
        self.names: dict[str, str] = {}
        self.planes = []
        for name, zone in (("web-1", "eu-1"), ("web-2", "eu-1"), ("web-3", "us-1")):
            plane = cbcontrol.connect(self.url, app="checkout", labels={"zone": zone})
            self.planes.append(plane)
            self.names[plane.instance_id] = (
                f"checkout-{name}-4{len(self.names)}12-3fa2c1"
            )
            breaker = plane.breaker("payment")
            breaker.call(lambda: None)
            if zone == "eu-1":
                _fail(breaker, 3)  # the payment provider of eu-1 is down
        deadline = time.monotonic() + 10
        with cbcontrol.open_store(self.url) as store:
            while time.monotonic() < deadline:
                states = {
                    s["instance_id"]: s["breakers"].get("payment", {}).get("state")
                    for s in store.instance_documents("payment")
                }
                # an instance not yet published reads as None: wait for it
                if sorted(map(str, states.values())) == ["closed", "open", "open"]:
                    break
                time.sleep(0.05)

    def run(self, args: str) -> str:
        """``cbctl ARGS`` as an operator runs it (piped), its output made stable."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("CBCONTROL_")}
        env.update(CBCONTROL_STORE=self.url, CBCTL_ACTOR="ana@ops-1", NO_COLOR="1")
        done = subprocess.run(
            [str(CBCTL), *_split(args)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env=env,
        )
        text = done.stdout + done.stderr
        return self.stable(text)

    def stable(self, text: str) -> str:
        """Volatile parts replaced by stand-ins."""
        for real, shown in self.names.items():
            text = text.replace(real, shown)
        text = text.replace(str(self.path), "/srv/cbcontrol/cbcontrol.yaml")
        text = _TIME.sub(
            lambda m: "2026-11-27T12:04:10" + (".000" if m["ms"] else "") + "Z", text
        )
        text = re.sub(r"in \d+ ms", "in 43 ms", text)
        text = _LEFT.sub("(29m59s)", text)
        lines = [line.rstrip() for line in text.splitlines()]
        return "\n".join(_aligned(lines)) + "\n"

    def close(self) -> None:
        """Stop the instances."""
        for plane in self.planes:
            plane.close()


_RIGHT = {2, 4, 6}  # GEN, CALLS, OPENED of the instances table


def _aligned(lines: list[str]) -> list[str]:
    """
    The instances table laid out again once ids are replaced by stand-ins.

    Real ids hold the host name and pid, so their width differs between machines:
    the table is aligned as cbctl aligns it (three spaces, numbers to the right),
    and a heartbeat's age is shown as 1s.
    """
    start = next(
        (i for i, line in enumerate(lines) if line.startswith("INSTANCE ")), None
    )
    if start is None:
        return lines
    end = start + 1
    while end < len(lines) and lines[end].startswith("checkout-web-"):
        end += 1
    rows = [line.split() for line in lines[start:end]]
    for row in rows[1:]:
        row[7] = "1s" if re.fullmatch(r"\d+s", row[7]) else row[7]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    table = [
        "   ".join(
            cell.rjust(widths[i]) if i in _RIGHT and n else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ).rstrip()
        for n, row in enumerate(rows)
    ]
    return [*lines[:start], *table, *lines[end:]]


def _split(args: str) -> list[str]:
    import shlex

    return shlex.split(args)


def render(text: str) -> str:
    """The page with each block's output made again, in page order."""
    with tempfile.TemporaryDirectory(prefix="cbcontrol-runbook-") as workdir:
        incident = Incident(Path(workdir))
        try:

            def fill(match: re.Match[str]) -> str:
                args = match["args"]
                output = incident.run(args)
                return f"{match[1]}```console\n$ cbctl {args}\n{output}```\n{match[3]}"

            return _BLOCK.sub(fill, text)
        finally:
            incident.close()


def main(argv: list[str] | None = None) -> int:
    """Rewrite or check the page; returns the exit code."""
    parser = argparse.ArgumentParser(description="docs/runbook.md with real output")
    parser.add_argument("--check", action="store_true", help="fail if stale")
    args = parser.parse_args(argv)
    current = PAGE.read_text(encoding="utf-8")
    fresh = render(current)
    if fresh == current:
        return 0
    if args.check:
        import difflib

        diff = difflib.unified_diff(
            current.splitlines(),
            fresh.splitlines(),
            "docs/runbook.md",
            "fresh",
            lineterm="",
        )
        sys.stderr.write("\n".join(diff) + "\n")
        return 1
    PAGE.write_text(fresh, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
