"""
The port every live config source (YAML file, etcd) implements.

A live source delivers *desired state*: the ``breakers/<name>`` and ``presets/<name>``
documents of DESIGN.md §5, each as a parsed but not yet validated mapping together with
its provenance. Sources own the syntactic layer: bytes that do not parse are never
delivered as data; the source keeps the last good parse of that document and reports the
error beside it. Semantic validation (pydantic) happens in the consumer, which keeps the
last good *valid* config per breaker in the same way.

A source is driven by the control plane's single background thread::

    snapshot = source.read()                    # synchronous, at connect()
    source.run(on_change, stop_event)           # blocks until stop_event is set

``run`` calls ``on_change`` with a complete, fresh :class:`SourceSnapshot` every time
anything changed (whole snapshots keep consumers idempotent; documents are small).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    import threading
    from collections.abc import Callable, Mapping

__all__ = ["Kind", "LiveSource", "RawEntry", "SourceSnapshot"]

Kind = Literal["breakers", "presets"]


@dataclass(frozen=True, slots=True)
class RawEntry:
    """
    One desired-state document as a source delivers it.

    Attributes:
        kind: ``"breakers"`` or ``"presets"``.
        name: The breaker or preset name.
        data: The last good parsed mapping for this document, or ``None`` if it never
            parsed.
        origin: Provenance prefix for its fields, e.g.
            ``"etcd:/cbcontrol/default/breakers/payment@42"`` or
            ``"file:/srv/cbcontrol.yaml#breakers.payment"``; a field's provenance is
            ``f"{origin}.{field}"`` for files and ``origin`` itself for etcd.
        error: Why the *latest* version was rejected (names the key, the problem and
            the fix), or ``None`` when the latest version is what ``data`` holds.
    """

    kind: Kind
    name: str
    data: Mapping[str, object] | None
    origin: str
    error: str | None = None


@dataclass(frozen=True, slots=True)
class SourceSnapshot:
    """
    Everything a source holds at one moment.

    Attributes:
        source: The source's display name (``"file:/srv/cbcontrol.yaml"``,
            ``"etcd://127.0.0.1:2379/default"``).
        revision: An opaque version of the whole snapshot (etcd revision, or a hash of
            the file's content); equal revisions mean equal snapshots.
        entries: The documents, keyed by ``(kind, name)``.
        error: A whole-source problem (file unparsable or deleted, etcd unreachable),
            or ``None``. ``entries`` then still holds the last good documents.
    """

    source: str
    revision: str
    entries: Mapping[tuple[Kind, str], RawEntry] = field(default_factory=dict)
    error: str | None = None


class LiveSource(Protocol):
    """A source of desired state that can be read once and then watched."""

    @property
    def name(self) -> str:
        """The display name used in provenance and status."""
        ...

    def read(self) -> SourceSnapshot:
        """Read the current snapshot synchronously."""
        ...

    def run(
        self,
        on_change: Callable[[SourceSnapshot], None],
        stop: threading.Event,
    ) -> None:
        """Watch for changes, calling ``on_change`` with fresh snapshots, until stop."""
        ...

    def close(self) -> None:
        """Release clients, threads and file handles."""
        ...
