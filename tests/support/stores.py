"""Following a store backend's watch from a test: what it delivered, and when."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any, Self

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from types import TracebackType

    from cbcontrol.store import Document, Scope, StoreBackend, Update

__all__ = ["Follower", "wait_for"]


def wait_for(predicate: Callable[[], Any], timeout: float) -> Any:
    """Poll ``predicate`` until it returns something truthy, for at most ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            msg = f"condition not met within {timeout}s"
            raise AssertionError(msg)
        time.sleep(0.01)


class Follower:
    """
    Runs ``backend.watch(scope)`` in a thread and keeps what it delivered.

    ``updates`` holds every update with the time it arrived; ``docs`` the current
    documents by ``(kind, name, instance)``; ``error`` the store's latest error. On
    leaving the ``with`` block the watch must stop within 1.5 s.
    """

    def __init__(self, backend: StoreBackend, scope: Scope) -> None:
        self.backend, self.scope = backend, scope
        self.updates: list[tuple[float, Update]] = []
        self.docs: dict[tuple[str, str, str], Document] = {}
        self.error: str | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        for update in self.backend.watch(self.scope, self._stop):
            with self._lock:
                self.updates.append((time.perf_counter(), update))
                if update.error is not None:
                    self.error = update.error
                    continue
                self.error = None
                if update.complete:
                    self.docs.clear()
                for doc in update.documents:
                    if doc.data is None and doc.error is None:
                        self.docs.pop(doc.key, None)
                    else:
                        self.docs[doc.key] = doc

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=1.5)
        self.backend.close()
        if exc is None:
            assert not self._thread.is_alive(), "the watch did not stop within 1.5 s"

    def doc(self, kind: str, name: str, instance: str = "") -> Document | None:
        """The current document of a key."""
        with self._lock:
            return self.docs.get((kind, name, instance))

    def data(
        self, kind: str, name: str, instance: str = ""
    ) -> Mapping[str, Any] | None:
        """The current data of a key."""
        doc = self.doc(kind, name, instance)
        return None if doc is None else doc.data

    @property
    def started(self) -> bool:
        """Whether the first update came."""
        with self._lock:
            return bool(self.updates)
