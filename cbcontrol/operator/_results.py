"""What the operator API's writes, presets, fields and watches return."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

    from cbcontrol.config._fields import FieldInfo
    from cbcontrol.operator._events import Event
    from cbcontrol.operator._views import FleetView
    from cbcontrol.store._records import Ack

__all__ = ["ChangeResult", "FieldExplanation", "Frame", "PresetView"]


@dataclass(frozen=True, slots=True)
class ChangeResult:
    """
    What a write did, and (after :meth:`Operator.wait`) how far the fleet applied it.

    Attributes:
        name: The breaker.
        action: ``set``, ``unset``, ``trip``, ``bypass``, ``reset``, ``promote``,
            ``apply``.
        generation: The spec's generation after the write (the one it would get,
            for a dry run).
        changed: False when it would not have changed anything (nothing written).
        changes: ``{field: (old, new)}`` (a scope's fields as ``field[selector]``).
        selector: The instances it is for (None: all).
        dry_run: Nothing was written.
        notes: What the operator should know (a scope that hides the change, ...).
        digest: The digest of the stored document, which instances report.
        ack: How many of the instances concerned applied it, once counted.
        waited: The ack is the result of waiting (else a count at one moment).
        elapsed_s: Seconds from sending the write (once validated) to the last
            acknowledgement.

    .. versionadded:: 0.3.0
    """

    name: str
    action: str
    generation: int
    changed: bool
    changes: Mapping[str, tuple[object, object]] = field(default_factory=dict)
    selector: str | None = None
    dry_run: bool = False
    notes: tuple[str, ...] = ()
    digest: str | None = None
    ack: Ack | None = None
    waited: bool = False
    elapsed_s: float = 0.0
    started: float = field(default=0.0, repr=False, compare=False)

    @property
    def complete(self) -> bool:
        """Every instance concerned applied it (True when nothing was counted)."""
        return self.ack is None or self.ack.complete

    def to_json(self) -> dict[str, Any]:
        """The ``-o json`` object of a write (DESIGN.md §6, and more)."""
        ack = self.ack
        return {
            "name": self.name,
            "action": self.action,
            "generation": self.generation,
            "changed": self.changed,
            "dry_run": self.dry_run,
            "selector": self.selector,
            "applied": 0 if ack is None else ack.applied,
            "instances": 0 if ack is None else ack.instances,
            "live": 0 if ack is None else (ack.live or ack.instances),
            "elapsed_ms": round(self.elapsed_s * 1000, 1),
            "pending": [] if ack is None else list(ack.pending),
            "waited": self.waited,
            "changes": {k: [old, new] for k, (old, new) in self.changes.items()},
            "notes": list(self.notes),
        }


@dataclass(frozen=True, slots=True)
class PresetView:
    """
    A preset in force: where it comes from and the fields it sets.

    .. versionadded:: 0.3.0
    """

    name: str
    source: str
    values: Mapping[str, object]

    def to_json(self) -> dict[str, Any]:
        """``{"source", "values"}``."""
        return {"source": self.source, "values": dict(self.values)}


@dataclass(frozen=True, slots=True)
class FieldExplanation:
    """
    A config field explained: its kind, default, unit, rule, and presets setting it.

    .. versionadded:: 0.3.0
    """

    info: FieldInfo
    presets: Mapping[str, object]

    def to_json(self) -> dict[str, Any]:
        """The field as JSON."""
        info = self.info
        return {
            "name": info.name,
            "kind": info.kind,
            "nullable": info.nullable,
            "default": info.default,
            "unit": info.unit,
            "choices": list(info.choices),
            "rule": info.rule,
            "help": info.help,
            "presets": dict(self.presets),
        }


@dataclass(frozen=True, slots=True)
class Frame:
    """
    One view of a watch and the events since the previous one.

    .. versionadded:: 0.3.0
    """

    view: FleetView
    events: tuple[Event, ...]
