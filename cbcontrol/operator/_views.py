"""
Read models of the operator API: the fleet, a breaker, an instance. Immutable.

Each has ``to_json()``, which *is* the JSON ``cbctl ... -o json`` prints (DESIGN.md
§6): ``BreakerView.to_json()`` is ``cbctl get NAME -o json``, and ``cbctl list -o
json`` is the list of them. They are built from one read of the store
(:meth:`cbcontrol.ControlStore.view`) without pydantic:

* an instance's effective config is *derived* from the spec it applied by the one
  resolver (``docs/store.md``) and shown only when it matches what the instance says
  it runs;
* whether the stored spec is valid is what the instances that read it say: one that
  rejected exactly this document reports why (``SpecView.error``). With no live
  instance, the operator API resolves the store alone, validating (pydantic).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cbcontrol.config._fields import CONFIG_FIELDS, as_read

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from cbcontrol._labels import Selector
    from cbcontrol.store._control import StoredSpec, StoreView

__all__ = [
    "BreakerView",
    "Difference",
    "FieldValue",
    "FleetView",
    "InstanceInfo",
    "InstanceView",
    "OverrideView",
    "ScopeView",
    "SpecView",
    "build_breaker",
    "build_fleet",
]


@dataclass(frozen=True, slots=True)
class FieldValue:
    """
    One effective config field: its value and where it came from.

    .. versionadded:: 0.3.0
    """

    value: object
    source: str

    def to_json(self) -> dict[str, Any]:
        """``{"value", "source"}``."""
        return {"value": self.value, "source": self.source}


@dataclass(frozen=True, slots=True)
class OverrideView:
    """
    An operator override as stored: mode, reason, who, until when.

    .. versionadded:: 0.3.0
    """

    mode: str = "none"
    reason: str | None = None
    actor: str | None = None
    until: str | None = None

    @classmethod
    def of(cls, data: object) -> OverrideView:
        """The override of a stored document's ``override`` value (none if absent)."""
        if not isinstance(data, dict):
            return cls()
        return cls(
            str(data.get("mode") or "none"),
            _text(data.get("reason")),
            _text(data.get("actor")),
            _text(data.get("until")),
        )

    def to_json(self) -> dict[str, Any]:
        """``{"mode", "reason", "actor", "until"}``."""
        return {
            "mode": self.mode,
            "reason": self.reason,
            "actor": self.actor,
            "until": self.until,
        }


@dataclass(frozen=True, slots=True)
class ScopeView:
    """
    A scoped layer of a spec and the live instances it selects.

    Attributes:
        selector: Its selector, in canonical text.
        values: The config fields it sets (durations in seconds).
        preset: The preset it chooses, if any.
        override: Its override, if it sets one.
        reset_generation: Its reset marker, if any.
        matching: The live instances with the breaker that it selects.
        position: Its place in the list: of two matching scopes the later wins.

    .. versionadded:: 0.3.0
    """

    selector: str
    values: Mapping[str, object]
    preset: str | None
    override: OverrideView | None
    reset_generation: int | None
    matching: tuple[str, ...]
    position: int

    def to_json(self) -> dict[str, Any]:
        """The scope as stored, with the ids of the instances it selects."""
        return {
            "selector": self.selector,
            **self.values,
            "preset": self.preset,
            "override": None if self.override is None else self.override.to_json(),
            "reset_generation": self.reset_generation,
            "matching": list(self.matching),
        }


