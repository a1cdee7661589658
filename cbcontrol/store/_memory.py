"""
The in-memory store: a complete backend inside one process, and the fake for tests.

It keeps the same key layout as etcd (:mod:`cbcontrol.store._keys`), parses every
value with the same bounded JSON reader, and delivers changes to its watches
*synchronously*: :meth:`MemoryStore.put` returns once every running watch (the control
plane's, a ``wait_applied``) has taken the change in, so a test needs no waiting::

    store = MemoryStore()
    plane = cbcontrol.connect(store=store)
    store.put("breakers", "payment", {"max_failures": 3})
    assert plane.breaker("payment").config.max_failures == 3

:meth:`fail` and :meth:`wipe` play a failing store and a store whose history went
backwards.
"""

from __future__ import annotations

import dataclasses
import queue
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from cbcontrol._limits import DocumentError, load_object
from cbcontrol.exceptions import StoreUnavailableError
from cbcontrol.store._keys import (
    EPOCH,
    HISTORY,
    decode,
    encode,
    history_key,
    status_changes,
)
from cbcontrol.store._keys import prefixes as scope_prefixes
from cbcontrol.store._port import Document, Scope, SpecState, Update

if TYPE_CHECKING:
    from collections.abc import Generator, Mapping

__all__ = ["MemoryStore"]

_POLL_S = 0.05
_DELIVERY_TIMEOUT_S = 5.0


@dataclass
class _Watcher:
    """One running watch: its queue, and how far its consumer got."""

    scope: Scope
    updates: queue.Queue[Update] = field(default_factory=queue.Queue)
    sent: int = 0
    taken: int = 0
    thread: int | None = None


class _Writer:
    """A :class:`~cbcontrol.store.StatusWriter` into a :class:`MemoryStore`."""

    def __init__(self, store: MemoryStore, instance_id: str) -> None:
        self._store, self._id = store, instance_id
        self._keys: set[str] = set()

    def publish(
        self,
        identity: Mapping[str, Any] | None,
        records: Mapping[str, Mapping[str, Any] | None],
    ) -> None:
        """Write the identity and records at one revision."""
        changes = status_changes(self._id, identity, records)
        self._store.write_keys(changes)
        self._keys |= {k for k, v in changes.items() if v is not None}
        self._store.heartbeats[self._id] = time.time()

    def keepalive(self) -> None:
        """Note the heartbeat (nothing expires in memory: close() removes the keys)."""
        self._store.heartbeats[self._id] = time.time()

    def close(self) -> None:
        """Remove every key this instance wrote."""
        self._store.write_keys(dict.fromkeys(self._keys))
        self._keys.clear()
        self._store.heartbeats.pop(self._id, None)


