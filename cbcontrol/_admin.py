"""
Operator access to a store: read and change desired state, read reported state.

This is what ``cbctl`` is built on, and what any other tool can use:
``store = cbcontrol.open_store("etcd://127.0.0.1:2379/prod")``.

Writes are safe against concurrent writers: in etcd a compare-and-swap on the key's
revision, retried on conflict; in the file store an exclusive lock around a
read-modify-write that renames the new file into place (comments kept). Every write
bumps the spec's ``generation``, records actor, time and reason in it, and appends a
record to the breaker's history (bounded in etcd; a JSONL file beside the YAML file).
A write is validated before anything is written, including against the store's
presets, so a value that every instance would reject never reaches them.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any, Self

from cbcontrol._store import StoreURL, etcd_client, parse_store_url
from cbcontrol.config._duration import parse_duration
from cbcontrol.config._layout import (
    CONFIG_FIELDS,
    DURATION_FIELDS,
    FLOAT_FIELDS,
    SPEC_SHAPE,
    STATUS_FORMAT,
    STATUS_SHAPE,
    STATUS_TTL_S,
    conforms,
    field_source,
)
from cbcontrol.exceptions import ConfigError, StoreConflictError, StoreError

if TYPE_CHECKING:
    from collections.abc import Callable, Generator, Mapping, Sequence

    from cbcontrol._etcd import EtcdClient, WatchUpdate
    from cbcontrol.config._models import BreakerSpec, InstanceStatus, PresetSpec

# The config layer (pydantic) is imported where a document is validated, not here:
# reading a store and showing what it holds (``cbctl get``) must not pay ~40 ms for
# models it only needs when something is invalid.

__all__ = [
    "Ack",
    "ControlStore",
    "HistoryRecord",
    "StoredSpec",
    "WriteResult",
    "open_store",
]

METADATA = ("generation", "updated_by", "updated_at", "reason")
"""Spec keys that cbctl maintains; they are not desired state themselves."""
HISTORY_LIMIT = 100
"""History records kept per breaker in etcd."""
_CAS_ATTEMPTS = 50
_POLL_S = 0.01


@dataclass(frozen=True)
class StoredSpec:
    """
    A breaker's desired state as stored, validated when first asked.

    Validating loads pydantic (~40 ms for a command-line tool). A tool that reads
    the instances' statuses anyway can skip it with :meth:`confirmed_by` when the
    fleet already validated this very document.

    Attributes:
        name: The breaker.
        data: The document as stored (plain JSON types).
        origin: Its provenance (``etcd:/cbcontrol/ns/breakers/x@42``, ``file:...``).

    .. versionchanged:: 0.1.0
       Built from ``(name, data, origin)``; ``spec`` and ``error`` are computed.
    """

    name: str
    data: Mapping[str, Any]
    origin: str
    # The model dump of the spec once instances confirmed it (see confirmed_by).
    _confirmed: dict[str, Any] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    @cached_property
    def _validated(self) -> tuple[BreakerSpec, str | None]:
        from cbcontrol.config._builder import validate_spec
        from cbcontrol.config._models import BreakerSpec

        try:
            return validate_spec(self.name, self.data, self.origin), None
        except ConfigError as exc:
            return BreakerSpec.model_validate({}), str(exc)

    @property
    def spec(self) -> BreakerSpec:
        """The validated document (empty when it is invalid)."""
        return self._validated[0]

    @property
    def error(self) -> str | None:
        """Why the stored document is invalid, if it is (``spec`` is then empty)."""
        if self._confirmed is not None:
            return None
        return self._validated[1]

    @property
    def generation(self) -> int:
        """
        The generation instances report once they applied this spec (0 if invalid).

        A hand-edited document may carry none: instances then derive one from the
        content, and so does this.
        """
        if self._confirmed is not None:
            return int(self.data["generation"])
        from cbcontrol.config._builder import generation_of

        return 0 if self.error is not None else generation_of(self.spec)

    @property
    def document(self) -> dict[str, Any]:
        """
        The spec as the library reads it: durations in seconds, floats as floats.

        That is ``spec.model_dump(mode="json", exclude_unset=True)``, or the data as
        stored when it is invalid.
        """
        if self._confirmed is not None:
            return dict(self._confirmed)
        if self.error is not None:
            return dict(self.data)
        return self.spec.model_dump(mode="json", exclude_unset=True)

    def confirmed_by(self, statuses: Sequence[Mapping[str, Any]]) -> bool:
        """
        Count this spec as valid, without validating it, if ``statuses`` show it is.

        ``statuses`` are the documents (:meth:`ControlStore.instance_documents`) of
        every live instance that has this breaker. They confirm the spec when each
        one is in this library's status format and reports this spec's generation
        applied without error, and each config field the spec sets at the value the
        library reads from it, with this document as its source. The spec must also
        keep its other keys as its model would (an override's ``until``, which the
        model rewrites, is not). Then :attr:`error`, :attr:`generation` and
        :attr:`document` need no validation. Returns whether they confirmed it.
        """
        if self._confirmed is None and "_validated" not in self.__dict__:
            # Frozen: set once, as the cached validation is.
            object.__setattr__(self, "_confirmed", _confirmed(self, statuses))
        return self._confirmed is not None


@dataclass(frozen=True, slots=True)
class WriteResult:
    """
    The outcome of a write.

    Attributes:
        name: The breaker.
        generation: The spec's generation after the write.
        changed: False when the write would not have changed anything (not written).
        changes: ``{field: (old, new)}`` of what changed.
    """

    name: str
    generation: int
    changed: bool
    changes: Mapping[str, tuple[Any, Any]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Ack:
    """
    How far a write has been applied across the fleet.

    Attributes:
        applied: Live instances with the breaker that report the generation.
        instances: Live instances with the breaker.
        elapsed_s: Seconds waited.
        pending: Instance ids that have not applied it.
    """

    applied: int
    instances: int
    elapsed_s: float
    pending: tuple[str, ...] = ()

    @property
    def complete(self) -> bool:
        """Every live instance applied it."""
        return self.applied == self.instances


@dataclass(frozen=True, slots=True)
class HistoryRecord:
    """
    One change of a breaker's desired state: who, when, why, what.

    Attributes:
        name: The breaker.
        at: When (UTC, ISO 8601).
        actor: Who (``CBCTL_ACTOR``, else user@host).
        action: ``set``, ``unset``, ``trip``, ``bypass``, ``reset``, ``apply``, ...
        reason: Why, as given with ``--reason``.
        generation: The spec's generation after the change.
        changes: ``{field: [old, new]}``.
    """

    name: str
    at: str
    actor: str
    action: str
    reason: str | None
    generation: int
    changes: Mapping[str, list[Any]]

    def to_json(self) -> dict[str, Any]:
        """The record as stored."""
        return {
            "name": self.name,
            "at": self.at,
            "actor": self.actor,
            "action": self.action,
            "reason": self.reason,
            "generation": self.generation,
            "changes": dict(self.changes),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> HistoryRecord:
        """Read a stored record."""
        return cls(
            name=str(data["name"]),
            at=str(data["at"]),
            actor=str(data.get("actor", "")),
            action=str(data.get("action", "")),
            reason=data.get("reason"),
            generation=int(data.get("generation", 0)),
            changes=dict(data.get("changes", {})),
        )


class ControlStore:
    """
    Desired and reported state of one store, for operators and tools.

    Open it with :func:`open_store`. Methods raise
    :class:`~cbcontrol.exceptions.StoreError` subclasses when the store fails and
    :class:`~cbcontrol.exceptions.ConfigError` when a change is invalid.

    .. versionadded:: 0.1.0
    """

    url: StoreURL

    # -- desired state ---------------------------------------------------------------

    def breakers(self) -> dict[str, StoredSpec]:
        """Every stored breaker spec, by name."""
        return {
            name: StoredSpec(name, data, origin)
            for name, (data, origin) in self._read_docs("breakers").items()
        }

    def get(self, name: str) -> StoredSpec | None:
        """One breaker's stored spec, or None."""
        return self.breakers().get(name)

    def presets(self) -> dict[str, PresetSpec]:
        """Presets in force: the built-in ones extended by the store's."""
        from cbcontrol.config._merge import builtin_presets, merge_presets
        from cbcontrol.config._models import PresetSpec

        store = self.store_presets()
        table = merge_presets(
            builtin_presets(), {n: (p, "store") for n, p in store.items()}
        )
        return {
            name: PresetSpec.model_validate(dict(layer.values))
            for name, layer in table.items()
        }

    def store_presets(self) -> dict[str, PresetSpec]:
        """The presets defined in the store itself (invalid ones left out)."""
        from cbcontrol.config._builder import validate_preset

        presets = {}
        for name, (data, origin) in self._read_docs("presets").items():
            with contextlib.suppress(ConfigError):
                presets[name] = validate_preset(name, data, origin)
        return presets

    def update(
        self,
        name: str,
        change: Callable[[dict[str, Any]], dict[str, Any]],
        *,
        actor: str,
        reason: str | None = None,
        action: str = "set",
    ) -> WriteResult:
        """
        Change one breaker's spec safely against concurrent writers.

        Args:
            name: The breaker.
            change: Gets a copy of the stored document (``{}`` if none) and returns
                the new one; metadata keys are managed here.
            actor: Who makes the change.
            reason: Why.
            action: What kind of change, for the history.

        Raises:
            ConfigError: The new document is invalid, alone or merged with presets.
        """
        presets = self.store_presets()
        outcome: dict[str, Any] = {}

        def apply(current: dict[str, Any] | None) -> dict[str, Any] | None:
            old = dict(current or {})
            new = change({k: v for k, v in old.items() if k not in METADATA})
            changes = _diff(old, new)
            if not changes:
                outcome.update(generation=_int(old.get("generation")), changes={})
                return None
            generation = _generation(name, old) + 1
            new.update(
                generation=generation,
                updated_by=actor,
                updated_at=_now(),
            )
            if reason is not None:
                new["reason"] = reason
            else:
                new.pop("reason", None)
            self._validate(name, new, presets)
            outcome.update(generation=generation, changes=changes)
            return new

        self._transact(name, apply)
        result = WriteResult(
            name, outcome["generation"], bool(outcome["changes"]), outcome["changes"]
        )
        if result.changed:
            self._append_history(
                HistoryRecord(
                    name=name,
                    at=_now(),
                    actor=actor,
                    action=action,
                    reason=reason,
                    generation=result.generation,
                    changes={k: [o, n] for k, (o, n) in result.changes.items()},
                )
            )
        return result

    def put_preset(self, name: str, values: Mapping[str, Any]) -> bool:
        """
        Define or replace a preset; returns whether anything changed.

        Raises:
            ConfigError: The preset is invalid.
        """
        from cbcontrol.config._builder import validate_preset

        validate_preset(name, values, f"preset {name}")
        return self._put_preset(name, dict(values))

    # -- reported state --------------------------------------------------------------

    def instances(self) -> list[InstanceStatus]:
        """Live instances, oldest first."""
        statuses = [s for s in self._read_statuses() if s is not None]
        return sorted(statuses, key=lambda s: (s.started_at, s.instance_id))

    def instance_documents(self) -> list[dict[str, Any]]:
        """
        Live instances' statuses as JSON documents, oldest first.

        Each is what ``InstanceStatus.model_dump(mode="json")`` gives. A status in
        this library's format and of exactly the dumped shape is taken as published,
        without loading the models; any other (an older or newer cbcontrol, a
        status written by hand) is validated and normalized, and left out when
        invalid, as :meth:`instances` does.
        """
        documents = []
        for raw in self._raw_statuses():
            document = _json_object(raw)
            if document.get("format") != STATUS_FORMAT or not conforms(
                document, STATUS_SHAPE
            ):
                status = _status(raw)
                if status is None:
                    continue
                document = status.model_dump(mode="json")
            documents.append(document)
        return sorted(documents, key=_started)

    def wait_applied(
        self,
        name: str,
        generation: int,
        timeout: float,
        progress: Callable[[Ack], object] | None = None,
    ) -> Ack:
        """
        Wait until every live instance that has breaker ``name`` applied ``generation``.

        Returns the last :class:`Ack` seen, complete or not when ``timeout`` passed.
        """
        start = time.monotonic()
        ack = self._ack(name, generation, start)
        if ack.complete:
            return ack
        # The first item comes once the watch is set up: re-check then, so an
        # instance that applied meanwhile is not missed.
        with contextlib.closing(self._changes(deadline=start + timeout)) as changes:
            for _ in changes:
                ack = self._ack(name, generation, start)
                if progress is not None:
                    progress(ack)
                if ack.complete:
                    break
        return ack

    def history(self, name: str | None = None, limit: int = 50) -> list[HistoryRecord]:
        """The latest changes, oldest first (of one breaker, or all)."""
        records = self._read_history(name)
        records.sort(key=lambda r: r.at)
        return records[-limit:]

    def watch(self, stop: threading.Event) -> Generator[None, None, None]:
        """
        Yield after every change of desired or reported state, until ``stop`` is set.

        The first item comes at once. Close the generator (or exhaust it) to release
        the watch.
        """
        with contextlib.closing(self._changes(stop=stop)) as changes:
            yield from changes

    def close(self) -> None:
        """Release the store's client."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- shared helpers ----------------------------------------------------------------

    def _validate(
        self, name: str, data: Mapping[str, Any], presets: Mapping[str, PresetSpec]
    ) -> None:
        from cbcontrol.config._builder import layer_from_spec, validate_spec
        from cbcontrol.config._merge import builtin_presets, merge_presets, resolve

        origin = self._origin(name)
        spec = validate_spec(name, data, origin)
        table = merge_presets(
            builtin_presets(), {n: (p, "store") for n, p in presets.items()}
        )
        resolve(name, [layer_from_spec(self.url.layer or "etcd", spec, origin)], table)

    def _ack(self, name: str, generation: int, start: float) -> Ack:
        observed = dict(_observed(raw, name) for raw in self._raw_statuses())
        return _ack(observed, generation, start)

    # -- backend-specific --------------------------------------------------------------

    def _origin(self, name: str) -> str:
        raise NotImplementedError

    def _read_docs(self, kind: str) -> dict[str, tuple[dict[str, Any], str]]:
        raise NotImplementedError

    def _transact(
        self, name: str, apply: Callable[[dict[str, Any] | None], dict[str, Any] | None]
    ) -> None:
        raise NotImplementedError

    def _put_preset(self, name: str, values: dict[str, Any]) -> bool:
        raise NotImplementedError

    def _read_statuses(self) -> list[InstanceStatus | None]:
        return [_status(raw) for raw in self._raw_statuses()]

    def _raw_statuses(self) -> list[bytes]:
        """The JSON of every live instance's status."""
        raise NotImplementedError

    def _append_history(self, record: HistoryRecord) -> None:
        raise NotImplementedError

    def _read_history(self, name: str | None) -> list[HistoryRecord]:
        raise NotImplementedError

    def _changes(
        self, *, deadline: float | None = None, stop: threading.Event | None = None
    ) -> Generator[None, None, None]:
        raise NotImplementedError


