"""
Operator access to a store: read and change desired state, read reported state.

This is what ``cbctl`` is built on, and what any other tool can use:
``store = cbcontrol.open_store("etcd://127.0.0.1:2379/prod")``. It works the same over
every backend (:class:`~cbcontrol.store.StoreBackend`).

Writes are safe against concurrent writers (a compare-and-swap, retried on conflict)
and against transient store failures such as an etcd leader change (retried with
backoff until the caller's timeout). Every write records actor, time and reason in the
spec, and writes the history record *with* the spec, never over an existing one.
Generations only grow per breaker, whatever happened to the key: a new generation is
above both the stored document's and every one the history still knows. A write is
validated before anything is written, including against the store's presets, so a
value that every instance would reject never reaches them.

An instance acknowledges the exact document it applied (its generation and digest):
:meth:`ControlStore.wait_applied` counts an instance once it reports this document, or
a later generation.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any, NamedTuple, Self

from cbcontrol._limits import MAX_TEXT_CHARS, clip
from cbcontrol._names import check_name
from cbcontrol.exceptions import (
    ConfigError,
    StoreConflictError,
    StoreError,
    StoreUnavailableError,
)
from cbcontrol.store._port import Scope
from cbcontrol.store._status import digest, instance_document

if TYPE_CHECKING:
    from collections.abc import Callable, Generator, Mapping
    from pathlib import Path

    from cbcontrol._labels import Selector
    from cbcontrol.config._models import BreakerSpec, InstanceStatus, PresetSpec
    from cbcontrol.store._port import Document, SpecState, StoreBackend, Update
    from cbcontrol.store._records import Ack, HistoryRecord, WriteResult
    from cbcontrol.store._url import StoreURL

# The config layer (pydantic) is imported where a document is validated, not here:
# reading a store and showing what it holds (``cbctl get``) must not pay for models
# it only needs when something is invalid.

__all__ = [
    "ControlStore",
    "StoreView",
    "StoredSpec",
    "check_spec",
    "flatten",
    "open_store",
]

logger = logging.getLogger("cbcontrol.store")
logger.addHandler(logging.NullHandler())

METADATA = ("generation", "updated_by", "updated_at", "reason")
"""Spec keys that cbctl maintains; they are not desired state themselves."""
_CAS_ATTEMPTS = 50
_RETRY_S = (0.05, 0.1, 0.2, 0.4, 0.8)
_WATCH_FRAME_S = 0.25
_REFRESH_S = 2.0


@dataclass(frozen=True)
class StoredSpec:
    """
    A breaker's desired state as stored, validated when first asked.

    Validating loads pydantic; reading the document as stored does not.

    Attributes:
        name: The breaker.
        data: The document as stored (plain JSON types); ``{}`` if unreadable.
        origin: Its provenance (``etcd:/cbcontrol/ns/breakers/x@42``, ``file:...``).
        read_error: Why the stored value could not be read (garbage, too big).

    .. versionchanged:: 0.2.0
       ``read_error``; :attr:`digest`.
    """

    name: str
    data: Mapping[str, Any]
    origin: str
    read_error: str | None = None

    @cached_property
    def _validated(self) -> tuple[BreakerSpec, str | None]:
        from cbcontrol.config._builder import validate_spec
        from cbcontrol.config._models import BreakerSpec

        if self.read_error is not None:
            return BreakerSpec.model_validate({}), self.read_error
        try:
            return validate_spec(self.name, self.data, self.origin), None
        except ConfigError as exc:
            return BreakerSpec.model_validate({}), clip(str(exc))

    @property
    def spec(self) -> BreakerSpec:
        """The validated document (empty when it is invalid)."""
        return self._validated[0]

    @property
    def error(self) -> str | None:
        """Why the stored document is invalid, if it is (validates it: pydantic)."""
        if self.read_error is not None:
            return self.read_error
        return self._validated[1]

    @property
    def generation(self) -> int:
        """The generation cbctl wrote into it (0 for a document written by hand)."""
        value = self.data.get("generation")
        return value if type(value) is int else 0

    @cached_property
    def digest(self) -> str | None:
        """The digest instances report once they applied exactly this document."""
        return None if self.read_error is not None else digest(dict(self.data))


@dataclass(frozen=True)
class StoreView:
    """
    Desired and reported state of a store, read at once.

    Attributes:
        url: The store, without credentials.
        specs: The breaker specs, by name.
        presets: The store's own presets as ``{name: (document, origin)}`` (as
            stored; see :meth:`ControlStore.store_presets` for validated ones).
        instances: The live instances, as ``InstanceStatus`` JSON documents, oldest
            first; a breaker's effective config is derived (``docs/store.md``).
        invalid: Keys outside the layout or the name grammar, with why.
        epoch: The store's epoch document, if any.
        stale: When the data may be out of date: why (the store is failing or hung).
    """

    url: str
    specs: dict[str, StoredSpec]
    presets: dict[str, tuple[Mapping[str, Any], str]]
    instances: list[dict[str, Any]]
    invalid: dict[str, str] = field(default_factory=dict)
    epoch: Mapping[str, Any] | None = None
    stale: str | None = None

    def names(self) -> list[str]:
        """Every breaker with a spec or on a live instance."""
        found = set(self.specs)
        for status in self.instances:
            found.update(status["breakers"])
        return sorted(found)


class _Tracked:
    """Documents of a scope, kept up to date from a backend's updates."""

    def __init__(self) -> None:
        self.docs: dict[tuple[str, str, str], Document] = {}
        self.started = False  # an update came
        self.taken = 0  # updates taken
        self.stale: str | None = "connecting to the store"  # the store's last error

    def take(self, update: Update) -> None:
        self.started = True
        self.taken += 1
        if update.error is not None:
            self.stale = update.error
            return
        if update.complete:
            self.stale = None
            self.docs.clear()
        for doc in update.documents:
            if doc.data is None and doc.error is None:
                self.docs.pop(doc.key, None)
            else:
                self.docs[doc.key] = doc