@dataclass(frozen=True, slots=True)
class SpecView:
    """
    A breaker's desired state as stored.

    Attributes:
        values: The config fields it sets, as the library reads them (durations in
            seconds), or as written where that cannot be read.
        preset: The preset it chooses, if any.
        override: Its (unscoped) override.
        reset_generation: Its reset marker.
        scopes: Its scoped layers, in order.
        generation: cbctl's generation (0: none, or written by hand).
        updated_by: Who made the last change.
        updated_at: When.
        reason: Why.
        digest: What instances report once they applied exactly this document.
        origin: Its provenance.
        error: Why it is invalid: unreadable, rejected by instances, or (with no
            live instance) failing to resolve.
        exists: Whether there is a stored spec at all.

    .. versionadded:: 0.3.0
    """

    values: Mapping[str, object] = field(default_factory=dict)
    preset: str | None = None
    override: OverrideView = field(default_factory=OverrideView)
    reset_generation: int | None = None
    scopes: tuple[ScopeView, ...] = ()
    generation: int = 0
    updated_by: str | None = None
    updated_at: str | None = None
    reason: str | None = None
    digest: str | None = None
    origin: str | None = None
    error: str | None = None
    exists: bool = False

    def to_json(self) -> dict[str, Any]:
        """The ``spec`` object of ``cbctl get -o json``."""
        return {
            **self.values,
            "preset": self.preset,
            "override": self.override.to_json(),
            "reset_generation": self.reset_generation,
            "scopes": [s.to_json() for s in self.scopes],
            "generation": self.generation,
            "updated_by": self.updated_by,
            "updated_at": self.updated_at,
            "reason": self.reason,
            "digest": self.digest,
            "origin": self.origin,
            "error": self.error,
        }


@dataclass(frozen=True, slots=True)
class InstanceInfo:
    """
    A running (or recently lost) instance: who it is and whether it is heard from.

    Attributes:
        instance_id: ``<app>-<host>-<pid>-<random>``.
        app: The application.
        host: Its host.
        pid: Its process id.
        version: cbcontrol's version in it.
        labels: Its labels (selectors match these).
        started_at: When it connected.
        heartbeat_at: When its status last changed.
        heartbeat_age_s: Seconds since its last heartbeat, if the store tells.
        liveness: ``live``, ``stale`` (heartbeat late) or ``lost``.
        errors: The config errors it reports.
        health: Its control plane's health.

    .. versionadded:: 0.3.0
    """

    instance_id: str
    app: str
    host: str
    pid: int
    version: str
    labels: Mapping[str, str]
    started_at: str | None
    heartbeat_at: str | None
    heartbeat_age_s: float | None
    liveness: str
    errors: Mapping[str, str]
    health: Mapping[str, Any]

    @classmethod
    def of(cls, status: Mapping[str, Any]) -> InstanceInfo:
        """From an instance document of :meth:`cbcontrol.ControlStore.view`."""
        return cls(
            instance_id=status["instance_id"],
            app=status["app"],
            host=status["host"],
            pid=status["pid"],
            version=status["version"],
            labels=dict(status.get("labels") or {}),
            started_at=status["started_at"],
            heartbeat_at=status["heartbeat_at"],
            heartbeat_age_s=status.get("heartbeat_age_s"),
            liveness=status.get("liveness", "live"),
            errors=dict(status.get("errors") or {}),
            health=dict(status.get("health") or {}),
        )

    def to_json(self) -> dict[str, Any]:
        """Its identity as JSON."""
        return {
            "instance_id": self.instance_id,
            "app": self.app,
            "host": self.host,
            "pid": self.pid,
            "version": self.version,
            "labels": dict(self.labels),
            "started_at": self.started_at,
            "heartbeat_at": self.heartbeat_at,
            "heartbeat_age_s": self.heartbeat_age_s,
            "liveness": self.liveness,
            "errors": dict(self.errors),
            "health": dict(self.health),
        }


@dataclass(frozen=True, slots=True)
class InstanceView:
    """
    One breaker on one instance: its state, the spec it applied, what it runs.

    Attributes:
        instance: Who the instance is.
        state: ``closed``, ``open``, ``half_open``, ``forced_open``,
            ``forced_closed``.
        mode: The override in force (``none``, ``forced_open``, ``forced_closed``).
        override_reason: Its reason.
        observed_generation: The spec generation it applied.
        observed_digest: The digest of the spec document it applied.
        applied: It applied exactly the stored spec.
        rejected: It rejected exactly the stored spec as invalid.
        effective: What it runs, each field with its source ({} while it has not
            applied the stored spec).
        stats: Window and counters (calls, failure_rate, ...).
        error: The config error in force on it, if any.
        matches: Whether the selector of the read matches it (None: no selector).

    .. versionadded:: 0.3.0
    """

    instance: InstanceInfo
    state: str
    mode: str
    override_reason: str | None
    observed_generation: int
    observed_digest: str | None
    applied: bool
    rejected: bool
    effective: Mapping[str, FieldValue]
    stats: Mapping[str, Any]
    error: str | None
    matches: bool | None = None

    @property
    def instance_id(self) -> str:
        """The instance's id."""
        return self.instance.instance_id

    def to_json(self) -> dict[str, Any]:
        """An entry of ``instances`` in ``cbctl get -o json``."""
        info = self.instance
        return {
            "instance_id": info.instance_id,
            "app": info.app,
            "host": info.host,
            "pid": info.pid,
            "version": info.version,
            "labels": dict(info.labels),
            "heartbeat_at": info.heartbeat_at,
            "heartbeat_age_s": info.heartbeat_age_s,
            "liveness": info.liveness,
            "state": self.state,
            "mode": self.mode,
            "override_reason": self.override_reason,
            "observed_generation": self.observed_generation,
            "observed_digest": self.observed_digest,
            "applied": self.applied,
            "rejected": self.rejected,
            "effective": {f: v.to_json() for f, v in self.effective.items()},
            "stats": dict(self.stats),
            "error": self.error,
        }


