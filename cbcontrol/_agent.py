"""
Reported state: each process publishes its :class:`InstanceStatus`.

One daemon thread per plane writes the status through a *sink*: a key on a lease in
etcd (``instances/<id>``, TTL 10 s, kept alive, so a dead process disappears when its
lease expires), or one JSON file per instance in the file store's status directory
(with a heartbeat; readers treat a file older than the TTL as gone).

Writes are coalesced: at most one a second while something changes (counters move
with every call), none while nothing does, and *at once* when the plane has applied a
new desired state, so that ``cbctl --wait`` sees the acknowledgement within
milliseconds.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from cbcontrol.config._layout import STATUS_TTL_S
from cbcontrol.exceptions import StoreError

if TYPE_CHECKING:
    from collections.abc import Callable

    from cbcontrol._etcd import EtcdClient, LeaseKeeper
    from cbcontrol.config._models import InstanceStatus

__all__ = [
    "STATUS_TTL_S",
    "EtcdStatusSink",
    "FileStatusSink",
    "StatusPublisher",
    "StatusSink",
]

logger = logging.getLogger("cbcontrol.agent")
logger.addHandler(logging.NullHandler())

_INTERVAL_S = 1.0  # at most one coalesced write a second at steady state
_HEARTBEAT_S = STATUS_TTL_S / 3  # file store: rewrite this often even if unchanged


class StatusSink(Protocol):
    """Where a process's status goes."""

    heartbeat: bool
    """Whether an unchanged status must still be rewritten (no lease keeps it)."""

    def write(self, data: bytes) -> None:
        """Publish the status document (JSON bytes)."""
        ...

    def remove(self) -> None:
        """Withdraw the status: the process is going away."""
        ...


class EtcdStatusSink:
    """``/cbcontrol/<ns>/instances/<id>`` on a lease that a keeper thread refreshes."""

    heartbeat = False

    def __init__(self, client: EtcdClient, key: str, ttl: int = STATUS_TTL_S) -> None:
        from cbcontrol._etcd import LeaseKeeper

        self._client = client
        self._key = key
        self._last: bytes | None = None
        self._lock = threading.Lock()
        self._keeper: LeaseKeeper = LeaseKeeper(client, ttl, self._on_lease)
        self._started = False

    def write(self, data: bytes) -> None:
        """Put the status under the current lease (granting it first if needed)."""
        # Puts happen under the lock, so an older status can never land after a
        # newer one (the keeper's thread writes too, on a new lease).
        with self._lock:
            self._last = data
            if not self._started:
                self._started = True
                self._keeper.start()  # its first lease triggers the first put
                return
            lease = self._keeper.lease_id
            if lease is not None:
                self._client.put(self._key, data, lease=lease)

    def _on_lease(self, lease: int) -> None:
        # A new lease (the first, or one replacing a lease that expired while etcd
        # was away): the key went with the old one, so write it again.
        with self._lock:
            if self._last is not None:
                self._client.put(self._key, self._last, lease=lease)

    def remove(self) -> None:
        """Revoke the lease, which deletes the key."""
        self._keeper.stop(revoke=True)


class FileStatusSink:
    """``<status dir>/<instance_id>.json``, rewritten atomically."""

    heartbeat = True

    def __init__(self, directory: Path, instance_id: str) -> None:
        self._dir = directory
        self._path = directory / f"{instance_id}.json"

    def write(self, data: bytes) -> None:
        """Write the file by rename, so readers never see half a status."""
        try:
            self._dir.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self._dir, prefix=".", suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as out:
                    out.write(data)
                Path(tmp).replace(self._path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            msg = f"cannot write instance status {self._path}: {exc.strerror or exc}"
            raise StoreError(msg, store=f"file:{self._dir}") from exc

    def remove(self) -> None:
        """Delete the status file."""
        with contextlib.suppress(OSError):
            self._path.unlink(missing_ok=True)


class StatusPublisher:
    """
    The thread that keeps one process's status published.

    Args:
        build: Returns the current status (called on the publisher's thread).
        sink: Where it goes.
    """

    def __init__(self, build: Callable[[], InstanceStatus], sink: StatusSink) -> None:
        self._build = build
        self._sink = sink
        self._urgent = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="cbcontrol-status", daemon=True
        )
        self._failing = False

    def start(self) -> None:
        """Publish at once, then keep publishing."""
        self._thread.start()

    def poke(self) -> None:
        """Publish now (a new desired state was applied); returns at once."""
        self._urgent.set()

    def close(self) -> None:
        """Stop and withdraw the status."""
        self._stop.set()
        self._urgent.set()
        self._thread.join(timeout=5.0)
        try:
            self._sink.remove()
        except StoreError as exc:
            logger.debug("could not withdraw the instance status: %s", exc)

    def _run(self) -> None:
        last_body: str | None = None
        last_write = 0.0
        while not self._stop.is_set():
            status = self._build()
            # Compare without the heartbeat, which changes every time.
            body = status.model_dump_json(exclude={"heartbeat_at"})
            now = time.monotonic()
            due = self._sink.heartbeat and now - last_write >= _HEARTBEAT_S
            if (body != last_body or due) and self._publish(status):
                last_body, last_write = body, now
            self._urgent.wait(_INTERVAL_S)
            self._urgent.clear()

    def _publish(self, status: InstanceStatus) -> bool:
        data = json.dumps(status.model_dump(mode="json"), separators=(",", ":"))
        try:
            self._sink.write(data.encode())
        except StoreError as exc:
            if not self._failing:
                logger.warning("cannot publish the instance status: %s", exc)
            self._failing = True
            return False
        if self._failing:
            logger.info("publishing the instance status again")
        self._failing = False
        return True