class ControlStore:
    """
    Desired and reported state of one store, for operators and tools.

    Open it with :func:`open_store`. Methods raise
    :class:`~cbcontrol.exceptions.StoreError` subclasses when the store fails and
    :class:`~cbcontrol.exceptions.ConfigError` when a change is invalid.

    Args:
        backend: The store (the control store owns it and closes it).
        url: Its URL, when opened from one.

    .. versionadded:: 0.1.0
    .. versionchanged:: 0.2.0
       One class over any :class:`~cbcontrol.store.StoreBackend`.
    """

    def __init__(self, backend: StoreBackend, url: StoreURL | None = None) -> None:
        self.backend = backend
        self.url: object = url if url is not None else backend.name
        self._epoch_checked = False

    # -- desired state ---------------------------------------------------------------

    @staticmethod
    def _spec(document: Document) -> StoredSpec:
        return StoredSpec(
            document.name, dict(document.data or {}), document.origin, document.error
        )

    def breakers(self) -> dict[str, StoredSpec]:
        """Every stored breaker spec, by name."""
        update = self.backend.read(Scope.DESIRED)
        return {d.name: self._spec(d) for d in update.documents if d.kind == "breakers"}

    def get(self, name: str) -> StoredSpec | None:
        """One breaker's stored spec, or None."""
        update = self.backend.read(Scope(desired=True, breaker=name, whole=False))
        found = [d for d in update.documents if (d.kind, d.name) == ("breakers", name)]
        return self._spec(found[0]) if found else None

    def presets(self) -> dict[str, PresetSpec]:
        """Presets in force: the built-in ones extended by the store's."""
        from cbcontrol.config._merge import builtin_presets, merge_presets
        from cbcontrol.config._models import PresetSpec

        store = self.store_presets()
        table = merge_presets(
            builtin_presets(),
            {n: (p.config_values(), "store") for n, p in store.items()},
        )
        return {
            name: PresetSpec.model_validate(dict(layer.values))
            for name, layer in table.items()
        }

    def store_presets(self) -> dict[str, PresetSpec]:
        """The presets defined in the store itself (invalid ones left out)."""
        from cbcontrol.config._builder import validate_preset

        presets = {}
        for document in self.backend.read(Scope.PRESETS).documents:
            if document.kind == "presets" and document.data is not None:
                with contextlib.suppress(ConfigError):
                    presets[document.name] = validate_preset(
                        document.name, document.data, document.origin
                    )
        return presets

    def update(
        self,
        name: str,
        change: Callable[[dict[str, Any]], dict[str, Any]],
        *,
        actor: str,
        reason: str | None = None,
        action: str = "set",
        timeout: float = 10.0,
        selector: str | None = None,
        dry_run: bool = False,
    ) -> WriteResult:
        """
        Change one breaker's spec safely against concurrent writers and failures.

        Args:
            name: The breaker.
            change: Gets a copy of the stored document (``{}`` if none, or if it is
                unreadable) and returns the new one; metadata keys are managed here.
            actor: Who makes the change.
            reason: Why.
            action: What kind of change, for the history.
            timeout: Seconds to keep retrying while the store is unavailable (an
                etcd leader change, a restart).
            selector: The instances a targeted change is for, for the history.
            dry_run: Validate and say what would change, write nothing (the result's
                generation is the one the write would get; its digest is None).

        Raises:
            ConfigError: The name, the reason or the new document is invalid, alone
                or merged with presets.
            StoreUnavailableError: The store stayed unavailable for ``timeout``.
            StoreConflictError: Other writers won every attempt.
        """
        check_name("breaker", name, "ControlStore.update()")
        _check_text("reason", reason)
        _check_text("actor", actor)
        deadline = time.monotonic() + timeout
        presets = self._retrying(self.store_presets, deadline)
        if not dry_run:
            self._retrying(lambda: self._ensure_epoch(actor), deadline)
        attempt: _Attempt | None = None
        conflicts = 0
        sent = 0.0
        while True:
            try:
                state = self.backend.load_spec(name)
                if attempt is not None and state.data == attempt.document:
                    # Our write landed though its answer was lost (a leader change).
                    return self._result(name, attempt, sent)
                attempt = _Attempt.make(
                    name,
                    state,
                    change,
                    actor=actor,
                    reason=reason,
                    action=action,
                    selector=selector,
                )
                if not attempt.changes and state.error is None:
                    from cbcontrol.store._records import WriteResult

                    generation = _int((state.data or {}).get("generation"))
                    return WriteResult(name, generation, changed=False)
                self._validate(name, attempt.document, presets)
                if dry_run:
                    from cbcontrol.store._records import WriteResult

                    generation = attempt.record["generation"]
                    return WriteResult(
                        name, generation, changed=True, changes=attempt.changes
                    )
                sent = time.monotonic()
                if self.backend.commit_spec(
                    name, attempt.document, state, attempt.record
                ):
                    return self._result(name, attempt, sent)
                attempt = None
                conflicts += 1
                if conflicts >= _CAS_ATTEMPTS:
                    msg = f"gave up writing breaker {name} after {conflicts} conflicts"
                    raise StoreConflictError(msg, store=str(self.url))
                time.sleep(0.001 * conflicts)  # another writer won; read again
            except StoreUnavailableError as exc:
                if not self._pause(deadline, conflicts):
                    raise
                logger.info("writing breaker %s: %s; retrying", name, exc)
                conflicts += 1

    @staticmethod
    def _result(name: str, attempt: _Attempt, sent: float) -> WriteResult:
        from cbcontrol.store._records import WriteResult

        return WriteResult(
            name,
            int(attempt.document["generation"]),
            changed=True,
            changes=dict(attempt.changes),
            digest=digest(dict(attempt.document)),
            sent_at=sent,
        )

    @staticmethod
    def _pause(deadline: float, attempt: int) -> bool:
        """Wait before retrying a failed call; False once the deadline passed."""
        wait = _RETRY_S[min(attempt, len(_RETRY_S) - 1)]
        if time.monotonic() + wait > deadline:
            return False
        time.sleep(wait)
        return True

    def _retrying(self, call: Callable[[], Any], deadline: float) -> Any:
        attempt = 0
        while True:
            try:
                return call()
            except StoreUnavailableError as exc:
                if not self._pause(deadline, attempt):
                    raise
                logger.info("%s; retrying", exc)
                attempt += 1

    def _ensure_epoch(self, actor: str) -> None:
        """Give the store an epoch if it has none (tells a wipe from a new store)."""
        if self._epoch_checked:
            return
        self.backend.put_epoch(
            {"id": os.urandom(8).hex(), "at": _now(), "by": actor, "accepted": False},
            create=True,
        )
        self._epoch_checked = True

    def accept_history(self, *, actor: str, reason: str | None = None) -> str:
        """
        Accept the store as it is after its history went backwards (wiped, restored).

        Writes a new, accepted epoch: every instance holding its desired state because
        the history went backwards applies the store's state again.

        Returns:
            The new epoch's id.

        Raises:
            StoreError: The store keeps no epoch (a file has no history to lose).
        """
        _check_text("reason", reason)
        epoch = os.urandom(8).hex()
        document: dict[str, Any] = {
            "id": epoch,
            "at": _now(),
            "by": actor,
            "accepted": True,
        }
        if reason is not None:
            document["reason"] = reason
        if not self.backend.put_epoch(document, create=False):
            msg = f"{self.backend.name} keeps no history epoch: nothing to accept"
            raise StoreError(msg, store=self.backend.name)
        return epoch

    def put_preset(self, name: str, values: Mapping[str, Any]) -> bool:
        """
        Define or replace a preset; returns whether anything changed.

        Raises:
            ConfigError: The name or the preset is invalid.
        """
        from cbcontrol.config._builder import validate_preset

        check_name("preset", name, "ControlStore.put_preset()")
        validate_preset(name, values, f"preset {name}")
        return self.backend.put_preset(name, dict(values))

    # -- reported state --------------------------------------------------------------

    def view(self, breaker: str | None = None) -> StoreView:
        """
        Specs, presets and live instances, read at once (of one breaker, or all).

        With ``breaker``, only that breaker's spec and records are read (presets and
        instances' identities are always read whole).
        """
        scope = Scope(desired=True, status=True, breaker=breaker)
        tracked = _Tracked()
        tracked.take(self.backend.read(scope))
        return self._view(tracked)

    def _view(self, tracked: _Tracked, stale: str | None = None) -> StoreView:
        specs: dict[str, StoredSpec] = {}
        presets: dict[str, tuple[Mapping[str, Any], str]] = {}
        identities: dict[str, Document] = {}
        records: dict[str, dict[str, Mapping[str, Any]]] = {}
        invalid: dict[str, str] = {}
        epoch = None
        for (kind, name, instance), doc in tracked.docs.items():
            if kind == "breakers":
                specs[name] = self._spec(doc)
            elif kind == "presets" and doc.data is not None:
                presets[name] = (doc.data, doc.origin)
            elif kind == "epoch":
                epoch = doc.data
            elif kind == "instances" and doc.data is not None:
                identities[name] = doc
            elif kind == "status" and doc.data is not None:
                records.setdefault(instance, {})[name] = doc.data
            elif doc.error is not None:
                invalid[f"{kind}/{name}"] = doc.error
        spec_index = {
            n: (None if s.read_error else s.data, s.origin, s.digest)
            for n, s in specs.items()
        }
        now = time.time()
        instances = [
            instance_document(
                identity.data or {},
                records.get(instance_id, {}),
                specs=spec_index,
                layer=self.backend.layer,
                store_presets=presets,
                now=now,
                age=identity.age,
            )
            for instance_id, identity in identities.items()
        ]
        instances.sort(key=_started)
        return StoreView(
            str(self.url), specs, presets, instances, invalid, epoch, stale
        )

    def instance_documents(self, breaker: str | None = None) -> list[dict[str, Any]]:
        """
        Live instances' statuses as JSON documents, oldest first.

        Each has the shape of ``InstanceStatus.model_dump(mode="json")``, with the
        effective config of each breaker derived from the spec it applied
        (``docs/store.md``); with ``breaker``, only that breaker is read.
        """
        return self.view(breaker).instances

    def instances(self) -> list[InstanceStatus]:
        """Live instances, oldest first, as validated models (invalid ones left out)."""
        from pydantic import ValidationError

        from cbcontrol.config._models import InstanceStatus

        statuses = []
        for document in self.instance_documents():
            with contextlib.suppress(ValidationError):
                statuses.append(InstanceStatus.model_validate(document))
        return statuses

    def wait_applied(
        self,
        name: str,
        generation: int,
        timeout: float,
        progress: Callable[[Ack], object] | None = None,
        *,
        digest: str | None = None,
        selector: str | None = None,
    ) -> Ack:
        """
        Wait until every live instance that has breaker ``name`` applied a document.

        With ``digest``, an instance counts once it reports exactly that document, or
        the stored spec that superseded it (a later write, of a higher generation):
        an instance that is stale, frozen or reports a generation the store does not
        hold is never counted. Without ``digest``, once it reports ``generation`` or
        a later one. With ``selector`` (a targeted change), only the instances whose
        labels it matches are waited for and counted (``Ack.live`` counts them all).
        Returns the last :class:`Ack` seen, complete or not when ``timeout`` passed.

        Raises:
            ConfigError: ``selector`` is malformed.

        .. versionchanged:: 0.3.0
           ``selector``.
        """
        from cbcontrol._labels import Selector

        chosen = None if selector is None else Selector.parse(selector)
        start = time.monotonic()
        stop = threading.Event()
        timer = threading.Timer(max(0.0, timeout), stop.set)
        timer.daemon = True
        timer.start()
        waiting = _Waiting(name, generation, digest, chosen)
        ack = waiting.ack(start)
        # A selector needs the instances' identities (their labels) too.
        scope = Scope(desired=True, status=True, breaker=name, whole=bool(chosen))
        watch = self.backend.watch(scope, stop)
        try:
            for update in watch:
                if update.error is None:
                    waiting.take(update)
                    ack = waiting.ack(start)
                    if progress is not None:
                        progress(ack)
                    if ack.complete:
                        break
        finally:
            timer.cancel()
            stop.set()
            watch.close()
        return ack if ack.complete else waiting.ack(start)

    def count_applied(
        self,
        name: str,
        generation: int,
        *,
        digest: str | None = None,
        selector: str | None = None,
    ) -> Ack:
        """
        How far a write is applied now: one read, counted as :meth:`wait_applied`
        counts (the same instances, the same rule), without waiting.

        Raises:
            ConfigError: ``selector`` is malformed.
            StoreError: The store failed.

        .. versionadded:: 0.3.0
        """
        from cbcontrol._labels import Selector

        chosen = None if selector is None else Selector.parse(selector)
        waiting = _Waiting(name, generation, digest, chosen)
        scope = Scope(desired=True, status=True, breaker=name, whole=bool(chosen))
        start = time.monotonic()
        waiting.take(self.backend.read(scope))
        return waiting.ack(start)

    def history(self, name: str | None = None, limit: int = 50) -> list[HistoryRecord]:
        """The latest changes, oldest first (of one breaker, or all)."""
        from cbcontrol.store._records import HistoryRecord

        records = []
        for data in self.backend.history(name, limit):
            with contextlib.suppress(KeyError, TypeError, ValueError):
                records.append(HistoryRecord.from_json(data))
        records.sort(key=lambda r: (r.at, r.generation))
        return records[-limit:]

    def watch(self, stop: threading.Event) -> Generator[StoreView, None, None]:
        """
        Views of the store as it changes (the first at once), until ``stop`` is set.

        A frame comes at most every quarter second, and every two seconds at least
        (instances' heartbeat ages are read again then: a late or lost instance
        shows without an event). While the store fails or hangs, the frame's
        ``stale`` says so, and its data is the last known. Close the generator (or
        exhaust it) to release the watch.
        """
        changes: queue.Queue[Update | None] = queue.Queue()

        def follow() -> None:
            try:
                for update in self.backend.watch(Scope.ALL, stop):
                    changes.put(update)
            finally:
                changes.put(None)

        thread = threading.Thread(target=follow, name="cbctl-watch", daemon=True)
        thread.start()
        tracked = _Tracked()
        refresh_at = time.monotonic() + _REFRESH_S
        drawn = -1
        try:
            while not stop.is_set():
                if not _drain(changes, tracked, _WATCH_FRAME_S):
                    return  # the backend's watch ended
                due = tracked.started and time.monotonic() >= refresh_at
                if tracked.taken == drawn and not due:
                    continue
                if due:
                    if tracked.stale is None:
                        self._refresh_ages(tracked)
                    refresh_at = time.monotonic() + _REFRESH_S
                drawn = tracked.taken
                yield self._view(tracked, tracked.stale)
                stop.wait(_WATCH_FRAME_S)
        finally:
            stop.set()
            thread.join(timeout=5.0)

    def _refresh_ages(self, tracked: _Tracked) -> None:
        """Read the instances' identities again: their heartbeat ages moved on."""
        try:
            update = self.backend.read(Scope(status=True, records=False))
        except StoreError as exc:
            logger.debug("reading heartbeat ages failed: %s", exc)
            return
        for key in [k for k in tracked.docs if k[0] == "instances"]:
            del tracked.docs[key]
        for doc in update.documents:
            if doc.kind == "instances":
                tracked.docs[doc.key] = doc

    def close(self) -> None:
        """Release the store's connections."""
        self.backend.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- helpers ---------------------------------------------------------------------

    def _validate(
        self, name: str, data: Mapping[str, Any], presets: Mapping[str, PresetSpec]
    ) -> None:
        check_spec(name, data, presets, self.backend.layer)

    def delete_preset(self, name: str) -> bool:
        """
        Remove a preset from the store; returns whether there was one.

        .. versionadded:: 0.3.0
        """
        check_name("preset", name, "ControlStore.delete_preset()")
        return self.backend.delete_preset(name)