@dataclass(frozen=True, slots=True)
class Difference:
    """
    A config field whose effective value is not the same on every instance.

    Attributes:
        field: The field.
        values: ``(value, source, instance ids)``, the most common first.

    .. versionadded:: 0.3.0
    """

    field: str
    values: tuple[tuple[object, str, tuple[str, ...]], ...]

    def to_json(self) -> dict[str, Any]:
        """``{"field", "values": [{"value", "source", "instances"}]}``."""
        return {
            "field": self.field,
            "values": [
                {"value": v, "source": s, "instances": list(ids)}
                for v, s, ids in self.values
            ],
        }


@dataclass(frozen=True, slots=True)
class BreakerView:
    """
    One breaker across the fleet: spec, effective config, each instance.

    Attributes:
        name: The breaker.
        spec: Its stored desired state.
        effective: Its effective config, each field with its source: what the first
            (oldest) live instance runs, or with none, what the store alone gives.
        effective_from: ``instance:<id>`` or ``store``.
        instances: The live (and late) instances that have it, oldest first (only
            those the read's selector matches, if it had one).
        differences: Fields whose value differs between those instances.
        lost: Instances lost recently (their breakers are not known).

    .. versionadded:: 0.3.0
    """

    name: str
    spec: SpecView
    effective: Mapping[str, FieldValue]
    effective_from: str
    instances: tuple[InstanceView, ...]
    differences: tuple[Difference, ...] = ()
    lost: tuple[InstanceInfo, ...] = ()

    @property
    def states(self) -> dict[str, tuple[str, ...]]:
        """Instance ids by state, in a fixed order of states."""
        order = ("closed", "half_open", "open", "forced_open", "forced_closed")
        found: dict[str, list[str]] = {}
        for item in self.instances:
            found.setdefault(item.state, []).append(item.instance_id)
        ranked = sorted(found, key=lambda s: (order.index(s) if s in order else 9, s))
        return {state: tuple(found[state]) for state in ranked}

    @property
    def applied(self) -> int:
        """Instances that applied exactly the stored spec."""
        return sum(1 for i in self.instances if i.applied)

    @property
    def rejected(self) -> tuple[InstanceView, ...]:
        """Instances that rejected the stored spec (it is invalid)."""
        return tuple(i for i in self.instances if i.rejected)

    @property
    def pending(self) -> tuple[InstanceView, ...]:
        """Instances that neither applied nor rejected the stored spec yet."""
        return tuple(i for i in self.instances if not (i.applied or i.rejected))

    @property
    def failure_rate(self) -> float | None:
        """The highest failure rate of a window across the instances."""
        rates = [
            float(r)
            for i in self.instances
            if isinstance(r := i.stats.get("failure_rate"), int | float)
        ]
        return max(rates) if rates else None

    def to_json(self) -> dict[str, Any]:
        """``cbctl get NAME -o json`` (DESIGN.md §6)."""
        return {
            "name": self.name,
            "spec": self.spec.to_json(),
            "effective": {f: v.to_json() for f, v in self.effective.items()},
            "effective_from": self.effective_from,
            "instances": [i.to_json() for i in self.instances],
            "differences": [d.to_json() for d in self.differences],
            "lost": [i.to_json() for i in self.lost],
        }


