"""One etcd watch on its own gRPC stream, read by a daemon thread."""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cbcontrol.exceptions import StoreError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

__all__ = ["EtcdWatch", "WatchEvent", "WatchUpdate"]


def _code(exc: Any) -> str:
    return str(exc.code().name) if hasattr(exc, "code") else "UNKNOWN"


def _details(exc: Any) -> str:
    return str(exc.details() or "") if hasattr(exc, "details") else repr(exc)


@dataclass(frozen=True, slots=True)
class WatchEvent:
    """
    One change seen by a watch: ``value`` is ``None`` when ``key`` was deleted.

    .. versionadded:: 0.1.0
    """

    key: str
    value: bytes | None
    mod_revision: int


@dataclass(frozen=True, slots=True)
class WatchUpdate:
    """
    One response of a watch stream, at etcd's ``revision``.

    ``events`` is empty for the creation and heartbeat answers. A non-zero
    ``compacted_revision`` means the history the watch needed is gone: the watch is
    over, re-read everything.

    .. versionadded:: 0.1.0
    """

    revision: int
    events: tuple[WatchEvent, ...] = ()
    compacted_revision: int = 0
    created: bool = False


class EtcdWatch:
    """
    One watch on its own gRPC stream, read by a daemon thread.

    Made by :meth:`EtcdClient.watch_prefix`. Once the stream fails, :meth:`next`
    raises the translated error.

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        conn: Any,
        metadata: tuple[tuple[str, str], ...],
        create_requests: Sequence[Any],
        rpc: Any,
        fail: Callable[[str, str], StoreError],
    ) -> None:
        self.endpoint = conn.endpoint
        self._rpc, self._fail = rpc, fail
        self._requests: queue.Queue[Any] = queue.Queue()
        for request in create_requests:
            self._requests.put(request)
        self._updates: queue.Queue[WatchUpdate | StoreError] = queue.Queue()
        self._cancelled = threading.Event()
        self._stream = conn.stubs["Watch"].Watch(self._outgoing(), metadata=metadata)
        self._reader = threading.Thread(
            target=self._read, name="cbcontrol-etcd-watch", daemon=True
        )
        self._reader.start()

    def _outgoing(self) -> Iterator[Any]:
        while (request := self._requests.get()) is not None:
            yield request

    def _read(self) -> None:
        failure = self._fail("UNAVAILABLE", "the server closed the watch stream")
        try:
            for response in self._stream:
                self._updates.put(self._convert(response))
        except Exception as exc:  # noqa: BLE001 (handed to the reader, not lost)
            failure = self._fail(_code(exc), _details(exc))
        if not self._cancelled.is_set():
            self._updates.put(failure)

    def _convert(self, response: Any) -> WatchUpdate | StoreError:
        revision = int(response.header.revision)
        if response.compact_revision:
            return WatchUpdate(revision, (), int(response.compact_revision))
        if response.canceled:
            return self._fail("CANCELLED_BY_SERVER", str(response.cancel_reason))
        events = tuple(
            WatchEvent(
                event.kv.key.decode("utf-8", "replace"),
                None if event.type == 1 else bytes(event.kv.value),  # 1: DELETE
                int(event.kv.mod_revision),
            )
            for event in response.events
        )
        return WatchUpdate(revision, events, created=bool(response.created))

    def next(self, timeout: float) -> WatchUpdate | None:
        """The next update, or ``None`` if none came within ``timeout`` seconds."""
        try:
            item = self._updates.get(timeout=timeout)
        except queue.Empty:
            return None
        if isinstance(item, StoreError):
            self._updates.put(item)  # every later call fails the same way
            raise item
        return item

    def request_progress(self) -> None:
        """Ask etcd for a heartbeat: an empty update proves it still answers."""
        progress = self._rpc.WatchProgressRequest()
        self._requests.put(self._rpc.WatchRequest(progress_request=progress))

    def cancel(self) -> None:
        """End the watch and its stream, and wait (bounded) for its reader to stop."""
        self._cancelled.set()
        self._requests.put(None)
        stream, self._stream = self._stream, None
        if stream is None:
            return
        stream.cancel()
        if self._reader is not threading.current_thread():
            self._reader.join(timeout=2.0)