class MemoryStore:
    """
    A store held in memory: the fake of a file or etcd store, and a backend.

    Args:
        name: Its display name (and provenance prefix).
        shared: Play a store other processes share (file, etcd): the control plane
            then keeps its fail-static cache of it, as it would of those.

    .. versionadded:: 0.2.0
    """

    def __init__(self, name: str = "memory", *, shared: bool = False) -> None:
        self._name = name
        self._shared = shared
        self._lock = threading.Condition()
        self._values: dict[str, tuple[bytes, int]] = {}
        self._revision = 0
        self._store_id = secrets.token_hex(8)
        self._error: str | None = None
        self._watchers: list[_Watcher] = []
        self.heartbeats: dict[str, float] = {}  # instance id -> wall time

    # -- test controls -----------------------------------------------------------

    def put(
        self, kind: Literal["breakers", "presets"], name: str, data: Mapping[str, Any]
    ) -> None:
        """Store a document (``kind`` is ``"breakers"`` or ``"presets"``)."""
        self.write_keys({f"{kind}/{name}": encode(data)})

    def put_raw(self, key: str, value: bytes | None) -> None:
        """Store any bytes (or delete) under a key relative to the namespace."""
        self.write_keys({key: value})

    def delete(self, kind: Literal["breakers", "presets"], name: str) -> None:
        """Remove a document."""
        self.write_keys({f"{kind}/{name}": None})

    def fail(self, error: str | None) -> None:
        """Fail every read and watch with ``error`` (None: answer again)."""
        with self._lock:
            self._error = error
            revision, store_id = self._revision, self._store_id
            snapshots = [(w, self._snapshot(w.scope)) for w in self._watchers]
        for watcher, documents in snapshots:
            update = (
                Update(error=error)
                if error is not None
                else Update(
                    documents, complete=True, revision=revision, store_id=store_id
                )
            )
            self._send(watcher, update)
        self._settle([w for w, _ in snapshots])

    def wipe(self) -> None:
        """Lose everything, as an etcd restored from nothing: a new history starts."""
        with self._lock:
            self._values.clear()
            self._revision = 0
            self._store_id = secrets.token_hex(8)
            snapshots = [(w, self._snapshot(w.scope)) for w in self._watchers]
            revision, store_id = self._revision, self._store_id
        for watcher, documents in snapshots:
            self._send(
                watcher,
                Update(documents, complete=True, revision=revision, store_id=store_id),
            )
        self._settle([w for w, _ in snapshots])

    # -- the backend -------------------------------------------------------------

    @property
    def name(self) -> str:
        """The display name."""
        return self._name

    @property
    def layer(self) -> Literal["etcd"]:
        """A memory store stands in for the live store on top (etcd)."""
        return "etcd"

    @property
    def shared(self) -> bool:
        """Whether it plays a shared store (see the constructor)."""
        return self._shared

    def read(self, scope: Scope) -> Update:
        """The complete content of ``scope`` (identities with their heartbeat age)."""
        with self._lock:
            self._check()
            now = time.time()
            documents = tuple(
                dataclasses.replace(d, age=now - self.heartbeats[d.name])
                if d.kind == "instances" and d.name in self.heartbeats
                else d
                for d in self._snapshot(scope)
            )
            return Update(
                documents,
                complete=True,
                revision=self._revision,
                store_id=self._store_id,
            )

    def watch(
        self, scope: Scope, stop: threading.Event
    ) -> Generator[Update, None, None]:
        """Follow ``scope``; changes arrive as :meth:`put` makes them."""
        watcher = _Watcher(scope)
        with self._lock:
            first = (
                Update(error=self._error)
                if self._error is not None
                else Update(
                    self._snapshot(scope),
                    complete=True,
                    revision=self._revision,
                    store_id=self._store_id,
                )
            )
            self._watchers.append(watcher)
        try:
            watcher.thread = threading.get_ident()
            yield first
            while not stop.is_set():
                try:
                    update = watcher.updates.get(timeout=_POLL_S)
                except queue.Empty:
                    continue
                watcher.thread = threading.get_ident()
                yield update
                with self._lock:
                    watcher.taken += 1
                    self._lock.notify_all()
        finally:
            with self._lock:
                self._watchers.remove(watcher)
                watcher.taken = watcher.sent
                self._lock.notify_all()

    def load_spec(self, name: str) -> SpecState:
        """The spec and the highest generation in its history."""
        with self._lock:
            self._check()
            key = f"breakers/{name}"
            stored = self._values.get(key)
            floor = self._history_floor(name)
            if stored is None:
                return SpecState(None, None, 0, floor)
            document = self._document(key, *stored)
            return SpecState(document.data, document.error, stored[1], floor)

    def commit_spec(
        self,
        name: str,
        document: Mapping[str, Any],
        expected: SpecState,
        record: Mapping[str, Any],
    ) -> bool:
        """Write spec and history record if the spec is still ``expected``."""
        spec_key = f"breakers/{name}"
        record_key = history_key(name, int(record["generation"]))
        with self._lock:
            self._check()
            current = self._values.get(spec_key)
            if (0 if current is None else current[1]) != expected.version:
                return False
            if record_key in self._values:
                return False
        self.write_keys({spec_key: encode(document), record_key: encode(record)})
        return True

    def put_preset(self, name: str, document: Mapping[str, Any]) -> bool:
        """Define or replace a preset."""
        key, value = f"presets/{name}", encode(document)
        with self._lock:
            self._check()
            current = self._values.get(key)
        if current is not None and current[0] == value:
            return False
        self.write_keys({key: value})
        return True

    def put_epoch(self, document: Mapping[str, Any], *, create: bool) -> bool:
        """Write the epoch (with ``create``, only if there is none)."""
        with self._lock:
            self._check()
            if create and EPOCH in self._values:
                return False
        self.write_keys({EPOCH: encode(document)})
        return True

    def history(self, name: str | None, limit: int) -> list[dict[str, Any]]:
        """The stored history records."""
        prefix = f"{HISTORY}{name}/" if name else HISTORY
        with self._lock:
            self._check()
            keys = sorted(k for k in self._values if k.startswith(prefix))
            values = [self._values[k][0] for k in keys]
        records = []
        for value in values:
            try:
                records.append(load_object(value, "history record"))
            except DocumentError:
                continue
        return records[-limit:] if name else records

    def open_status(self, instance_id: str) -> _Writer:
        """Where an instance reports."""
        return _Writer(self, instance_id)

    def delete_preset(self, name: str) -> bool:
        """Remove a preset."""
        key = f"presets/{name}"
        with self._lock:
            self._check()
            present = key in self._values
        if present:
            self.write_keys({key: None})
        return present

    def close(self) -> None:
        """Nothing to release."""

    # -- internals ---------------------------------------------------------------

    def write_keys(self, changes: Mapping[str, bytes | None]) -> None:
        """Apply changes at one new revision and deliver them to the watches."""
        with self._lock:
            self._check()
            self._revision += 1
            revision = self._revision
            for key, value in changes.items():
                if value is None:
                    self._values.pop(key, None)
                else:
                    self._values[key] = (value, revision)
            deliveries = []
            for watcher in self._watchers:
                documents = tuple(
                    self._document(key, value, revision)
                    for key, value in changes.items()
                    if self._covers(watcher.scope, key)
                )
                if documents:
                    update = Update(
                        documents,
                        complete=False,
                        revision=revision,
                        store_id=self._store_id,
                    )
                    deliveries.append((watcher, update))
        for watcher, update in deliveries:
            self._send(watcher, update)
        self._settle([w for w, _ in deliveries])

    def _send(self, watcher: _Watcher, update: Update) -> None:
        with self._lock:
            watcher.sent += 1
        watcher.updates.put(update)

    def _settle(self, watchers: list[_Watcher]) -> None:
        """Wait (bounded) until each watch took what it was sent, unless it is us."""
        me = threading.get_ident()
        with self._lock:
            self._lock.wait_for(
                lambda: all(w.taken >= w.sent for w in watchers if w.thread != me),
                timeout=_DELIVERY_TIMEOUT_S,
            )

    def _check(self) -> None:
        if self._error is not None:
            raise StoreUnavailableError(self._error, store=self._name)

    def _history_floor(self, name: str) -> int:
        """The last generation of the history, or of a live instance's record."""
        prefix, records = f"{HISTORY}{name}/", f"status/{name}/"
        keys = [k for k in self._values if k.startswith(prefix)]
        floor = max((int(k.rsplit("/", 1)[1]) for k in keys), default=0)
        for key, (value, revision) in self._values.items():
            if key.startswith(records):
                reported = (self._document(key, value, revision).data or {}).get("gen")
                floor = max(floor, reported if type(reported) is int else 0)
        return floor

    @staticmethod
    def _covers(scope: Scope, key: str) -> bool:
        return any(
            key == p or (p.endswith("/") and key.startswith(p))
            for p in scope_prefixes(scope)
        )

    def _snapshot(self, scope: Scope) -> tuple[Document, ...]:
        return tuple(
            self._document(key, value, revision)
            for key, (value, revision) in sorted(self._values.items())
            if self._covers(scope, key)
        )

    @staticmethod
    def _document(key: str, value: bytes | None, revision: int) -> Document:
        return decode(key, value, revision, f"memory:/{key}@{revision}")
