"""
The etcd backend: every document of a namespace under ``/cbcontrol/<namespace>/``.

Watches are supervised here, once for every consumer (the control plane, a
``wait_applied``, ``cbctl watch``). A watch is created first ("from now", which etcd
serves at once, where a watch from a past revision waits for a 100 ms catch-up timer)
and the keys are read after, so no change falls between the two: events the read
already holds are skipped. On any failure the watch reports it once, drops its channel,
backs off (capped, jittered) and starts over with a complete read. Watch progress
requests tell a hung or partitioned etcd within ``hang_timeout``.

Reported state lives on one lease per instance (TTL :data:`STATUS_TTL_S`): the identity
and one key per breaker, written in transactions of at most :data:`_TXN_OPS`
operations, and rewritten whole when the lease had to be replaced.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import threading
import time
from typing import TYPE_CHECKING, Any, Literal

from cbcontrol._limits import DocumentError, load_object
from cbcontrol.exceptions import StoreError, StoreUnavailableError
from cbcontrol.store._etcd._client import POLL_S, EtcdClient
from cbcontrol.store._etcd._lease import LeaseKeeper
from cbcontrol.store._keys import (
    EPOCH,
    HISTORY,
    decode,
    encode,
    history_key,
    prefixes,
    status_changes,
)
from cbcontrol.store._port import (
    LOST_S,
    STATUS_TTL_S,
    Document,
    Scope,
    SpecState,
    Update,
)

if TYPE_CHECKING:
    from collections.abc import Generator, Iterator, Mapping

    from cbcontrol.store._etcd._watch import EtcdWatch, WatchUpdate

__all__ = ["HISTORY_LIMIT", "EtcdBackend"]

logger = logging.getLogger("cbcontrol.etcd")

HISTORY_LIMIT = 100
"""History records kept per breaker."""
_TXN_OPS = 100  # etcd refuses more than --max-txn-ops (128 by default) per transaction
_MIN_BACKOFF_S = 0.1


class _StatusWriter:
    """
    One instance's keys on two leases that keeper threads refresh and replace.

    The records live on a lease of :data:`STATUS_TTL_S`: they go when the instance
    stops, so it is no longer counted. The identity lives on a lease of
    :data:`LOST_S` more, refreshed as often: readers tell from its time to live how
    late the instance's heartbeat is, and list it as lost for a while.
    """

    def __init__(self, backend: EtcdBackend, instance_id: str) -> None:
        self._backend = backend
        self._client = backend.client
        self._id = instance_id
        self._state: dict[str, bytes] = {}  # everything published: a new lease gets it
        self._lock = threading.Lock()
        period = STATUS_TTL_S / 3
        self._records = LeaseKeeper(
            self._client,
            STATUS_TTL_S,
            lambda lease: self._on_lease(lease, on_identity=False),
        )
        self._identity = LeaseKeeper(
            self._client,
            STATUS_TTL_S + LOST_S,
            lambda lease: self._on_lease(lease, on_identity=True),
            period=period,
        )
        self._started = False

    def publish(
        self,
        identity: Mapping[str, Any] | None,
        records: Mapping[str, Mapping[str, Any] | None],
    ) -> None:
        """Write the changes under the current leases (granted first if needed)."""
        changes = status_changes(self._id, identity, records)
        # Writes happen under the lock, so an older status never lands after a
        # newer one (the keepers' threads write too, on new leases).
        with self._lock:
            for key, value in changes.items():
                if value is None:
                    self._state.pop(key, None)
                else:
                    self._state[key] = value
            if not self._started:
                self._started = True
                self._identity.start()  # their first leases write the whole state
                self._records.start()
                return
            for on_identity in (True, False):
                keeper = self._identity if on_identity else self._records
                part = _part(changes, identity=on_identity)
                if part and keeper.lease_id is not None:
                    self._write(part, keeper.lease_id)

    def _write(self, changes: Mapping[str, bytes | None], lease: int) -> None:
        items = list(changes.items())
        for start in range(0, len(items), _TXN_OPS):
            batch = dict(items[start : start + _TXN_OPS])
            absolute = {self._backend.prefix + k: v for k, v in batch.items()}
            self._client.txn("publish status", unchanged={}, puts=absolute, lease=lease)

    def _on_lease(self, lease: int, *, on_identity: bool) -> None:
        # A new lease (the first, or one replacing a lease that expired while etcd
        # was away): the keys went with the old one, so write them all again.
        with self._lock:
            self._write(_part(self._state, identity=on_identity), lease)

    def keepalive(self) -> None:
        """The keepers' threads keep the leases alive."""

    def close(self) -> None:
        """Revoke the leases, which deletes every key on them: a clean stop."""
        self._records.stop(revoke=True)
        self._identity.stop(revoke=True)