@dataclass(frozen=True, slots=True)
class FleetView:
    """
    Every breaker with a spec or on a live instance, and the instances.

    Attributes:
        store: The store, without credentials.
        breakers: The breakers, by name.
        instances: Every instance the store reports: live, late, or lost recently.
        invalid: Store keys outside the layout or the name grammar, with why.
        stale: While the store fails or hangs: why the data may be old.
        selector: The selector of the read, if any.

    .. versionadded:: 0.3.0
    """

    store: str
    breakers: tuple[BreakerView, ...]
    instances: tuple[InstanceInfo, ...]
    invalid: Mapping[str, str] = field(default_factory=dict)
    stale: str | None = None
    selector: str | None = None

    def breaker(self, name: str) -> BreakerView | None:
        """One breaker, or None."""
        return next((b for b in self.breakers if b.name == name), None)

    @property
    def lost(self) -> tuple[InstanceInfo, ...]:
        """Instances lost recently."""
        return tuple(i for i in self.instances if i.liveness == "lost")

    def to_json(self) -> list[dict[str, Any]]:
        """``cbctl list -o json``: the list of ``cbctl get`` objects."""
        return [b.to_json() for b in self.breakers]


# -- building views from one read of the store ----------------------------------------


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _int(value: object) -> int | None:
    return value if type(value) is int else None


def _values(data: Mapping[str, Any]) -> dict[str, object]:
    """The config fields of a stored document, read as the library holds them."""
    out: dict[str, object] = {}
    for name in CONFIG_FIELDS:
        if name in data:
            try:
                out[name] = as_read(name, data[name])
            except (TypeError, ValueError):
                out[name] = data[name]  # invalid: shown as written
    return out


def _selector_text(text: object) -> str:
    from cbcontrol._labels import Selector
    from cbcontrol.exceptions import ConfigError

    try:
        return str(Selector.parse(str(text)))
    except ConfigError:
        return str(text)


def _scope_views(
    data: Mapping[str, Any], instances: Iterable[InstanceView]
) -> tuple[ScopeView, ...]:
    scopes = data.get("scopes")
    if not isinstance(scopes, list) or not scopes:
        return ()
    from cbcontrol._labels import Selector
    from cbcontrol.exceptions import ConfigError

    views = []
    for position, scope in enumerate(scopes):
        if not isinstance(scope, dict):
            continue
        text = _selector_text(scope.get("selector"))
        try:
            chosen: Selector | None = Selector.parse(text)
        except ConfigError:
            chosen = None
        matching = tuple(
            i.instance_id
            for i in instances
            if chosen is not None and chosen.matches(i.instance.labels)
        )
        override = scope.get("override")
        views.append(
            ScopeView(
                selector=text,
                values=_values(scope),
                preset=_text(scope.get("preset")),
                override=None if override is None else OverrideView.of(override),
                reset_generation=_int(scope.get("reset_generation")),
                matching=matching,
                position=position,
            )
        )
    return tuple(views)


def _spec_view(
    stored: StoredSpec | None,
    instances: tuple[InstanceView, ...],
    error: str | None,
) -> SpecView:
    if stored is None:
        return SpecView(error=error)
    data = stored.data
    return SpecView(
        values=_values(data),
        preset=_text(data.get("preset")),
        override=OverrideView.of(data.get("override")),
        reset_generation=_int(data.get("reset_generation")),
        scopes=_scope_views(data, instances),
        generation=stored.generation,
        updated_by=_text(data.get("updated_by")),
        updated_at=_text(data.get("updated_at")),
        reason=_text(data.get("reason")),
        digest=stored.digest,
        origin=stored.origin,
        error=stored.read_error or error,
        exists=True,
    )


