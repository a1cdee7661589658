"""What writes, acknowledgements and the history are made of (public records)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["Ack", "HistoryRecord", "WriteResult"]


@dataclass(frozen=True, slots=True)
class WriteResult:
    """
    The outcome of a write.

    Attributes:
        name: The breaker.
        generation: The spec's generation after the write.
        changed: False when the write would not have changed anything (not written).
        changes: ``{field: (old, new)}`` of what changed.
        digest: The digest of the stored document, which instances report.
        sent_at: When the write that landed was sent (``time.monotonic()``): an
            acknowledgement's time counts from here, not from the validation.
    """

    name: str
    generation: int
    changed: bool
    changes: Mapping[str, tuple[Any, Any]] = field(default_factory=dict)
    digest: str | None = None
    sent_at: float | None = None


@dataclass(frozen=True, slots=True)
class Ack:
    """
    How far a write has been applied across the fleet.

    Attributes:
        applied: Live instances with the breaker (matching the selector, if any)
            that applied the document.
        instances: Live instances with the breaker (matching the selector, if any).
        elapsed_s: Seconds waited.
        pending: Instance ids that have not applied it.
        live: Live instances with the breaker, matching or not.

    .. versionchanged:: 0.3.0
       ``live``: acknowledgements of a targeted change count matching instances.
    """

    applied: int
    instances: int
    elapsed_s: float
    pending: tuple[str, ...] = ()
    live: int | None = None

    @property
    def complete(self) -> bool:
        """Every instance concerned applied it (every live one, or every matching
        one for a targeted change: ``live`` counts them all)."""
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
        changes: ``{field: [old, new]}`` (a scope's fields as ``field[selector]``).
        selector: The instances a targeted change was for (None: all).

    .. versionchanged:: 0.3.0
       ``selector``.
    """

    name: str
    at: str
    actor: str
    action: str
    reason: str | None
    generation: int
    changes: Mapping[str, list[Any]]
    selector: str | None = None

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
            "selector": self.selector,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> HistoryRecord:
        """Read a stored record (raises KeyError, TypeError or ValueError if bad)."""
        changes = data.get("changes", {})
        reason = data.get("reason")
        selector = data.get("selector")
        return cls(
            name=str(data["name"]),
            at=str(data["at"]),
            actor=str(data.get("actor", "")),
            action=str(data.get("action", "")),
            reason=None if reason is None else str(reason),
            generation=int(data.get("generation", 0)),
            changes=dict(changes) if isinstance(changes, dict) else {},
            selector=selector if isinstance(selector, str) else None,
        )
