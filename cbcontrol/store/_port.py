"""
The store port: what every backend (memory, file, etcd) promises.

A backend holds two kinds of documents under one namespace (DESIGN.md §5, layout in
``docs/store.md``):

* **desired state**, written by operators: ``breakers/<name>`` (a spec),
  ``presets/<name>`` and ``epoch`` (the store's identity, see below), plus the audit
  trail ``history/<name>/<generation>``;
* **reported state**, written by applications: ``instances/<id>`` (who the instance
  is) and ``status/<breaker>/<id>`` (one small record per breaker per instance), kept
  alive by the instance (an etcd lease; the file's modification time) and gone when
  it dies.

Backends own syntax: they read bytes within the limits of :mod:`cbcontrol._limits`,
check names against the one grammar of :mod:`cbcontrol._names`, and deliver parsed
:class:`Document` objects. A document that does not parse is delivered with an error
and no data, and a key whose name breaks the grammar is delivered as kind
``"invalid"``: it is reported, never applied, and never shadows a valid name. Meaning
(pydantic validation) is the consumer's job.

Everything is synchronous; a watch is an iterator that a thread consumes::

    for update in backend.watch(Scope.DESIRED, stop):   # returns soon after stop
        ...

The first update of a watch is the complete content of the scope (or an error); the
following ones carry what changed. After a failure the watch reports the error,
reconnects by itself, and delivers a complete update again, so a consumer never has
to tell a reconnect from a start.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Final, Literal, Protocol

if TYPE_CHECKING:
    import threading
    from collections.abc import Generator, Mapping

__all__ = [
    "LOST_S",
    "STALE_S",
    "STATUS_TTL_S",
    "DocKind",
    "Document",
    "Scope",
    "SpecState",
    "StatusWriter",
    "StoreBackend",
    "Update",
]

STATUS_TTL_S: Final = 10
"""Seconds a status lives without a heartbeat (the etcd lease TTL)."""
STALE_S: Final = 7
"""Seconds without a heartbeat after which an instance is late (two keep-alives)."""
LOST_S: Final = 300
"""Seconds a lost instance (no heartbeat for the TTL) is still reported as lost."""

DocKind = Literal["breakers", "presets", "epoch", "instances", "status", "invalid"]


@dataclass(frozen=True, slots=True)
class Document:
    """
    One document as a backend delivers it.

    Attributes:
        kind: ``breakers``, ``presets``, ``epoch`` (desired state), ``instances``,
            ``status`` (reported state), or ``invalid`` (a key outside the layout or
            the name grammar: reported, never applied).
        name: The breaker, preset or instance id (``""`` for ``epoch``); for
            ``invalid``, the key as found (clipped).
        data: The parsed JSON object; ``None`` when the key was deleted (in a change)
            or its value was rejected (``error`` says why).
        origin: Its provenance: ``etcd:/cbcontrol/ns/breakers/payment@42``,
            ``file:/srv/cbcontrol.yaml#breakers.payment``, ``memory:breakers/x@3``.
        instance: For ``status`` records: the instance id (``name`` is the breaker).
        version: The backend's version of it (etcd's mod revision; 0 if none).
        error: Why the latest value was rejected, bounded in size.
        age: For ``instances`` identities in a read: seconds since the instance's
            last heartbeat, as the backend knows it (None if it cannot tell). At
            :data:`STATUS_TTL_S` or more the instance is lost: its records are gone,
            and its identity is delivered for :data:`LOST_S` more.
    """

    kind: DocKind
    name: str
    data: Mapping[str, Any] | None
    origin: str = ""
    instance: str = ""
    version: int = 0
    error: str | None = None
    age: float | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        """``(kind, name, instance)``: a later document of the same key replaces it."""
        return (self.kind, self.name, self.instance)


@dataclass(frozen=True, slots=True)
class Update:
    """
    What a read or a watch delivers.

    Attributes:
        documents: The documents; in a change, a deleted one has ``data=None`` and
            no error.
        complete: ``documents`` is the whole scope: anything not in it is gone.
        revision: The backend's revision (etcd's header revision; 0 if none). It
            only grows while the store's history is intact.
        store_id: The identity of the store's history (etcd's cluster id), if any.
        error: The store is failing (down, hung, refusing): ``documents`` is empty
            and the last state delivered stands.
    """

    documents: tuple[Document, ...] = ()
    complete: bool = False
    revision: int = 0
    store_id: str | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Scope:
    """
    Which documents a read or a watch covers.

    Attributes:
        desired: ``breakers/``, ``presets/`` and ``epoch``.
        status: ``instances/`` and ``status/``.
        breaker: Only this breaker's spec and status records (presets, epoch and
            instances stay whole).
        specs: With ``desired``, the breaker specs too (False: presets and epoch).
        records: With ``status``, the breaker records too (False: identities only).
        whole: The documents besides specs and records: presets and epoch (with
            ``desired``), instances' identities (with ``status``). False leaves
            them out: a ``wait_applied`` needs one spec and its records only.
    """

    desired: bool = False
    status: bool = False
    breaker: str | None = None
    specs: bool = True
    whole: bool = True
    records: bool = True

    DESIRED: ClassVar[Scope]
    PRESETS: ClassVar[Scope]
    STATUS: ClassVar[Scope]
    ALL: ClassVar[Scope]


Scope.DESIRED = Scope(desired=True)
Scope.PRESETS = Scope(desired=True, specs=False)
Scope.STATUS = Scope(status=True)
Scope.ALL = Scope(desired=True, status=True)


@dataclass(frozen=True, slots=True)
class SpecState:
    """
    One breaker's spec as read for a compare-and-swap.

    Attributes:
        data: The stored document, or None when there is none or it is unreadable.
        error: Why the stored value is unreadable (garbage, too big), if it is.
        version: The token :meth:`StoreBackend.commit_spec` compares against.
        floor: The highest generation this breaker ever had that the store still
            knows of (its history, what live instances report they applied): a
            new one must be higher, and than the document's.
    """

    data: Mapping[str, Any] | None
    error: str | None
    version: object
    floor: int = 0


class StatusWriter(Protocol):
    """One instance's reported state in a store, kept alive until closed."""

    def publish(
        self,
        identity: Mapping[str, Any] | None,
        records: Mapping[str, Mapping[str, Any] | None],
    ) -> None:
        """
        Write the identity (if given) and breaker records; a None record is removed.

        Raises:
            StoreError: Nothing or only part was written; publish it again.
        """
        ...

    def keepalive(self) -> None:
        """Prove the instance is alive without writing its content (cheap)."""
        ...

    def close(self) -> None:
        """Withdraw everything this instance published."""
        ...


