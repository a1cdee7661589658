"""`cbctl watch`: piped or as JSON it prints only what changed, one event a line."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import subprocess
import threading
from typing import TYPE_CHECKING

from tests.cli import CBCTL

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.cli import StoreEnv


class Watcher:
    """A real `cbctl watch` whose stdout is a pipe, read line by line."""

    def __init__(self, env: StoreEnv, *args: str) -> None:
        environ = {
            k: v for k, v in os.environ.items() if not k.startswith("CBCONTROL_")
        }
        self.process = subprocess.Popen(
            [str(CBCTL), "--store", env.url, "watch", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=environ,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))

    def next(self, timeout: float = 10.0) -> str:
        """The next line it prints."""
        return self.lines.get(timeout=timeout)

    def until(self, predicate: object, timeout: float = 10.0) -> Iterator[str]:
        """Lines up to the first one ``predicate`` accepts (included)."""
        while True:
            line = self.next(timeout)
            yield line
            if predicate(line):  # type: ignore[operator]
                return

    def idle(self, seconds: float) -> list[str]:
        """What it prints within ``seconds`` (nothing is expected)."""
        found = []
        try:
            while True:
                found.append(self.lines.get(timeout=seconds))
        except queue.Empty:
            return found

    def stop(self) -> None:
        """End it, and close its pipes."""
        self.process.kill()
        self.process.wait(timeout=10)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


def test_piped_watch_prints_the_table_once_then_events_only(env: StoreEnv):
    """A state change and a write are one line each; an idle fleet prints nothing."""
    plane = env.instance("payment")
    watcher = Watcher(env)
    try:
        table = list(watcher.until(lambda line: line == ""))
        assert table[0].startswith("NAME ")
        assert [] == watcher.idle(2.5)  # heartbeat reads change nothing shown

        breaker = plane.breaker("payment")
        for _ in range(3):
            _fail(breaker)
        state = watcher.next()
        env.cbctl("set", "payment", "--max-failures", "4", "--reason", "INC-5")
        spec = list(watcher.until(lambda line: " applied " in line))
    finally:
        watcher.stop()

    assert state.endswith(f"state    payment {plane.instance_id}: closed → open")
    assert state[:20].endswith("Z")
    assert any(
        "spec     payment: generation 0 → 1 by " in line
        and ": INC-5 (max_failures: - -> 4)" in line
        for line in spec
    )
    assert spec[-1].endswith("  applied  payment: generation 1 applied on 1/1")


def _fail(breaker: object) -> None:
    """One failed call through ``breaker``."""

    def boom() -> None:
        raise ConnectionError

    with contextlib.suppress(ConnectionError):
        breaker.call(boom)  # type: ignore[attr-defined]


def test_json_watch_prints_a_snapshot_then_one_event_a_line(env: StoreEnv):
    """`-o json`: the fleet first, then each event as a JSON object."""
    plane = env.instance("payment")
    watcher = Watcher(env, "-o", "json", "--count", "1")
    try:
        snapshot = json.loads(watcher.next())
        env.cbctl("trip", "payment", "--reason", "INC-6")
        code = watcher.process.wait(timeout=20)  # --count 1: it ends by itself
        events = [json.loads(line) for line in watcher.idle(1.0)]
    finally:
        watcher.stop()

    assert "snapshot" == snapshot["kind"]
    assert ["payment"] == [b["name"] for b in snapshot["breakers"]]
    assert 0 == code
    assert {
        "kind": "spec",
        "breaker": "payment",
        "instance": None,
        "from": "0",
        "to": "1",
        "reason": "INC-6",
    }.items() <= events[0].items()
    assert plane.instance_id in json.dumps(snapshot)


def test_watch_says_when_the_store_fails_and_answers_again(file_env: StoreEnv):
    """A file that turns unreadable: a `store ok → stale` line, then back."""
    file_env.instance("payment")
    path = file_env.path
    assert path is not None
    watcher = Watcher(file_env)
    try:
        list(watcher.until(lambda line: line == ""))
        good = path.read_text()
        path.write_text("version: [\n")
        failing = watcher.next(15)
        path.write_text(good)
        back = list(watcher.until(lambda line: "stale → ok" in line, 15))
    finally:
        watcher.stop()

    assert "store    : store ok → stale (" in failing
    assert back[-1].endswith("store    : store stale → ok")
