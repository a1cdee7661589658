"""
The etcd live source: desired state under ``/cbcontrol/<namespace>/``, watched.

:class:`EtcdSource` supervises one prefix watch: on failure it reports the error in the
snapshot, re-reads the prefix with capped exponential backoff and watches again from
the revision it read; on compaction it re-reads everything; a heartbeat (watch progress
requests) detects a hung or partitioned etcd within ``hang_timeout``.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import replace
from typing import TYPE_CHECKING

from cbcontrol._etcd import (
    DEFAULT_ENDPOINTS,
    POLL_S,
    EtcdClient,
    EtcdWatch,
    Found,
    WatchUpdate,
)
from cbcontrol.config.sources._base import RawEntry, SourceSnapshot
from cbcontrol.exceptions import StoreError, StoreUnavailableError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from cbcontrol.config.sources._base import Kind

__all__ = ["EtcdSource"]

logger = logging.getLogger("cbcontrol.etcd")

_KINDS: dict[str, Kind] = {"breakers": "breakers", "presets": "presets"}
_JSON_TYPES = {
    list: "a JSON array",
    str: "a JSON string",
    bool: "a JSON boolean",
    int: "a JSON number",
    float: "a JSON number",
    type(None): "JSON null",
}
_EXCERPT_CHARS = 60
_MIN_BACKOFF_S = 0.1

_MIN_BACKOFF_S = 0.1

_EXCERPT_CHARS = 60
_MIN_BACKOFF_S = 0.1


def _identify(prefix: str, key: str) -> tuple[Kind, str] | None:
    """``(kind, name)`` for ``<prefix>breakers/<name>`` or ``presets/<name>``."""
    kind, _, name = key.removeprefix(prefix).partition("/")
    known = _KINDS.get(kind) if key.startswith(prefix) else None
    return None if known is None or not name or "/" in name else (known, name)


def _parse(
    key: str, value: bytes, mod_revision: int
) -> tuple[dict[str, object] | None, str | None]:
    """``(data, None)`` for a JSON object, else ``(None, message)``."""
    try:
        data: object = json.loads(value.decode("utf-8"))
    except UnicodeDecodeError as exc:
        got = f"bytes that are not UTF-8 ({exc.reason})"
    except json.JSONDecodeError as exc:
        got = f"invalid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
    else:
        if isinstance(data, dict):
            return data, None
        got = _JSON_TYPES[type(data)]
    text = value.decode("utf-8", "replace")
    if len(text) > _EXCERPT_CHARS:
        text = text[:_EXCERPT_CHARS] + "..."
    rule = f'etcd key "{key}" at revision {mod_revision} must be a JSON object'
    return None, f"{rule}, got {got}: {text!r}"


class EtcdSource:
    """
    Desired state from etcd: the JSON documents ``breakers/<name>`` and
    ``presets/<name>`` under ``/cbcontrol/<namespace>/``, watched live.

    A :class:`~cbcontrol.config.sources._base.LiveSource`: ``run`` keeps one prefix
    watch and delivers a complete snapshot after every change. While etcd is down,
    hung or refusing, the snapshot keeps the last good documents and carries the error;
    when etcd is back the prefix is re-read and watched from the revision read, so
    nothing is missed. A key that is not a JSON object keeps its last good data and
    reports the error on its entry.

    Args:
        endpoints: As for :class:`EtcdClient`, like ``user``, ``password``,
            ``tls``, ``ca_cert``, ``cert_key``, ``cert_cert`` and ``timeout``.
        namespace: The namespace (no ``/``).
        client_factory: Makes the client instead (the connection arguments are then
            unused); the source owns it and closes it.
        hang_timeout: Seconds without any answer on the watch stream after which etcd
            counts as hung; heartbeats are sent after a third of it.
        max_backoff: The cap of the delay between reconnection attempts, in seconds.

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        endpoints: Sequence[tuple[str, int]] = DEFAULT_ENDPOINTS,
        namespace: str = "default",
        *,
        user: str | None = None,
        password: str | None = None,
        ca_cert: str | None = None,
        cert_key: str | None = None,
        cert_cert: str | None = None,
        tls: bool = False,
        timeout: float = 2.5,
        client_factory: Callable[[], EtcdClient] | None = None,
        hang_timeout: float = 6.0,
        max_backoff: float = 2.0,
    ) -> None:
        if not namespace or "/" in namespace:
            msg = f"etcd namespace must be a name without '/', got {namespace!r}"
            raise ValueError(msg)
        self._client = (
            client_factory()
            if client_factory is not None
            else EtcdClient(
                endpoints,
                user=user,
                password=password,
                ca_cert=ca_cert,
                cert_key=cert_key,
                cert_cert=cert_cert,
                tls=tls,
                timeout=timeout,
            )
        )
        self.namespace, self.prefix = namespace, f"/cbcontrol/{namespace}/"
        self._hang_timeout, self._max_backoff = hang_timeout, max_backoff
        self._reader = ThreadPoolExecutor(1, thread_name_prefix="cbcontrol-etcd-read")
        self._lock = threading.Lock()  # run() and read() may run in different threads
        self._entries: dict[tuple[Kind, str], RawEntry] = {}
        self._revision = 0
        self._error: str | None = None
        self._delivered: SourceSnapshot | None = None
        self._attempt = 0  # consecutive failed connection attempts

    @property
    def name(self) -> str:
        """The display name, ``etcd://host:port/namespace``."""
        return f"{self._client.name}/{self.namespace}"

    @property
    def client(self) -> EtcdClient:
        """The client this source reads with."""
        return self._client

    def read(self) -> SourceSnapshot:
        """Read the whole namespace once; raise `StoreError` if etcd fails."""
        found = self._client.get_prefix(self.prefix)
        with self._lock:
            self._reload(found)
            self._delivered = self._snapshot()
            return self._delivered

    def run(
        self, on_change: Callable[[SourceSnapshot], None], stop: threading.Event
    ) -> None:
        """Watch the namespace, calling ``on_change`` after each change, until stop."""
        self._attempt = 0
        down_since: float | None = None
        while not stop.is_set():
            watch: EtcdWatch | None = None
            try:
                found = self._read_unless_stopped(stop)
                if found is None:
                    return
                with self._lock:
                    self._reload(found)
                if down_since is not None:
                    elapsed = time.monotonic() - down_since
                    logger.info("%s: reconnected after %.1fs", self.name, elapsed)
                    down_since = None
                self._deliver(on_change)
                # Only what this source reads: a watch on the whole namespace would
                # deliver every instance's status writes to every instance.
                watch = self._client.watch_prefixes(
                    [f"{self.prefix}breakers/", f"{self.prefix}presets/"], found[0] + 1
                )
                self._follow(watch, on_change, stop)
            except StoreError as exc:
                if down_since is None:
                    down_since = time.monotonic()
                    logger.warning(
                        "%s: %s; keeping the last good config", self.name, exc
                    )
                    with self._lock:
                        self._error = str(exc)
                    self._deliver(on_change)
                else:
                    logger.debug("%s: still failing: %s", self.name, exc)
                # A fresh channel skips gRPC's reconnect delays on the next attempt.
                self._client.reset()
                delay = min(self._max_backoff, _MIN_BACKOFF_S * 2**self._attempt)
                self._attempt += 1
                stop.wait(delay * random.uniform(0.5, 1.0))  # noqa: S311 (jitter)
            finally:
                if watch is not None:
                    watch.cancel()

    def close(self) -> None:
        """Close the client."""
        self._reader.shutdown(wait=False)
        self._client.close()

    def _read_unless_stopped(self, stop: threading.Event) -> Found | None:
        """``get_prefix``, given up on at ``stop`` even if etcd hangs."""
        future = self._reader.submit(self._client.get_prefix, self.prefix)
        while not stop.is_set():
            try:
                return future.result(POLL_S)
            except FutureTimeout:
                continue
        return None

    def _follow(
        self,
        watch: EtcdWatch,
        on_change: Callable[[SourceSnapshot], None],
        stop: threading.Event,
    ) -> None:
        """Apply the watch's updates until stop or compaction; raise on failure."""
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
            last_seen, self._attempt = now, 0  # the watch answers: backoff starts over
            batch = [update]
            while (more := watch.next(0)) is not None:  # coalesce a burst
                batch.append(more)
            if any(self._compacted(item) for item in batch):
                return
            with self._lock:
                for item in batch:
                    self._apply(item)
            self._deliver(on_change)

    def _compacted(self, update: WatchUpdate) -> bool:
        if update.compacted_revision:
            logger.info(
                "%s: history up to revision %d was compacted; re-reading everything",
                self.name,
                update.compacted_revision,
            )
        return bool(update.compacted_revision)

    def _hung(self, watch: EtcdWatch) -> StoreUnavailableError:
        msg = (
            f"etcd at {watch.endpoint} is unavailable: no answer on the watch stream "
            f"within {self._hang_timeout:g}s (hung or partitioned)"
        )
        return StoreUnavailableError(msg, store=self.name)

    def _entry(
        self, ident: tuple[Kind, str], key: str, value: bytes, rev: int
    ) -> RawEntry:
        """The entry for a new value of ``key``; callers hold the lock."""
        data, error = _parse(key, value, rev)
        previous = self._entries.get(ident)
        if error is not None and previous is not None:
            return replace(previous, error=error)  # keep the last good data
        return RawEntry(ident[0], ident[1], data, f"etcd:{key}@{rev}", error)

    def _reload(self, found: Found) -> None:
        entries: dict[tuple[Kind, str], RawEntry] = {}
        for key, (value, mod_revision) in sorted(found[1].items()):
            if (ident := _identify(self.prefix, key)) is not None:
                entries[ident] = self._entry(ident, key, value, mod_revision)
        self._entries, self._revision, self._error = entries, found[0], None

    def _apply(self, update: WatchUpdate) -> None:
        for event in update.events:
            if (ident := _identify(self.prefix, event.key)) is None:
                continue
            if event.value is None:
                self._entries.pop(ident, None)
            else:
                self._entries[ident] = self._entry(
                    ident, event.key, event.value, event.mod_revision
                )
        self._revision = max(self._revision, update.revision)

    def _snapshot(self) -> SourceSnapshot:
        # Equal revisions must mean equal snapshots, and an error changes a snapshot.
        suffix = "" if self._error is None else "+unavailable"
        revision = f"{self._revision}{suffix}"
        return SourceSnapshot(self.name, revision, dict(self._entries), self._error)

    def _deliver(self, on_change: Callable[[SourceSnapshot], None]) -> None:
        with self._lock:
            snapshot, last = self._snapshot(), self._delivered
            if last and (last.entries, last.error) == (
                snapshot.entries,
                snapshot.error,
            ):
                return
            self._delivered = snapshot
        try:
            on_change(snapshot)
        except Exception:
            logger.exception("%s: on_change failed", self.name)
