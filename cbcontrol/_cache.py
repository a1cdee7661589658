"""
Fail-static: each process keeps its last good desired state on local disk.

The control plane saves the desired state in force (every spec and preset document,
and the store's baseline: its history's identity, the highest revision seen, the
epochs seen) to ``<cache dir>/desired-<hash of the store>.json``, by writing a
temporary file and renaming it over the old one, at most once a second. A process
that starts while the store is unreachable or hung comes up from it, overrides and
retunes included, and catches up when the store answers; the baseline tells a store
whose history went backwards (``docs/store.md``).

The directory is ``CBCONTROL_CACHE_DIR``, else ``$XDG_CACHE_HOME/cbcontrol``, else
``~/.cache/cbcontrol``. A directory that is missing and cannot be made, or that is
read-only, costs a warning, never the application. The file is read within the
limits of :mod:`cbcontrol._limits`, like anything else from outside.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from cbcontrol._atomic import write_atomically
from cbcontrol._limits import DocumentError, load_object
from cbcontrol._names import is_name
from cbcontrol.store._status import canonical, digest

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = ["Cached", "DesiredCache", "Snapshot", "cache_dir", "entry"]

logger = logging.getLogger("cbcontrol.cache")

FORMAT: Final = 1
MAX_CACHE_BYTES: Final = 64 * 1024 * 1024
_MIN_INTERVAL_S: Final = 1.0
_KINDS: Final = frozenset({"breakers", "presets", "epoch"})


def cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Where the cache lives (see the module documentation)."""
    env = os.environ if environ is None else environ
    given = env.get("CBCONTROL_CACHE_DIR")
    if given:
        return Path(given)
    xdg = env.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path(env.get("HOME") or Path.home()) / ".cache"
    return base / "cbcontrol"


def entry(kind: str, name: str, encoded: bytes, origin: str, version: int) -> bytes:
    """One document as the cache file holds it (``encoded``: its canonical JSON)."""
    head = json.dumps(
        {"kind": kind, "name": name, "origin": origin, "version": version}
    )
    return head[:-1].encode() + b',"data":' + encoded + b"}"


@dataclass(frozen=True, slots=True)
class Cached:
    """
    A desired state as saved.

    Attributes:
        documents: ``(kind, name, data, origin, version)`` of each document.
        baseline: The store's baseline (``store_id``, ``revision``, ``epoch``,
            ``epochs``).
        saved_at: When it was saved (UTC text).
    """

    documents: tuple[tuple[str, str, dict[str, Any], str, int], ...]
    baseline: dict[str, Any] = field(default_factory=dict)
    saved_at: str = ""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """
    A desired state to save.

    Attributes:
        entries: Each document, made by :func:`entry`.
        baseline: The store's baseline.
        saved_at: When (UTC text).
    """

    entries: list[bytes]
    baseline: dict[str, Any]
    saved_at: str


class DesiredCache:
    """
    The cache file of one store, and the thread that writes it.

    Args:
        directory: The cache directory.
        store: The store's display name (no credentials): it names the file.
    """

    def __init__(self, directory: Path, store: str) -> None:
        self.path = directory / f"desired-{digest(store)}.json"
        self._store = store
        self._lock = threading.Condition()
        self._pending: Callable[[], Snapshot] | None = None
        self._stop = False
        self._warned = False
        self._thread: threading.Thread | None = None

    def load(self) -> Cached | None:
        """The saved state, or None (missing, unreadable or invalid: warned)."""
        try:
            with self.path.open("rb") as file:
                raw = file.read(MAX_CACHE_BYTES + 1)
        except FileNotFoundError:
            return None
        except OSError as exc:
            logger.warning("cannot read the config cache %s: %s", self.path, exc)
            return None
        try:
            body = load_object(
                raw, f'cache file "{self.path}"', max_bytes=MAX_CACHE_BYTES
            )
            return self._parse(body)
        except (DocumentError, KeyError, TypeError, ValueError) as exc:
            logger.warning("ignoring the config cache %s: %s", self.path, exc)
            return None

    def _parse(self, body: Mapping[str, Any]) -> Cached | None:
        if body.get("format") != FORMAT or body.get("store") != self._store:
            return None
        documents = []
        for item in body["documents"]:
            kind, name, data = item["kind"], item["name"], item["data"]
            if kind not in _KINDS or not isinstance(data, dict):
                continue
            if kind != "epoch" and not is_name(name):
                continue
            origin, version = str(item.get("origin", "cache")), item.get("version", 0)
            documents.append((kind, name, data, origin, int(version)))
        baseline = body.get("baseline")
        return Cached(
            tuple(documents),
            dict(baseline) if isinstance(baseline, dict) else {},
            str(body.get("saved_at", "")),
        )

    def save(self, snapshot: Callable[[], Snapshot]) -> None:
        """Save ``snapshot()`` soon (at most once a second); returns at once."""
        with self._lock:
            self._pending = snapshot
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="cbcontrol-cache", daemon=True
                )
                self._thread.start()
            self._lock.notify_all()

    def close(self) -> None:
        """Write what is pending, then stop the writer."""
        with self._lock:
            self._stop = True
            self._lock.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout=5.0)

    def _run(self) -> None:
        last = 0.0
        while True:
            with self._lock:
                self._lock.wait_for(lambda: self._pending is not None or self._stop)
                if self._pending is None:
                    return
                wait = last + _MIN_INTERVAL_S - time.monotonic()
                if wait > 0 and not self._stop:
                    self._lock.wait(wait)  # coalesce: later changes join this save
                snapshot, self._pending = self._pending, None
            try:
                self._write(snapshot())
            except Exception:  # the writer must outlive its own failures
                logger.exception("saving the config cache %s failed", self.path)
            last = time.monotonic()

    def _write(self, cached: Snapshot) -> None:
        parts = [
            b'{"format":%d,"store":' % FORMAT,
            json.dumps(self._store).encode(),
            b',"saved_at":',
            json.dumps(cached.saved_at).encode(),
            b',"baseline":',
            canonical(cached.baseline),
            b',"documents":[',
            b",".join(cached.entries),
            b"]}",
        ]
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # No fsync: a cache a crash loses is rebuilt from the store it mirrors.
            write_atomically(self.path, b"".join(parts), 0o600, sync=False)
        except OSError as exc:
            if not self._warned:
                logger.warning(
                    "cannot save the config cache in %s (%s): a restart while the "
                    "store is unreachable will start from defaults; set "
                    "CBCONTROL_CACHE_DIR to a writable directory",
                    self.path.parent,
                    exc.strerror or exc,
                )
                self._warned = True
            return
        if self._warned:
            logger.info("the config cache %s is saved again", self.path)
            self._warned = False