class EtcdControlStore(ControlStore):
    """A :class:`ControlStore` on etcd, under ``/cbcontrol/<namespace>/``."""

    def __init__(self, url: StoreURL, client: EtcdClient) -> None:
        self.url = url
        self.client = client
        self.prefix = f"/cbcontrol/{url.namespace}/"

    def close(self) -> None:
        """Close the client."""
        self.client.close()

    def _origin(self, name: str) -> str:
        return f"etcd:{self.prefix}breakers/{name}"

    def _read_docs(self, kind: str) -> dict[str, tuple[dict[str, Any], str]]:
        _, found = self.client.get_prefix(f"{self.prefix}{kind}/")
        docs = {}
        for key, (value, revision) in found.items():
            name = key.rsplit("/", 1)[-1]
            docs[name] = (_json_object(value), f"etcd:{key}@{revision}")
        return docs

    def _transact(
        self, name: str, apply: Callable[[dict[str, Any] | None], dict[str, Any] | None]
    ) -> None:
        key = f"{self.prefix}breakers/{name}"
        for attempt in range(_CAS_ATTEMPTS):
            value, revision = self.client.get(key)
            current = None if value is None else _json_object(value)
            new = apply(current)
            if new is None:
                return
            if self.client.compare_and_swap(key, _dumps(new), revision):
                return
            time.sleep(0.001 * (attempt + 1))  # another writer won; read again
        msg = f"gave up writing {key} after {_CAS_ATTEMPTS} conflicting writes"
        raise StoreConflictError(msg, store=str(self.url))

    def _put_preset(self, name: str, values: dict[str, Any]) -> bool:
        key = f"{self.prefix}presets/{name}"
        value, _ = self.client.get(key)
        if value is not None and _json_object(value) == values:
            return False
        self.client.put(key, _dumps(values))
        return True

    def _raw_statuses(self) -> list[bytes]:
        _, found = self.client.get_prefix(f"{self.prefix}instances/")
        return [value for value, _ in found.values()]

    def wait_applied(
        self,
        name: str,
        generation: int,
        timeout: float,
        progress: Callable[[Ack], object] | None = None,
    ) -> Ack:
        """As :meth:`ControlStore.wait_applied`, following the instances' keys."""
        # Statuses are tracked from the watch events themselves: one small JSON
        # parse per acknowledgement, not a re-read of the whole fleet per event.
        start = time.monotonic()
        deadline = start + timeout
        prefix = f"{self.prefix}instances/"
        # Watch from *now*, then read: a watch that starts at a past revision is an
        # "unsynced" watcher to etcd, which catches it up on a 100 ms timer, and
        # the acknowledgements waited for that timer (p99 +60-100 ms).
        watch = self.client.watch_prefix(prefix)
        try:
            watch.next(max(0.0, min(2.0, deadline - time.monotonic())))  # created
            revision, found = self.client.get_prefix(prefix)
            observed = {k: _observed(v, name) for k, (v, _) in found.items()}
            ack = _ack(dict(observed.values()), generation, start)
            while not ack.complete and (left := deadline - time.monotonic()) > 0:
                update = watch.next(min(left, 0.2))
                if update is not None and _absorb(observed, update, revision, name):
                    ack = _ack(dict(observed.values()), generation, start)
                    if progress is not None:
                        progress(ack)
        finally:
            watch.cancel()
        return ack
        watch = self.client.watch_prefix(prefix, start_revision=revision + 1)
        try:
            while not ack.complete and (left := deadline - time.monotonic()) > 0:
                update = watch.next(min(left, 0.2))
                if update is None:
                    continue
                if update.compacted_revision:  # history gone: read it all again
                    _, found = self.client.get_prefix(prefix)
                    observed = {k: _observed(v, name) for k, (v, _) in found.items()}
                for event in update.events:
                    if event.value is None:
                        observed.pop(event.key, None)
                    else:
                        observed[event.key] = _observed(event.value, name)
                ack = _ack(dict(observed.values()), generation, start)
                if progress is not None:
                    progress(ack)
        finally:
            watch.cancel()
        return ack

    def _append_history(self, record: HistoryRecord) -> None:
        base = f"{self.prefix}history/{record.name}/"
        self.client.put(f"{base}{record.generation:012d}", _dumps(record.to_json()))
        _, found = self.client.get_prefix(base)
        for key in sorted(found)[:-HISTORY_LIMIT]:
            self.client.delete(key)

    def _read_history(self, name: str | None) -> list[HistoryRecord]:
        base = f"{self.prefix}history/" + (f"{name}/" if name else "")
        _, found = self.client.get_prefix(base)
        records = []
        for value, _ in found.values():
            with contextlib.suppress(ValueError, KeyError, TypeError):
                records.append(HistoryRecord.from_json(json.loads(value)))
        return records

    def _changes(
        self, *, deadline: float | None = None, stop: threading.Event | None = None
    ) -> Generator[None, None, None]:
        # From now, not from a past revision (an unsynced watcher waits for etcd's
        # 100 ms catch-up timer, as wait_applied learnt); the caller reads the
        # current state once the watch exists, so nothing falls in between.
        watch = self.client.watch_prefix(self.prefix)
        try:
            watch.next(2.0)  # the creation answer
            yield  # the caller checks once before the first event
            while True:
                if stop is not None and stop.is_set():
                    return
                wait = 0.2
                if deadline is not None:
                    wait = deadline - time.monotonic()
                    if wait <= 0:
                        return
                update = watch.next(min(wait, 0.2))
                if update is not None and update.events:
                    yield
        finally:
            watch.cancel()