class StoreBackend(Protocol):
    """
    A store of desired and reported state (see the module documentation).

    Implementations: :class:`~cbcontrol.store.MemoryStore` (in-process, the fake for
    tests), the YAML file store and etcd (:func:`~cbcontrol.store.open_backend`).
    """

    @property
    def name(self) -> str:
        """A display name without credentials: ``etcd://10.0.0.1:2379/prod``."""
        ...

    @property
    def layer(self) -> Literal["file", "etcd"]:
        """The precedence layer its specs feed (DESIGN.md §4)."""
        ...

    @property
    def shared(self) -> bool:
        """
        Whether it outlives this process and others see it (file, etcd).

        The control plane keeps a local copy of a shared store's desired state
        (fail-static); a store inside one process needs none.
        """
        ...

    def read(self, scope: Scope) -> Update:
        """
        The complete content of ``scope``, at one revision where the store has them.

        Raises:
            StoreError: The store failed.
        """
        ...

    def watch(
        self, scope: Scope, stop: threading.Event
    ) -> Generator[Update, None, None]:
        """
        Follow ``scope``: a complete update first, then changes, until ``stop``.

        Failures are delivered as updates with ``error`` (once per failure), never
        raised; the watch reconnects with backoff and starts with a complete update
        again. It returns within a fraction of a second of ``stop`` being set.
        """
        ...

    def load_spec(self, name: str) -> SpecState:
        """
        Breaker ``name``'s spec and generation floor, for a compare-and-swap.

        Raises:
            StoreError: The store failed.
        """
        ...

    def commit_spec(
        self,
        name: str,
        document: Mapping[str, Any],
        expected: SpecState,
        record: Mapping[str, Any],
    ) -> bool:
        """
        Write the spec and its history record together, if nothing changed since.

        ``record["generation"]`` names the history record; an existing record is
        never overwritten (the write fails instead). Returns False when the spec
        changed since ``expected`` was read, or the record exists: read again.

        Raises:
            StoreError: The store failed (the write may or may not have happened).
        """
        ...

    def put_preset(self, name: str, document: Mapping[str, Any]) -> bool:
        """
        Define or replace a preset; returns whether anything changed.

        Raises:
            StoreError: The store failed.
        """
        ...

    def put_epoch(self, document: Mapping[str, Any], *, create: bool) -> bool:
        """
        Write the store's ``epoch``; with ``create``, only if there is none.

        Returns whether it was written. A backend without history (the file store)
        keeps no epoch and returns False.

        Raises:
            StoreError: The store failed.
        """
        ...

    def history(self, name: str | None, limit: int) -> list[dict[str, Any]]:
        """
        The latest history records (of one breaker, or all), in no set order.

        Raises:
            StoreError: The store failed.
        """
        ...

    def open_status(self, instance_id: str) -> StatusWriter:
        """Where instance ``instance_id`` reports (nothing is written yet)."""
        ...

    def delete_preset(self, name: str) -> bool:
        """
        Remove a preset; returns whether there was one.

        Raises:
            StoreError: The store failed.
        """
        ...

    def close(self) -> None:
        """Release connections, threads and handles."""
        ...