def check_spec(
    name: str,
    data: Mapping[str, Any],
    presets: Mapping[str, PresetSpec],
    layer: str = "etcd",
    origin: str | None = None,
) -> None:
    """
    Validate a spec as instances will: alone, then resolved over the presets.

    ``presets`` are the store's (the built-in ones are under them). Each scope is
    resolved over the unscoped fields on its own (which scopes an instance combines
    depends on its labels, unknown here).

    Raises:
        ConfigError: The first error, naming field, value, source and rule.
    """
    from cbcontrol.config._builder import layer_from_spec, scopes_of, validate_spec
    from cbcontrol.config._merge import (
        builtin_presets,
        merge_presets,
        resolve,
        scoped_origin,
        spec_layer,
    )

    origin = origin or f"{layer}:breakers/{name}"
    spec = validate_spec(name, data, origin)
    table = merge_presets(
        builtin_presets(),
        {n: (p.config_values(), "store") for n, p in presets.items()},
    )
    unscoped = layer_from_spec(layer, spec, origin)
    resolve(name, [unscoped], table)
    for scope in scopes_of(spec):
        where = scoped_origin(origin, str(scope.selector))
        resolve(
            name,
            [unscoped, spec_layer(layer, scope.values, scope.preset, where)],
            table,
        )


