"""
Reported state: each process publishes its identity and one record per breaker.

One daemon thread per plane writes through the store's
:class:`~cbcontrol.store.StatusWriter` (an etcd lease; a status file) only what
changed (layout: :mod:`cbcontrol.store._status`):

* at once, a breaker that applied new desired state, changed state, or was created
  (:meth:`StatusPublisher.mark`: ``cbctl --wait`` sees the acknowledgement within
  milliseconds);
* within a second, the identity when the plane's health or errors change;
* counters and windows, by a sweep that looks at up to :data:`SWEEP_PER_TICK`
  breakers a second (all of them every second up to that many), and writes a record
  only if its bytes changed.

An idle instance therefore writes nothing; only its keep-alive runs (the lease's, or
a touch of the status file every third of the TTL). A failed write is retried on the
next round with everything still unwritten, and logged once per failure streak.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime
from itertools import islice
from typing import TYPE_CHECKING, Any, Final

from cbcontrol._limits import clip
from cbcontrol.exceptions import StoreError
from cbcontrol.store._keys import encode
from cbcontrol.store._port import STATUS_TTL_S

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from cbcontrol.store._port import StatusWriter

__all__ = ["SWEEP_PER_TICK", "StatusPublisher"]

logger = logging.getLogger("cbcontrol.agent")
logger.addHandler(logging.NullHandler())

_TICK_S: Final = 1.0
_KEEPALIVE_S: Final = STATUS_TTL_S / 3
SWEEP_PER_TICK: Final = 2_000
"""Breakers whose counters are compared per second."""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class StatusPublisher:
    """
    The thread that keeps one process's reported state published.

    Args:
        writer: Where it goes.
        identity: Builds the identity document.
        record: Builds one breaker's record (None once the breaker is gone).
        names: The breakers there are.
    """

    def __init__(
        self,
        writer: StatusWriter,
        *,
        identity: Callable[[], dict[str, Any]],
        record: Callable[[str], dict[str, Any] | None],
        names: Callable[[], list[str]],
    ) -> None:
        self._writer = writer
        self._identity, self._record, self._names = identity, record, names
        self._lock = threading.Lock()
        self._marked: dict[str, None] = {}  # ordered set of breakers to publish now
        self._identity_due = False
        self._urgent = threading.Event()
        self._stop = threading.Event()
        self._published: dict[str, int] = {}  # breaker -> hash of the bytes written
        self._identity_hash: int | None = None
        self._cursor = 0
        self._failing = False
        self.error: str | None = None  # why the last write failed, while it fails
        self._thread = threading.Thread(
            target=self._run, name="cbcontrol-status", daemon=True
        )

    def start(self) -> None:
        """Publish everything at once, then keep it published."""
        self._thread.start()

    def mark(self, names: Iterable[str]) -> None:
        """Publish these breakers now (they applied something, or changed state)."""
        with self._lock:
            for name in names:
                self._marked[name] = None
        self._urgent.set()

    def mark_identity(self) -> None:
        """Publish the identity now (the plane's health changed)."""
        with self._lock:
            self._identity_due = True
        self._urgent.set()

    def close(self) -> None:
        """Stop and withdraw the status."""
        self._stop.set()
        self._urgent.set()
        self._thread.join(timeout=5.0)
        try:
            self._writer.close()
        except StoreError as exc:
            logger.debug("could not withdraw the instance status: %s", exc)

    def _run(self) -> None:
        last_write = time.monotonic()
        next_sweep = 0.0
        while not self._stop.is_set():
            try:
                now = time.monotonic()
                sweep = now >= next_sweep
                if sweep:
                    next_sweep = now + _TICK_S
                if self._publish(sweep=sweep):
                    last_write = now
                elif now - last_write >= _KEEPALIVE_S:
                    self._writer.keepalive()
                    last_write = now
            except Exception:  # the publisher must outlive its own bugs
                logger.exception("publishing the instance status failed")
            self._urgent.wait(max(0.0, next_sweep - time.monotonic()))
            self._urgent.clear()

    def _candidates(self, *, sweep: bool) -> list[str]:
        """Marked breakers first, then (when sweeping) the next slice of the rest."""
        with self._lock:
            marked, self._marked = list(self._marked), {}
        if not sweep:
            return marked
        names = self._names()
        if len(names) <= SWEEP_PER_TICK:
            chosen = names
        else:
            start = self._cursor % len(names)
            chosen = list(islice(names, start, start + SWEEP_PER_TICK))
            chosen += names[: SWEEP_PER_TICK - len(chosen)]
            self._cursor = start + SWEEP_PER_TICK
        seen = set(marked)
        return marked + [n for n in chosen if n not in seen]

    def _changed_identity(self, *, sweep: bool) -> tuple[dict[str, Any], int] | None:
        """The identity and its hash, if it changed since it was last written."""
        with self._lock:
            due, self._identity_due = self._identity_due, False
        if not (sweep or due) and self._identity_hash is not None:
            return None
        document = self._identity()
        digest = hash(encode(document))
        return None if digest == self._identity_hash else (document, digest)

    def _failed(
        self, exc: StoreError, *, identity: bool, records: Iterable[str]
    ) -> None:
        """A write failed: report it, and retry what it held on the next round."""
        if not self._failing:
            logger.warning("cannot publish the instance status: %s", exc)
        self._failing = True
        self.error = clip(str(exc))
        # What the store holds is unknown now (a writer may have kept what it was
        # given, and write it on a new lease later), so the last written hashes
        # prove nothing: a value that goes back to them must be written too.
        if identity:
            self._identity_hash = None
        with self._lock:  # retried on the next round, not at once
            for name in records:
                self._published.pop(name, None)
                self._marked[name] = None

    def _publish(self, *, sweep: bool) -> bool:
        """Write what changed; True if anything was written."""
        changed = self._changed_identity(sweep=sweep)
        identity = None if changed is None else changed[0]
        names = self._candidates(sweep=sweep)
        records: dict[str, dict[str, Any] | None] = {}
        hashes: dict[str, int] = {}
        for name in names:
            record = self._record(name)
            digest = hash(encode(record)) if record is not None else 0
            if self._published.get(name) != digest:
                records[name], hashes[name] = record, digest
        if identity is None and not records:
            return False
        if identity is not None:  # the time it changed: not part of the comparison
            identity = {**identity, "updated_at": _now()}
        try:
            self._writer.publish(identity, records)
        except StoreError as exc:
            self._failed(exc, identity=identity is not None, records=records)
            return False
        if self._failing:
            logger.info("publishing the instance status again")
        self._failing = False
        self.error = None
        if changed is not None:
            self._identity_hash = changed[1]
        self._published.update(hashes)
        return True