def _part(changes: Mapping[str, bytes | None], *, identity: bool) -> dict[str, Any]:
    """The identity's key (or the records' keys) of ``changes``."""
    return {k: v for k, v in changes.items() if k.startswith("instances/") == identity}


class EtcdBackend:
    """
    A :class:`~cbcontrol.store.StoreBackend` on etcd.

    Args:
        client: The client (the backend owns it and closes it).
        namespace: The namespace (a name of the name grammar).
        hang_timeout: Seconds without any answer on a watch stream after which etcd
            counts as hung; heartbeats are sent after a third of it.
        max_backoff: The cap of the delay between reconnection attempts, in seconds.

    .. versionadded:: 0.2.0
    """

    def __init__(
        self,
        client: EtcdClient,
        namespace: str = "default",
        *,
        hang_timeout: float = 6.0,
        max_backoff: float = 2.0,
    ) -> None:
        self.client = client
        self.namespace, self.prefix = namespace, f"/cbcontrol/{namespace}/"
        self._hang_timeout, self._max_backoff = hang_timeout, max_backoff

    @property
    def name(self) -> str:
        """``etcd://host:port[,...]/namespace`` (no credentials)."""
        return f"{self.client.name}/{self.namespace}"

    @property
    def layer(self) -> Literal["etcd"]:
        """Specs in etcd are the top layer."""
        return "etcd"

    # -- reading -----------------------------------------------------------------

    def _document(self, key: str, value: bytes | None, revision: int) -> Document:
        return decode(
            key.removeprefix(self.prefix), value, revision, f"etcd:{key}@{revision}"
        )

    @property
    def shared(self) -> bool:
        """Other processes see it, and it outlives this one."""
        return True

    def read(self, scope: Scope) -> Update:
        """
        Every key of ``scope`` at one revision (one round trip, pages aside).

        Identities come with the age of their heartbeat, from their lease's time to
        live (one more round trip for the whole fleet).
        """
        found = self.client.read_keys([self.prefix + k for k in prefixes(scope)])
        documents = [
            self._document(key, value, mod)
            for key, (value, mod) in sorted(found.kvs.items())
        ]
        leases = {
            index: found.leases[key]
            for index, d in enumerate(documents)
            if d.kind == "instances"
            and (key := f"{self.prefix}instances/{d.name}") in found.leases
        }
        if leases:
            ages = self.client.lease_ages(list(leases.values()))
            for index, lease in leases.items():
                documents[index] = dataclasses.replace(
                    documents[index], age=ages.get(lease)
                )
        return Update(
            tuple(documents),
            complete=True,
            revision=found.revision,
            store_id=found.cluster_id or None,
        )

    def _read_unless_stopped(
        self, scope: Scope, stop: threading.Event
    ) -> Update | None:
        """:meth:`read`, given up on at ``stop`` even if etcd hangs."""
        result: list[Update | Exception] = []

        def read() -> None:
            try:
                result.append(self.read(scope))
            except Exception as exc:  # noqa: BLE001 - raised again in the watcher
                result.append(exc)

        # A daemon thread: a read that hangs ends at the client's timeout, and never
        # keeps the process from exiting.
        thread = threading.Thread(target=read, name="cbcontrol-etcd-read", daemon=True)
        thread.start()
        while not stop.is_set():
            thread.join(POLL_S)
            if result:
                if isinstance(result[0], Exception):
                    raise result[0]
                return result[0]
        return None

    def watch(
        self, scope: Scope, stop: threading.Event
    ) -> Generator[Update, None, None]:
        """Follow ``scope``: complete first, then changes; failures as updates."""
        attempt = 0
        down_since: float | None = None
        keys = [self.prefix + k for k in prefixes(scope)]
        while not stop.is_set():
            watch: EtcdWatch | None = None
            try:
                watch = self.client.watch_keys(keys)
                early = self._await_created(watch, len(keys), stop)
                snapshot = (
                    None if early is None else self._read_unless_stopped(scope, stop)
                )
                if early is None or snapshot is None:
                    return
                if down_since is not None:
                    elapsed = time.monotonic() - down_since
                    logger.info("%s: reconnected after %.1fs", self.name, elapsed)
                    down_since = None
                yield snapshot
                attempt = 0
                pending = self._changes(early, snapshot.revision)
                if pending.documents:
                    yield pending
                yield from self._follow(watch, snapshot.revision, stop)
            except StoreError as exc:
                if down_since is None:
                    down_since = time.monotonic()
                    logger.warning(
                        "%s: %s; keeping the last good state", self.name, exc
                    )
                    yield Update(error=str(exc))
                else:
                    logger.debug("%s: still failing: %s", self.name, exc)
                # A fresh channel skips gRPC's reconnect delays on the next attempt.
                self.client.reset()
                delay = min(self._max_backoff, _MIN_BACKOFF_S * 2**attempt)
                attempt += 1
                stop.wait(delay * random.uniform(0.5, 1.0))  # noqa: S311 (jitter)
            finally:
                if watch is not None:
                    watch.cancel()

    def _await_created(
        self, watch: EtcdWatch, count: int, stop: threading.Event
    ) -> list[WatchUpdate] | None:
        """Wait until each watcher on the stream exists; keep events seen meanwhile."""
        created, seen = 0, []
        deadline = time.monotonic() + self._hang_timeout
        while created < count:
            if stop.is_set():
                return None
            update = watch.next(POLL_S)
            if update is None:
                if time.monotonic() > deadline:
                    raise self._hung(watch)
                continue
            created += update.created
            seen.append(update)
        return seen

    def _changes(self, updates: list[WatchUpdate], after: int) -> Update:
        """The events of ``updates`` newer than revision ``after``, as one update."""
        documents = [
            self._document(e.key, e.value, e.mod_revision)
            for u in updates
            for e in u.events
            if e.mod_revision > after
        ]
        revision = max((u.revision for u in updates), default=after)
        return Update(tuple(documents), complete=False, revision=max(revision, after))

    def _follow(
        self, watch: EtcdWatch, after: int, stop: threading.Event
    ) -> Iterator[Update]:
        """Deliver the watch's changes until stop or compaction; raise on failure."""
        heartbeat = self._hang_timeout / 3
        last_seen = last_probe = time.monotonic()
        while not stop.is_set():
            update = watch.next(POLL_S)
            now = time.monotonic()
            if update is None:
                if now - last_seen > self._hang_timeout:
                    raise self._hung(watch)
                if now - last_seen >= heartbeat and now - last_probe >= heartbeat:
                    watch.request_progress()
                    last_probe = now
                continue
            last_seen = now
            batch = [update]
            while (more := watch.next(0)) is not None:  # coalesce a burst
                batch.append(more)
            if any(item.compacted_revision for item in batch):
                logger.info(
                    "%s: history was compacted; reading it all again", self.name
                )
                return
            changes = self._changes(batch, after)
            if changes.documents:
                yield changes

    def _hung(self, watch: EtcdWatch) -> StoreUnavailableError:
        msg = (
            f"etcd at {watch.endpoint} is unavailable: no answer on the watch stream "
            f"within {self._hang_timeout:g}s (hung or partitioned)"
        )
        return StoreUnavailableError(msg, store=self.name)

    # -- desired state -----------------------------------------------------------

    def load_spec(self, name: str) -> SpecState:
        """
        The spec and its mod revision, in one round trip with the generation floor.

        The floor is the last generation of the history or of a live instance's
        record of this breaker.
        """
        key = f"{self.prefix}breakers/{name}"
        history = f"{self.prefix}{HISTORY}{name}/"
        records = f"{self.prefix}status/{name}/"
        found = self.client.read_keys([key, records], last=[history])
        floor = 0
        last = found.last.get(history)
        if last is not None:
            tail = last.rpartition("/")[2]
            floor = int(tail) if tail.isdigit() else 0
        for stored, (value, revision) in found.kvs.items():
            if stored.startswith(records):
                data = self._document(stored, value, revision).data or {}
                reported = data.get("gen")
                floor = max(floor, reported if type(reported) is int else 0)
        if key not in found.kvs:
            return SpecState(None, None, 0, floor)
        value, revision = found.kvs[key]
        document = self._document(key, value, revision)
        return SpecState(document.data, document.error, revision, floor)

    def commit_spec(
        self,
        name: str,
        document: Mapping[str, Any],
        expected: SpecState,
        record: Mapping[str, Any],
    ) -> bool:
        """Spec and history record in one transaction; old records pruned in it."""
        generation = int(record["generation"])
        spec_key = f"{self.prefix}breakers/{name}"
        record_key = self.prefix + history_key(name, generation)
        oldest_kept = max(0, generation - HISTORY_LIMIT + 1)
        prune = (
            f"{self.prefix}{HISTORY}{name}/",
            self.prefix + history_key(name, oldest_kept),
        )
        assert isinstance(expected.version, int)  # noqa: S101 - from load_spec
        return self.client.txn(
            f"write {spec_key!r}",
            unchanged={spec_key: expected.version, record_key: 0},
            puts={spec_key: encode(document), record_key: encode(record)},
            delete_ranges=[prune],
        )

    def put_preset(self, name: str, document: Mapping[str, Any]) -> bool:
        """Define or replace a preset."""
        key = f"{self.prefix}presets/{name}"
        value = encode(document)
        current = self.client.range(key, prefix=False).kvs.get(key)
        if current is not None and current[0] == value:
            return False
        self.client.put(key, value)
        return True

    def put_epoch(self, document: Mapping[str, Any], *, create: bool) -> bool:
        """Write the epoch key (with ``create``, only where there is none)."""
        key = self.prefix + EPOCH
        unchanged = {key: 0} if create else {}
        return self.client.txn(
            f"write {key!r}", unchanged=unchanged, puts={key: encode(document)}
        )

    def history(self, name: str | None, limit: int) -> list[dict[str, Any]]:
        """History records, within the limits; unreadable ones are skipped."""
        prefix = f"{self.prefix}{HISTORY}{name}/" if name else f"{self.prefix}{HISTORY}"
        found = self.client.range(prefix)
        records = []
        for key, (value, _) in sorted(found.kvs.items())[-limit if name else 0 :]:
            try:
                records.append(load_object(value, f'etcd key "{key}"'))
            except DocumentError:
                continue
        return records

    # -- reported state ----------------------------------------------------------

    def open_status(self, instance_id: str) -> _StatusWriter:
        """Keys on leases of this instance's own."""
        return _StatusWriter(self, instance_id)

    def delete_preset(self, name: str) -> bool:
        """Remove a preset."""
        return self.client.delete(f"{self.prefix}presets/{name}")

    def close(self) -> None:
        """Close the client (its watches and channel)."""
        self.client.close()