def open_store(
    url: str | StoreBackend | None = None,
    *,
    namespace: str | None = None,
    environ: Mapping[str, str] | None = None,
    timeout: float = 2.5,
    create: bool = False,
) -> ControlStore:
    """
    Open a store for reading and changing desired state (what ``cbctl`` uses).

    Args:
        url: As for :func:`cbcontrol.connect` (a URL, or a backend); default
            ``CBCONTROL_STORE``, else ``./cbcontrol.yaml``.
        namespace: Overrides the URL's namespace (etcd only: a file store has none).
        environ: Environment to read instead of :data:`os.environ`.
        timeout: Seconds each etcd call may take.
        create: Create a file store that does not exist yet (``version: 1``). An
            operator's tool otherwise refuses a file store that neither exists nor
            has instances reporting to it: a mistyped path would show an empty
            fleet, and a write would create a new file.

    Raises:
        ConfigError: The URL is invalid, names the memory store (which only exists
            inside one process), or ``namespace`` is given for a file store.
        StoreError: The file store does not exist and ``create`` is False.

    .. versionadded:: 0.1.0
    .. versionchanged:: 0.3.0
       ``create``; ``namespace`` is refused for a file store.
    """
    from cbcontrol.store._open import open_backend
    from cbcontrol.store._url import parse_store_url

    if url is not None and not isinstance(url, str):
        return ControlStore(url)
    env = os.environ if environ is None else environ
    store = parse_store_url(url, environ=env)
    if namespace is not None:
        if store.scheme == "file":
            rule = (
                "applies to etcd stores only: a file store has no namespaces (use "
                "another file instead)"
            )
            raise ConfigError(rule, field="namespace", value=namespace, source="cbctl")
        store = parse_store_url(url, environ=env, namespace=namespace)
    backend = open_backend(store, environ=env, timeout=timeout)
    if backend is None:
        rule = (
            "names no shared store; set CBCONTROL_STORE or pass --store "
            "(file://PATH or etcd://HOST:PORT/NAMESPACE)"
        )
        raise ConfigError(rule, field="store", value=str(store), source="cbctl")
    if store.path is not None:
        _check_file(store.path, env, create=create)
    return ControlStore(backend, store)