def _instance_view(
    status: Mapping[str, Any],
    info: InstanceInfo,
    name: str,
    digest: str | None,
    selector: Selector | None,
) -> InstanceView:
    breaker = status["breakers"][name]
    return InstanceView(
        instance=info,
        state=breaker["state"],
        mode=breaker["mode"],
        override_reason=breaker["override_reason"],
        observed_generation=breaker["observed_generation"],
        observed_digest=breaker["observed_digest"],
        applied=breaker["observed_digest"] == digest,
        rejected=digest is not None and breaker.get("rejected_digest") == digest,
        effective={
            f: FieldValue(v["value"], v["source"])
            for f, v in breaker["effective"].items()
        },
        stats={
            **breaker["stats"],
            **breaker["counters"],
            "times_opened": breaker["times_opened"],
            "last_state_change": breaker["last_state_change"],
            "retry_after_s": breaker["retry_after_s"],
        },
        error=breaker["error"],
        matches=None if selector is None else selector.matches(info.labels),
    )


def _differences(instances: Iterable[InstanceView]) -> tuple[Difference, ...]:
    """Fields whose (value, source) is not the same on every instance that says."""
    known = [i for i in instances if i.effective]
    if len(known) < 2:  # noqa: PLR2004 - a difference needs two
        return ()
    found = []
    names = [f for f in CONFIG_FIELDS if any(f in i.effective for i in known)]
    for name in names:
        groups: dict[tuple[str, str], list[str]] = {}
        seen: dict[tuple[str, str], tuple[object, str]] = {}
        for item in known:
            value = item.effective.get(name)
            if value is None:
                continue
            key = (repr(value.value), value.source)
            groups.setdefault(key, []).append(item.instance_id)
            seen[key] = (value.value, value.source)
        if len({k[0] for k in groups}) > 1:
            ranked = sorted(groups, key=lambda k: -len(groups[k]))
            found.append(
                Difference(name, tuple((*seen[k], tuple(groups[k])) for k in ranked))
            )
    return tuple(found)


Resolver = Callable[
    [str, "StoredSpec | None"], tuple[dict[str, FieldValue], str | None]
]
"""What the store alone resolves a breaker to, and why it does not, if it does not."""


class _Read:
    """One read of the store, with each instance's identity made once."""

    def __init__(self, view: StoreView) -> None:
        self.view = view
        self.infos = [InstanceInfo.of(s) for s in view.instances]
        self.lost = tuple(i for i in self.infos if i.liveness == "lost")


def build_breaker(
    name: str,
    view: StoreView | _Read,
    resolve_store: Resolver,
    selector: Selector | None = None,
) -> BreakerView:
    """
    The view of one breaker from one read of the store.

    ``resolve_store(name, stored)`` gives what the store alone resolves to (and why
    it does not resolve); it is called only when no live instance has the breaker.
    """
    read = view if isinstance(view, _Read) else _Read(view)
    stored = read.view.specs.get(name)
    digest = None if stored is None else stored.digest
    having = [
        _instance_view(s, info, name, digest, selector)
        for s, info in zip(read.view.instances, read.infos, strict=True)
        if name in s["breakers"] and info.liveness != "lost"
    ]
    shown = tuple(i for i in having if i.matches is not False)
    rejected = next((i for i in having if i.rejected and i.error), None)
    error = None if rejected is None else rejected.error
    first = next((i for i in shown if i.effective), None)
    if first is not None:
        effective, source = dict(first.effective), f"instance:{first.instance_id}"
    elif having:
        effective, source = {}, "none"  # instances, none of which applied it yet
    else:
        effective, error = resolve_store(name, stored)
        source = "store"
    return BreakerView(
        name=name,
        spec=_spec_view(stored, tuple(having), error),
        effective=effective,
        effective_from=source,
        instances=shown,
        differences=_differences(shown),
        lost=read.lost,
    )


def build_fleet(
    view: StoreView,
    resolve_store: Resolver,
    selector: Selector | None = None,
    names: Iterable[str] | None = None,
) -> FleetView:
    """Every breaker of one read (those on matching instances, with a selector)."""
    read = _Read(view)
    chosen = view.names() if names is None else sorted(names)
    if selector is not None:
        matching = {
            breaker
            for s in view.instances
            if s.get("liveness") != "lost" and selector.matches(s.get("labels") or {})
            for breaker in s["breakers"]
        }
        chosen = [n for n in chosen if n in matching]
    return FleetView(
        store=view.url,
        breakers=tuple(build_breaker(n, read, resolve_store, selector) for n in chosen),
        instances=tuple(read.infos),
        invalid=dict(view.invalid),
        stale=view.stale,
        selector=None if selector is None else str(selector),
    )
