"""
The control plane in action: three running apps retuned, tripped and reset by cbctl.

Starts three ``checkout_app.py`` processes on a YAML file store in a temporary
directory (no etcd needed), then runs the real ``cbctl`` against the same store and
narrates what the apps do:

1. ``cbctl list`` shows the fleet;
2. ``cbctl set payment --max-failures 2`` is applied on 3/3 instances, live;
3. the payment dependency fails: every app's breaker trips after exactly 2 failures;
4. ``cbctl trip payment --for 3s`` forces it open: calls are rejected at once, and the
   override expires by itself three seconds later;
5. ``cbctl reset payment`` closes every breaker with zeroed counters;
6. ``cbctl get payment`` and ``cbctl history payment`` show the result and the audit
   trail.

It takes about ten seconds, never more than a minute, and always stops the apps it
started. Run it with ``make demo``.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path
from typing import IO, Any, cast

import cbcontrol

HERE = Path(__file__).resolve().parent
APP = HERE / "checkout_app.py"
INSTANCES = 3
TIMEOUT_S = 20.0  # for any one step: an app's answer, a cbctl run, a wait


class DemoError(Exception):
    """A step of the demo did not go as it should."""


class App:
    """One checkout app process and its line protocol."""

    def __init__(self, number: int, store: str, workdir: Path) -> None:
        self.number = number
        self._log = (workdir / f"app{number}.log").open("wb")
        env = {k: v for k, v in os.environ.items() if "CB_" not in k}
        env["CBCONTROL_STORE"] = store
        self.process = subprocess.Popen(  # noqa: S603 - this Python, our own script
            [sys.executable, str(APP)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            encoding="utf-8",
            bufsize=1,
            env=env,
            cwd=workdir,
        )
        self._stdin = cast("IO[str]", self.process.stdin)
        self._stdout = cast("IO[str]", self.process.stdout)
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, args=(self._stdout,), daemon=True).start()
        self.instance_id = ""

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def _line(self) -> str:
        try:
            line = self._lines.get(timeout=TIMEOUT_S)
        except queue.Empty:
            line = None
        if line is None:
            msg = f"app {self.number} did not answer (exit code {self.process.poll()})"
            raise DemoError(msg)
        return line

    def wait_ready(self) -> None:
        """Wait for the app's ``ready`` line."""
        line = self._line()
        if not line.startswith("ready "):
            msg = f"app {self.number} said {line!r} instead of ready"
            raise DemoError(msg)
        self.instance_id = json.loads(line.removeprefix("ready "))["instance_id"]

    def send(self, command: str) -> dict[str, Any]:
        """Send one command and return the app's JSON answer."""
        self._stdin.write(command + "\n")
        self._stdin.flush()
        answer: dict[str, Any] = json.loads(self._line())
        return answer

    def stop(self) -> None:
        """End of input makes the app close its plane and exit; kill it if it hangs."""
        with contextlib.suppress(OSError):
            self._stdin.close()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)
        self._stdout.close()
        self._log.close()


def say(text: str = "") -> None:
    """Narrate."""
    print(text, flush=True)