def _check_file(path: Path, environ: Mapping[str, str], *, create: bool) -> None:
    """
    A file store must exist, unless asked to create it (its directory must).

    It exists when its file does, or when instances report to it (its status
    directory exists): they run on it, and its first write creates the file.
    """
    from cbcontrol.store._file import status_dir

    if path.exists() or status_dir(path, environ).is_dir():
        return
    if not create:
        msg = (
            f'store file "{path}" does not exist: check the path (--store, '
            "CBCONTROL_STORE); to start a new store there, write with --create"
        )
        raise StoreError(msg, store=f"file:{path}")
    try:
        with path.open("x", encoding="utf-8") as file:
            file.write("version: 1\n")
    except FileExistsError:
        return
    except OSError as exc:
        msg = f'cannot create store file "{path}": {exc.strerror or exc}'
        raise StoreError(msg, store=f"file:{path}") from exc


# -- helpers -------------------------------------------------------------------------


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _int(value: object) -> int:
    return value if type(value) is int else 0


def _check_text(what: str, text: str | None) -> None:
    if text is not None and len(text) > MAX_TEXT_CHARS:
        rule = f"is {len(text)} characters, over the limit of {MAX_TEXT_CHARS}"
        raise ConfigError(rule, field=what, value=text[:60] + "...", source="cbctl")


