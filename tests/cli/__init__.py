"""Tests of cbctl, the operator CLI, against a YAML file store and a real etcd."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from typer.testing import CliRunner

import cbcontrol
from cbcontrol.exceptions import StoreError
from cbctl._app import app

if TYPE_CHECKING:
    from typer.testing import Result

    from tests.support.etcd import EtcdServer

__all__ = ["CBCTL", "StoreEnv", "lines", "parse", "run_in_terminal"]

CBCTL = Path(sys.executable).with_name("cbctl")
_APPEAR_TIMEOUT_S = 5.0


@dataclass
class StoreEnv:
    """One store under test (file or etcd), with helpers to drive cbctl against it."""

    kind: str
    url: str
    path: Path | None = None
    etcd: EtcdServer | None = None
    namespace: str = "default"
    planes: list[cbcontrol.ControlPlane] = field(default_factory=list)

    def cbctl(self, *args: str, stdin: str | None = None) -> Result:
        """Run cbctl in-process against this store."""
        return CliRunner().invoke(
            app,
            ["--store", self.url, *args],
            input=stdin,
            prog_name="cbctl",
            env={"COLUMNS": "200"},  # Typer's usage errors come in a box that wide
        )

    def run(
        self, *args: str, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run the real ``cbctl`` entry point in a subprocess against this store."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("CBCONTROL_")}
        return subprocess.run(
            [str(CBCTL), "--store", self.url, *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            check=False,
        )

    def terminal(self, *args: str, columns: int = 80) -> str:
        """Run the real ``cbctl`` with its output on a terminal ``columns`` wide."""
        return run_in_terminal([str(CBCTL), "--store", self.url, *args], columns)

    def open(self) -> cbcontrol.ControlStore:
        """The store, opened through the library (close it after use)."""
        return cbcontrol.open_store(self.url)

    def instance(
        self,
        *names: str,
        app: str = "checkout",
        labels: dict[str, str] | None = None,
        environ: dict[str, str] | None = None,
    ) -> cbcontrol.ControlPlane:
        """Start a live instance with breakers ``names``, and wait until it reports."""
        plane = cbcontrol.connect(self.url, app=app, labels=labels, environ=environ)
        self.planes.append(plane)
        # Let the first status land before adding breakers: in etcd, a status written
        # while the lease is being granted can be overwritten by the older one.
        self._await_report(plane.instance_id, ())
        for name in names:
            plane.breaker(name)
        self._await_report(plane.instance_id, names)
        return plane

    def _await_report(self, instance_id: str, names: tuple[str, ...]) -> None:
        deadline = time.monotonic() + _APPEAR_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                with self.open() as store:
                    statuses = store.instances()
            except StoreError:  # a new file store: no status yet
                statuses = []
            for status in statuses:
                if status.instance_id == instance_id and set(names) <= set(
                    status.breakers
                ):
                    return
            time.sleep(0.02)
        msg = f"instance {instance_id} did not report {names} in time"
        raise AssertionError(msg)

    def fake_instance(
        self,
        name: str,
        observed_generation: int = 0,
        record: dict[str, Any] | None = None,
    ) -> str:
        """Report a live instance that never applies anything; return its id."""
        instance_id = f"stuck-{uuid.uuid4().hex[:6]}"
        now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        identity = {
            "format": 2,
            "instance_id": instance_id,
            "app": "stuck",
            "host": "nowhere",
            "pid": 1,
            "started_at": now,
            "updated_at": now,
        }
        record = record or {"state": "closed", "gen": observed_generation}
        if self.path is not None:
            body = {"instance": identity, "breakers": {name: record}}
            self.put_status(instance_id, json.dumps(body))
        else:
            self.put_status(instance_id, json.dumps(identity))
            self.put_key(f"status/{name}/{instance_id}", json.dumps(record))
        return instance_id

    def put_status(self, instance_id: str, data: str) -> None:
        """Write ``data`` as instance ``instance_id``'s status file or identity key."""
        if self.path is not None:
            directory = self.path.parent / f"{self.path.stem}.status"
            directory.mkdir(exist_ok=True)
            (directory / f"{instance_id}.json").write_text(data)
        else:
            self.put_key(f"instances/{instance_id}", data)

    def put_key(self, key: str, data: str) -> None:
        """Write ``data`` under the etcd namespace (etcd only)."""
        from cbcontrol.store._etcd._client import EtcdClient

        assert self.etcd is not None
        with EtcdClient(self.etcd.endpoints) as client:
            client.put(f"/cbcontrol/{self.namespace}/{key}", data)

    def close(self) -> None:
        """Stop every instance this test started."""
        for plane in self.planes:
            plane.close()


def run_in_terminal(
    argv: list[str], columns: int, env: dict[str, str] | None = None
) -> str:
    """
    Run ``argv`` with its output on a pseudo-terminal ``columns`` wide; its output.

    A real terminal, not a pretence: cbctl sees a tty of that size, as an operator's.
    """
    import fcntl
    import pty
    import select
    import struct
    import termios

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    environ = {
        k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR")
    }
    environ.update({"TERM": "dumb", "NO_COLOR": "1", **(env or {})})
    process = subprocess.Popen(
        argv,
        stdout=follower,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        env=environ,
    )
    os.close(follower)
    chunks = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.5)
        if ready:
            try:
                data = os.read(leader, 65536)
            except OSError:  # the follower side closed: the program ended
                break
            if not data:
                break
            chunks.append(data)
        elif process.poll() is not None:
            break
    process.wait(timeout=30)
    os.close(leader)
    assert process.stderr is not None
    process.stderr.close()
    return b"".join(chunks).decode().replace("\r\n", "\n")


def lines(text: str) -> list[str]:
    """The output's lines without trailing blanks (tables pad their cells)."""
    return [line.rstrip() for line in text.splitlines()]


def parse(result: Any) -> Any:
    """The JSON a command printed on stdout."""
    return json.loads(result.stdout)