class FileControlStore(ControlStore):
    """A :class:`ControlStore` on the YAML file, its status directory and history."""

    def __init__(self, url: StoreURL) -> None:
        from cbcontrol.config.sources._file import FileSource, status_dir

        assert url.path is not None  # noqa: S101 - parse_store_url guarantees it
        self.url = url
        self.path = url.path
        self.status_dir = status_dir(url.path)
        self.history_path = self.path.with_name(f"{self.path.stem}.history.jsonl")
        self._source = FileSource(url.path)

    def _origin(self, name: str) -> str:
        return f"file:{self.path}#breakers.{name}"

    def _read_docs(self, kind: str) -> dict[str, tuple[dict[str, Any], str]]:
        if not self.path.exists():
            return {}
        snapshot = self._source.read()
        if snapshot.error is not None and not snapshot.entries:
            raise StoreError(snapshot.error, store=str(self.url))
        return {
            name: (dict(entry.data or {}), entry.origin)
            for (k, name), entry in snapshot.entries.items()
            if k == kind
        }

    def _transact(
        self, name: str, apply: Callable[[dict[str, Any] | None], dict[str, Any] | None]
    ) -> None:
        from cbcontrol.config.sources._file import write_document

        def mutate(doc: Any) -> None:
            breakers = doc.setdefault("breakers", {})
            if breakers is None:
                doc["breakers"] = breakers = {}
            current = breakers.get(name)
            new = apply(None if current is None else _plain(current))
            if new is None:
                return
            if current is None:
                breakers[name] = new
                return
            for key in [k for k in current if k not in new]:
                del current[key]
            for key, value in new.items():
                if key not in current or current[key] != value:
                    current[key] = value

        write_document(self.path, mutate)

    def _put_preset(self, name: str, values: dict[str, Any]) -> bool:
        from cbcontrol.config.sources._file import write_document

        changed = False

        def mutate(doc: Any) -> None:
            nonlocal changed
            presets = doc.get("presets")
            if presets is None:
                doc["presets"] = presets = {}
            if presets.get(name) is not None and _plain(presets[name]) == values:
                return
            presets[name] = values
            changed = True

        write_document(self.path, mutate)
        return changed

    def _raw_statuses(self) -> list[bytes]:
        if not self.status_dir.is_dir():
            return []
        # No heartbeat for a TTL: the instance is gone (a killed process leaves its
        # file behind). The file's own mtime is the heartbeat: no parse needed.
        cutoff = time.time() - STATUS_TTL_S
        statuses = []
        for path in self.status_dir.glob("*.json"):
            with contextlib.suppress(OSError):
                if path.stat().st_mtime >= cutoff:
                    statuses.append(path.read_bytes())
        return statuses

    def _append_history(self, record: HistoryRecord) -> None:
        line = json.dumps(record.to_json(), separators=(",", ":")) + "\n"
        # One write() of one line with O_APPEND: concurrent writers never interleave.
        fd = os.open(self.history_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)

    def _read_history(self, name: str | None) -> list[HistoryRecord]:
        if not self.history_path.exists():
            return []
        records = []
        for line in self.history_path.read_text().splitlines():
            with contextlib.suppress(ValueError, KeyError, TypeError):
                record = HistoryRecord.from_json(json.loads(line))
                if name is None or record.name == name:
                    records.append(record)
        return records

    def _changes(
        self, *, deadline: float | None = None, stop: threading.Event | None = None
    ) -> Generator[None, None, None]:
        import watchfiles

        yield
        stop_event = stop or threading.Event()
        self.status_dir.mkdir(parents=True, exist_ok=True)
        timer = None
        if deadline is not None:
            timer = threading.Timer(
                max(0.0, deadline - time.monotonic()), stop_event.set
            )
            timer.start()
        try:
            for _ in watchfiles.watch(
                self.path.parent,
                self.status_dir,
                stop_event=stop_event,
                debounce=20,
                step=10,
                recursive=False,
                rust_timeout=200,
                yield_on_timeout=True,
            ):
                if stop_event.is_set():
                    return
                yield
        finally:
            if timer is not None:
                timer.cancel()


