"""
What changed between two views of the fleet, as events: the lines of ``cbctl watch``.

Kinds:

* ``state``: a breaker changed state on an instance (``closed`` -> ``open``);
* ``spec``: its desired state changed (generation, who, why, what);
* ``applied``: every instance that has it applied the new generation;
* ``rejected``: an instance rejected the stored spec as invalid;
* ``instance``: an instance appeared, went late (``stale``), was lost, came back,
  or left;
* ``store``: the store started failing (``stale``: the view may be out of date) or
  answers again (``ok``).

``Event.to_json()`` is one line of ``cbctl watch -o json``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from cbcontrol.operator._views import BreakerView, FleetView

__all__ = ["Event", "events_between"]

EventKind = Literal["state", "spec", "applied", "rejected", "instance", "store"]


@dataclass(frozen=True, slots=True)
class Event:
    """
    One change seen by a watch.

    Attributes:
        at: When it was seen (ISO 8601, UTC, seconds: ``2026-11-27T12:00:01Z``).
        kind: ``state``, ``spec``, ``applied``, ``rejected``, ``instance`` or
            ``store`` (the view went stale as the store stopped answering, or
            came back).
        breaker: The breaker, if it is about one.
        instance: The instance, if it is about one.
        old: What it was (a state, a generation, a liveness).
        new: What it is now.
        actor: Who changed it (spec changes), if known.
        reason: Why (the change's or the override's reason).
        detail: What changed, in words (``max_failures: 5 -> 3``), or the count.

    .. versionadded:: 0.3.0
    """

    at: str
    kind: EventKind
    breaker: str | None = None
    instance: str | None = None
    old: str | None = None
    new: str | None = None
    actor: str | None = None
    reason: str | None = None
    detail: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The event as one JSON object (``cbctl watch -o json`` prints one a line)."""
        return {
            "at": self.at,
            "kind": self.kind,
            "breaker": self.breaker,
            "instance": self.instance,
            "from": self.old,
            "to": self.new,
            "actor": self.actor,
            "reason": self.reason,
            "detail": self.detail,
        }


def _spec_changes(before: BreakerView | None, after: BreakerView) -> str:
    """``max_failures: 5 -> 3, override: none -> forced_open``, from two specs."""
    from cbcontrol.store._control import METADATA, flatten

    def plain(view: BreakerView | None) -> dict[str, Any]:
        if view is None:
            return {}
        data = view.spec.to_json()
        data["override"] = data["override"]["mode"]
        scopes = data.pop("scopes")
        flat = flatten(
            {
                **data,
                "scopes": [
                    {
                        **s,
                        "override": (s["override"] or {}).get("mode"),
                    }
                    for s in scopes
                ],
            }
        )
        skip = {*METADATA, "digest", "origin", "error"}
        return {
            k: v
            for k, v in flat.items()
            if k not in skip and not k.startswith("matching") and v is not None
        }

    old, new = plain(before), plain(after)
    keys = [*old, *(k for k in new if k not in old)]
    return ", ".join(
        f"{k}: {old.get(k, '-')} -> {new.get(k, '-')}"
        for k in keys
        if old.get(k) != new.get(k)
    )


def _instance_events(before: FleetView, after: FleetView, at: str) -> list[Event]:
    events = []
    old = {i.instance_id: i for i in before.instances}
    for info in after.instances:
        was = old.pop(info.instance_id, None)
        if was is None:
            events.append(
                Event(at, "instance", instance=info.instance_id, new=info.liveness)
            )
        elif was.liveness != info.liveness:
            events.append(
                Event(
                    at,
                    "instance",
                    instance=info.instance_id,
                    old=was.liveness,
                    new=info.liveness,
                )
            )
    events += [
        Event(at, "instance", instance=gone, old=info.liveness, new="gone")
        for gone, info in old.items()
    ]
    return events


def _breaker_events(
    before: BreakerView | None, after: BreakerView, at: str
) -> list[Event]:
    events = []
    name = after.name
    spec, old_spec = after.spec, None if before is None else before.spec
    if old_spec is not None and spec.generation != old_spec.generation:
        events.append(
            Event(
                at,
                "spec",
                breaker=name,
                old=str(old_spec.generation),
                new=str(spec.generation),
                actor=spec.updated_by,
                reason=spec.reason,
                detail=_spec_changes(before, after) or None,
            )
        )
    states = {} if before is None else {i.instance_id: i for i in before.instances}
    for item in after.instances:
        was = states.get(item.instance_id)
        if was is not None and was.state != item.state:
            events.append(
                Event(
                    at,
                    "state",
                    breaker=name,
                    instance=item.instance_id,
                    old=was.state,
                    new=item.state,
                    reason=item.override_reason,
                )
            )
    count = len(after.instances)
    done = count > 0 and after.applied == count
    was_done = (
        before is not None
        and before.spec.generation == spec.generation
        and before.applied == len(before.instances)
    )
    if done and not was_done and spec.exists:
        events.append(
            Event(
                at,
                "applied",
                breaker=name,
                new=str(spec.generation),
                actor=spec.updated_by,
                detail=f"{after.applied}/{count}",
            )
        )
    old_rejected = set() if before is None else {i.instance_id for i in before.rejected}
    events += [
        Event(
            at,
            "rejected",
            breaker=name,
            instance=item.instance_id,
            new=str(spec.generation),
            detail=item.error,
        )
        for item in after.rejected
        if item.instance_id not in old_rejected
    ]
    return events


def events_between(before: FleetView | None, after: FleetView, at: str) -> list[Event]:
    """The events that lead from ``before`` to ``after`` (none for the first view)."""
    if before is None:
        return []
    events = []
    if (before.stale is None) != (after.stale is None):
        old, new = ("ok", "stale") if after.stale is not None else ("stale", "ok")
        events.append(Event(at, "store", old=old, new=new, detail=after.stale))
    if after.stale is not None:
        return events  # the data is the last known: nothing else changed
    events += _instance_events(before, after, at)
    earlier = {b.name: b for b in before.breakers}  # not a scan per breaker
    for view in after.breakers:
        events += _breaker_events(earlier.get(view.name), view, at)
    return events