def flatten(document: Mapping[str, Any]) -> dict[str, Any]:
    """
    A spec with each scope's keys as ``key[selector]``: one level, for diffs.

    ``{"scopes": [{"selector": "zone=eu-1", "max_failures": 2}]}`` becomes
    ``{"max_failures[zone=eu-1]": 2}`` (the selector in its canonical text).
    """
    from cbcontrol._labels import Selector

    out = {k: v for k, v in document.items() if k != "scopes"}
    scopes = document.get("scopes")
    if not isinstance(scopes, list):
        if scopes is not None:
            out["scopes"] = scopes
        return out
    for scope in scopes:
        if not isinstance(scope, dict):
            continue
        text = str(scope.get("selector"))
        with contextlib.suppress(ConfigError):
            text = str(Selector.parse(text))
        for key, value in scope.items():
            if key != "selector":
                out[f"{key}[{text}]"] = value
    return out


def _diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """``{key: (old, new)}`` of what changed; an added explicit null is a change."""
    old, new = flatten(old), flatten(new)
    keys = (set(old) | set(new)) - set(METADATA)
    return {
        k: (old.get(k), new.get(k))
        for k in sorted(keys)
        if (k in old) != (k in new) or old.get(k) != new.get(k)
    }


def _drain(
    changes: queue.Queue[Update | None], tracked: _Tracked, timeout: float
) -> bool:
    """Take the updates waiting (the first within ``timeout``); False at the end."""
    try:
        update = changes.get(timeout=timeout)
    except queue.Empty:
        return True
    while update is not None:
        tracked.take(update)
        try:
            update = changes.get_nowait()
        except queue.Empty:
            return True
    return False