def cbctl(store: str, *args: str) -> str:
    """Run the real cbctl against the store, echo the command and its output."""
    shown = " ".join(f'"{a}"' if " " in a else a for a in args)
    say(f"$ cbctl {shown}")
    width = max(shutil.get_terminal_size((120, 24)).columns, 100)
    env = {**os.environ, "COLUMNS": str(width), "PYTHONIOENCODING": "utf-8"}
    env.setdefault("CBCTL_ACTOR", "demo@ops")
    done = subprocess.run(  # noqa: S603 - this Python's cbctl, our arguments
        [sys.executable, "-m", "cbctl", "--store", store, *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=TIMEOUT_S,
        env=env,
        check=False,
    )
    output = "\n".join(
        line.rstrip() for line in (done.stdout + done.stderr).splitlines()
    )
    say(textwrap.indent(output.rstrip(), "    "))
    say()
    if done.returncode != 0:
        msg = f"cbctl {shown} exited with {done.returncode}"
        raise DemoError(msg)
    return done.stdout


def describe(app: App, answer: dict[str, Any]) -> str:
    """One line about what an app's calls did."""
    parts = [
        f"{answer[k]} {k}"
        for k in ("ok", "failed", "rejected")
        if answer[k] or k == "ok"
    ]
    line = f"  app {app.number}: {', '.join(parts)}; breaker {answer['state']}"
    for change in answer["transitions"]:
        line += f"\n  app {app.number}: [breaker] {change}"
    return line


def on_every_app(apps: list[App], command: str) -> list[dict[str, Any]]:
    """Send a command to every app; narrate and return the answers."""
    answers = [app.send(command) for app in apps]
    for app, answer in zip(apps, answers, strict=True):
        say(describe(app, answer))
    say()
    return answers


def wait_for(predicate: Any, timeout: float = TIMEOUT_S) -> bool:
    """Poll ``predicate`` every 50 ms until it holds or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return bool(predicate())


def run(store: str, apps: list[App]) -> None:
    """The demo proper, once the apps run."""
    with cbcontrol.open_store(store) as control:
        ids = {app.instance_id for app in apps}

        def all_reported() -> bool:
            live = {
                s.instance_id for s in control.instances() if "payment" in s.breakers
            }
            return ids <= live

        if not wait_for(all_reported):
            msg = "the apps did not report to the store"
            raise DemoError(msg)
    say(f"{INSTANCES} checkout apps are running, each with a live 'payment' breaker.\n")

    say("1. The fleet, as an operator sees it:")
    cbctl(store, "list")

    say("2. Retune the breaker on every instance at once; cbctl waits for each to ack:")
    out = cbctl(store, "set", "payment", "--max-failures", "2", "--reason", "demo")
    if f"applied on {INSTANCES}/{INSTANCES}" not in out:
        msg = "the change was not applied everywhere"
        raise DemoError(msg)

    say("3. The payment service goes down; each app makes 3 calls:")
    answers = on_every_app(apps, "fail 3")
    if any((a["failed"], a["rejected"], a["state"]) != (2, 1, "open") for a in answers):
        msg = "the breakers did not trip after exactly 2 failures"
        raise DemoError(msg)
    say("   Each breaker opened after exactly 2 failures and rejected the 3rd call.\n")

    say("4. During the incident, force the breaker open for 3 seconds:")
    cbctl(store, "trip", "payment", "--reason", "INC-42", "--for", "3s")
    started = time.monotonic()
    answers = on_every_app(apps, "ok 5")
    fast = (time.monotonic() - started) * 1000
    rejected = sum(answer["rejected"] for answer in answers)
    say(f"   {rejected} calls rejected at once ({fast:.0f} ms for all of them).")
    say("   Nobody runs cbctl now; waiting for the override to expire by itself...")
    if not wait_for(
        lambda: all(app.send("status")["state"] == "closed" for app in apps)
    ):
        msg = "the override did not expire"
        raise DemoError(msg)
    say(f"   ...expired after {time.monotonic() - started:.1f} s: breakers closed.\n")
    on_every_app(apps, "ok 2")

    say("5. Reset: clear the override, close, zero the counters everywhere.")
    say("   First one more failure each, so that there is something to reset:")
    on_every_app(apps, "fail 1")
    cbctl(store, "reset", "payment")
    for app in apps:
        snap = app.send("status")["snapshot"]
        say(
            f"  app {app.number}: breaker {snap['state']}, {snap['calls']} calls, "
            f"{snap['failures']} failures, {snap['rejections']} rejections"
        )
    say()

    say("6. Effective config with provenance, per-instance state, and the audit trail:")
    cbctl(store, "get", "payment")
    cbctl(store, "history", "payment")


def main() -> int:
    """Start the apps on a temporary file store, run the demo, always stop them."""
    workdir = Path(tempfile.mkdtemp(prefix="cbcontrol-demo-"))
    store = f"file://{workdir / 'cbcontrol.yaml'}"
    say(f"Store: {store}")
    apps: list[App] = []
    try:
        apps = [App(n, store, workdir) for n in range(1, INSTANCES + 1)]
        for app in apps:
            app.wait_ready()
        run(store, apps)
    except (DemoError, subprocess.TimeoutExpired) as exc:
        print(f"demo failed: {exc}", file=sys.stderr)
        for log in sorted(workdir.glob("app*.log")):
            print(f"--- {log.name}\n{log.read_text(errors='replace')}", file=sys.stderr)
        return 1
    finally:
        for app in apps:
            app.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    say("Done: the apps were stopped and the temporary store removed.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