def open_store(
    url: str | None = None,
    *,
    namespace: str | None = None,
    environ: Mapping[str, str] | None = None,
    timeout: float = 2.5,
) -> ControlStore:
    """
    Open a store for reading and changing desired state (what ``cbctl`` uses).

    Args:
        url: As for :func:`cbcontrol.connect`; default ``CBCONTROL_STORE``, else
            ``./cbcontrol.yaml``.
        namespace: Overrides the URL's namespace.
        environ: Environment to read instead of :data:`os.environ`.
        timeout: Seconds each etcd call may take.

    Raises:
        ConfigError: The URL is invalid, or names the memory store (which only
            exists inside one process).

    .. versionadded:: 0.1.0
    """
    env = os.environ if environ is None else environ
    store = parse_store_url(url, environ=env, namespace=namespace)
    if store.scheme == "memory":
        rule = (
            "names no shared store; set CBCONTROL_STORE or pass --store "
            "(file://PATH or etcd://HOST:PORT/NAMESPACE)"
        )
        raise ConfigError(rule, field="store", value=str(store), source="cbctl")
    if store.scheme == "file":
        return FileControlStore(store)
    client = etcd_client(store, environ=env, timeout=timeout)
    return EtcdControlStore(store, client)


# -- helpers -------------------------------------------------------------------------


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _generation(name: str, doc: Mapping[str, Any]) -> int:
    """The generation instances observe for ``doc`` (derived if it carries none)."""
    if not doc or isinstance(doc.get("generation"), int):
        return _int(doc.get("generation"))
    from cbcontrol.config._builder import generation_of, validate_spec

    try:
        return generation_of(validate_spec(name, doc, "store"))
    except ConfigError:
        return 0