class _Attempt(NamedTuple):
    """One try of a write: the new document, what it changes, its history record."""

    document: dict[str, Any]
    changes: dict[str, tuple[Any, Any]]
    record: dict[str, Any]

    @classmethod
    def make(
        cls,
        name: str,
        state: SpecState,
        change: Callable[[dict[str, Any]], dict[str, Any]],
        *,
        actor: str,
        reason: str | None,
        action: str,
        selector: str | None,
    ) -> _Attempt:
        old = dict(state.data or {})
        new = change({k: v for k, v in old.items() if k not in METADATA})
        changes = (
            _diff(old, new)
            if state.error is None
            else {k: (None, v) for k, v in flatten(new).items()}
        )
        generation = max(_int(old.get("generation")), state.floor) + 1
        new.update(generation=generation, updated_by=actor, updated_at=_now())
        if reason is not None:
            new["reason"] = reason
        else:
            new.pop("reason", None)
        from cbcontrol.store._records import HistoryRecord

        record = HistoryRecord(
            name=name,
            at=new["updated_at"],
            actor=actor,
            action=action,
            reason=reason,
            generation=generation,
            changes={k: [o, n] for k, (o, n) in changes.items()},
            selector=selector,
        ).to_json()
        return cls(new, changes, record)


class _Waiting:
    """What :meth:`ControlStore.wait_applied` follows: the spec, and the records."""

    def __init__(
        self,
        name: str,
        generation: int,
        digest: str | None,
        selector: Selector | None = None,
    ) -> None:
        self.name, self.generation, self.digest = name, generation, digest
        self.selector = selector
        self.observed: dict[str, tuple[int, str | None]] = {}
        self.labels: dict[str, Mapping[str, Any]] = {}
        self.current: tuple[int, str | None] = (generation, digest)

    def take(self, update: Update) -> None:
        if update.complete:
            self.observed.clear()
            self.labels.clear()
        for doc in update.documents:
            if doc.kind == "instances":
                found = (doc.data or {}).get("labels")
                if isinstance(found, dict):
                    self.labels[doc.name] = found
                continue
            if doc.name != self.name:
                continue
            data = doc.data
            if doc.kind == "breakers" and data is not None:
                self.current = (_int(data.get("generation")), digest(dict(data)))
            elif doc.kind == "status" and data is None:
                self.observed.pop(doc.instance, None)
            elif doc.kind == "status" and data is not None:
                found = data.get("digest")
                applied = found if isinstance(found, str) else None
                self.observed[doc.instance] = (_int(data.get("gen")), applied)

    def applied(self, seen: tuple[int, str | None]) -> bool:
        if self.digest is None:
            return seen[0] >= self.generation
        if seen[1] == self.digest:
            return True
        # Superseded by a later write: the instance applied the spec now stored.
        return self.current[0] > self.generation and seen == self.current

    def ack(self, start: float) -> Ack:
        from cbcontrol.store._records import Ack

        live = len(self.observed)
        observed = self.observed
        if self.selector is not None:
            chosen = self.selector
            observed = {
                i: seen
                for i, seen in observed.items()
                if chosen.matches(self.labels.get(i, {}))
            }
        pending = tuple(
            sorted(i for i, seen in observed.items() if not self.applied(seen))
        )
        elapsed = time.monotonic() - start
        return Ack(len(observed) - len(pending), len(observed), elapsed, pending, live)


def _started(document: Mapping[str, Any]) -> tuple[str, str]:
    """The sort key of instances: start time, then id."""
    return (str(document.get("started_at") or ""), str(document.get("instance_id", "")))
