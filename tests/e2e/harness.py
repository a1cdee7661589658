"""
Helpers of the end-to-end tests: checkout app processes, the cbctl command, waiting.

An :class:`App` is one ``examples/checkout_app.py`` process talking its line protocol
over pipes; every read from it is bounded. :class:`Cbctl` runs the real ``cbctl``
console program (``python -m cbctl``) against one store, as an operator would.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from tests.support.waiting import wait_until

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["CHECKOUT_APP", "EXAMPLES", "App", "Cbctl", "CbctlResult", "wait_until"]

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CHECKOUT_APP = EXAMPLES / "checkout_app.py"
_READY_TIMEOUT_S = 20.0
_ANSWER_TIMEOUT_S = 10.0
_CBCTL_TIMEOUT_S = 30.0


def clean_environ(**extra: str) -> dict[str, str]:
    """This process's environment without cbcontrol settings (the cache dir kept)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not (k.startswith(("CBCONTROL_", "CBCTL_")) or "CB_" in k)
    }
    if "CBCONTROL_CACHE_DIR" in os.environ:  # the test's own (tests/conftest.py)
        env["CBCONTROL_CACHE_DIR"] = os.environ["CBCONTROL_CACHE_DIR"]
    env.update(extra)
    return env


class App:
    """
    One checkout app process, started against a store.

    Args:
        store: The ``CBCONTROL_STORE`` URL it connects to.
        log: Where its stderr goes (kept for failure messages).
        env: Extra environment, e.g. ``{"PAYMENT_CB_MAX_FAILURES": "4"}``.
    """

    def __init__(self, store: str, log: Path, env: Mapping[str, str]) -> None:
        self.store = store
        self.log = log
        self._stderr = log.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, str(CHECKOUT_APP)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            bufsize=1,
            env=clean_environ(CBCONTROL_STORE=store, **env),
            cwd=log.parent,
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        assert self.process.stdout is not None
        self._reader = threading.Thread(
            target=self._read, args=(self.process.stdout,), daemon=True
        )
        self._reader.start()
        self.instance_id = ""

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def _next_line(self, timeout: float) -> str:
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            msg = f"no answer within {timeout}s; stderr: {self.stderr()}"
            raise AssertionError(msg) from None
        if line is None:
            msg = f"the app exited ({self.process.poll()}); stderr: {self.stderr()}"
            raise AssertionError(msg)
        return line

    def wait_ready(self, timeout: float = _READY_TIMEOUT_S) -> str:
        """Wait for the ``ready`` line; return the instance id it announces."""
        line = self._next_line(timeout)
        assert line.startswith("ready "), line
        self.instance_id = json.loads(line.removeprefix("ready "))["instance_id"]
        return self.instance_id

    def send(self, command: str, timeout: float = _ANSWER_TIMEOUT_S) -> dict[str, Any]:
        """Send one command; return its JSON answer."""
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        answer: dict[str, Any] = json.loads(self._next_line(timeout))
        assert "error" not in answer, answer
        return answer

    def state(self) -> str:
        """The breaker's state now."""
        return str(self.send("status")["state"])

    def stderr(self) -> str:
        """What the app wrote to stderr so far (its tail)."""
        self._stderr.flush()
        return self.log.read_text(errors="replace")[-2000:]

    def kill(self) -> None:
        """SIGKILL the process, as a crash or an OOM kill would."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def close(self) -> int | None:
        """End the app: EOF on stdin, then SIGKILL if it is not gone within 5 s."""
        assert self.process.stdin is not None
        with contextlib.suppress(OSError):  # a dead app's pipe may be broken
            self.process.stdin.close()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.kill()
        self._reader.join(timeout=5)
        assert self.process.stdout is not None
        self.process.stdout.close()
        self._stderr.close()
        return self.process.returncode


@dataclass(frozen=True)
class CbctlResult:
    """What one cbctl run did."""

    args: tuple[str, ...]
    exit_code: int
    stdout: str
    stderr: str
    elapsed_s: float

    @property
    def output(self) -> str:
        """Everything it printed, for assertion messages."""
        return f"$ cbctl {' '.join(self.args)}\n{self.stdout}{self.stderr}"

    def json(self) -> Any:
        """The stdout, parsed as JSON."""
        return json.loads(self.stdout)


class Cbctl:
    """
    The real ``cbctl`` program against one store, run as a subprocess.

    Args:
        store: The ``--store`` URL.
    """

    def __init__(self, store: str) -> None:
        self.store = store
        self.command = [
            sys.executable,
            *os.environ.get("E2E_CBCTL", "-m cbctl").split(),
        ]  # TEMP

    def argv(self, *args: str) -> list[str]:
        """The command line that runs ``cbctl --store URL *args``."""
        return [*self.command, "--store", self.store, *args]

    def __call__(self, *args: str, timeout: float = _CBCTL_TIMEOUT_S) -> CbctlResult:
        """Run ``cbctl --store URL *args`` to completion."""
        start = time.monotonic()
        done = subprocess.run(
            self.argv(*args),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env=clean_environ(CBCTL_ACTOR="e2e-tests", COLUMNS="200"),
        )
        return CbctlResult(
            tuple(args),
            done.returncode,
            done.stdout,
            done.stderr,
            time.monotonic() - start,
        )

    def start(self, *args: str) -> subprocess.Popen[str]:
        """Start ``cbctl --store URL *args`` without waiting for it."""
        return subprocess.Popen(
            self.argv(*args),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=clean_environ(CBCTL_ACTOR="e2e-tests", COLUMNS="200"),
        )