def _dumps(data: Mapping[str, Any]) -> bytes:
    return json.dumps(data, separators=(",", ":"), sort_keys=True).encode()


def _json_object(value: bytes) -> dict[str, Any]:
    try:
        data = json.loads(value)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _plain(value: Any) -> Any:
    """ruamel's round-trip types as plain JSON types."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    return str(value)


def _diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """``{key: (old, new)}`` of what changed; an added explicit null is a change."""
    keys = (set(old) | set(new)) - set(METADATA)
    return {
        k: (old.get(k), new.get(k))
        for k in sorted(keys)
        if (k in old) != (k in new) or old.get(k) != new.get(k)
    }


def _observed(raw: bytes, name: str) -> tuple[str, int | None]:
    """``(instance_id, observed generation of breaker name)``; None if it lacks it."""
    try:
        status = json.loads(raw)
        breaker = status.get("breakers", {}).get(name)
        instance = str(status["instance_id"])
    except (ValueError, AttributeError, KeyError, TypeError):
        return "", None
    if not isinstance(breaker, dict):
        return instance, None
    generation = breaker.get("observed_generation")
    return instance, generation if isinstance(generation, int) else 0


def _absorb(
    observed: dict[str, tuple[str, int | None]],
    update: WatchUpdate,
    revision: int,
    name: str,
) -> bool:
    """Fold a watch update into ``observed``; False if it held nothing newer."""
    changed = False
    for event in update.events:
        if event.mod_revision <= revision:  # the read already has it
            continue
        changed = True
        if event.value is None:
            observed.pop(event.key, None)
        else:
            observed[event.key] = _observed(event.value, name)
    return changed


def _ack(observed: Mapping[str, int | None], generation: int, start: float) -> Ack:
    having = {i: g for i, g in observed.items() if i and g is not None}
    pending = tuple(sorted(i for i, g in having.items() if g < generation))
    return Ack(
        len(having) - len(pending), len(having), time.monotonic() - start, pending
    )


def _status(value: bytes) -> InstanceStatus | None:
    from pydantic import ValidationError

    from cbcontrol.config._models import InstanceStatus

    try:
        return InstanceStatus.model_validate_json(value)
    except ValidationError:
        return None


def _as_read(name: str, value: object) -> object:
    """A stored config value as the library holds it (``"30s"`` -> ``30.0``)."""
    if value is None:
        return None
    if name in DURATION_FIELDS:
        return parse_duration(value)
    if name in FLOAT_FIELDS and type(value) is int:
        return float(value)
    return value


def _confirmed(
    stored: StoredSpec, statuses: Sequence[Mapping[str, Any]]
) -> dict[str, Any] | None:
    """The spec's model dump if ``statuses`` confirm it (StoredSpec.confirmed_by)."""
    data = stored.data
    generation = data.get("generation")
    if not statuses or type(generation) is not int or not conforms(data, SPEC_SHAPE):
        return None
    try:
        read = {n: _as_read(n, data[n]) for n in CONFIG_FIELDS if n in data}
    except (TypeError, ValueError, ArithmeticError):
        return None
    sources = {n: field_source(stored.origin, n) for n in read}
    for status in statuses:
        breaker = (status.get("breakers") or {}).get(stored.name)
        if (
            status.get("format") != STATUS_FORMAT
            or not isinstance(breaker, dict)
            or breaker.get("observed_generation") != generation
            or breaker.get("error") is not None
        ):
            return None
        effective = breaker.get("effective") or {}
        for name, value in read.items():
            item = effective.get(name) or {}
            reported = item.get("value")
            if (
                item.get("source") != sources[name]
                or type(reported) is not type(value)
                or reported != value
            ):
                return None
    return {**data, **read}


def _started(document: Mapping[str, Any]) -> tuple[datetime, str]:
    """The sort key of :meth:`ControlStore.instances`, on a status document."""
    try:
        started = datetime.fromisoformat(str(document["started_at"]))
    except (KeyError, ValueError):
        started = datetime.min.replace(tzinfo=UTC)
    return started, str(document.get("instance_id", ""))
