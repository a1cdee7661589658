"""`cbctl watch` against real app processes: one event line for each change."""

from __future__ import annotations

import queue
import re
import subprocess
import threading
from typing import TYPE_CHECKING

import pytest

from tests.e2e.harness import clean_environ

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.e2e.harness import App, Cbctl

pytestmark = pytest.mark.slow


def test_watch_prints_state_spec_and_applied_events_of_real_apps(
    cbctl: Cbctl, start_apps: Callable[..., list[App]]
) -> None:
    """A failing app opens, an operator trips: each shows as its own line."""
    first, second = start_apps(2)
    watcher = subprocess.Popen(
        cbctl.argv("watch"),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=clean_environ(CBCTL_ACTOR="ana@ops-1"),
    )
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        assert watcher.stdout is not None
        for line in watcher.stdout:
            lines.put(line.rstrip("\n"))

    threading.Thread(target=read, daemon=True).start()

    def until(pattern: str) -> list[str]:
        seen = []
        while True:
            line = lines.get(timeout=15)
            seen.append(line)
            if re.search(pattern, line):
                return seen

    try:
        until(r"^$")  # the table, then a blank line
        first.send("fail 3")
        opened = until(r"state .* closed → open")[-1]
        tripped = cbctl("trip", "payment", "--reason", "INC-42")
        events = until(r"applied  payment: generation 1 applied on 2/2")
    finally:
        watcher.kill()
        watcher.wait(timeout=10)
        assert watcher.stdout is not None
        watcher.stdout.close()

    assert 0 == tripped.exit_code, tripped.output
    assert re.fullmatch(
        rf"\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\dZ  state    payment {first.instance_id}: "
        r"closed → open",
        opened,
    )
    assert any(
        re.search(
            r"spec     payment: generation 0 → 1 by e2e-tests: INC-42 \(override", e
        )
        for e in events
    )
    assert any(
        e.endswith(f"payment {second.instance_id}: closed → forced_open (INC-42)")
        for e in events
    )
