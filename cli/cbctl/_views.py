"""
The data cbctl shows, as plain JSON-able dicts: the ``-o json`` API of DESIGN.md §6.

Tables, YAML and JSON are all rendered from these views, so they never disagree.
``cbctl get NAME -o json``::

    {"name", "spec": {<fields set>, "preset", "override": {"mode", "reason", "actor",
     "until"}, "reset_generation", "generation", "updated_by", "updated_at", "reason",
     "origin", "error"},
     "effective": {field: {"value", "source"}},
     "instances": [{"instance_id", "app", "host", "pid", "version", "heartbeat_at",
                    "state", "mode", "override_reason", "observed_generation",
                    "applied", "effective", "stats": {...}, "error"}]}

The top-level ``effective`` is what the first (oldest) instance that has the breaker
reports. With no such instance it is what the store alone gives: default < preset <
the spec's fields (no environment, which only instances see).

Views are built from JSON documents, not models: ``cbctl get`` and ``list`` load
pydantic (about 100 ms) only when something has to be validated here. Instance
statuses come with their effective config derived by the library
(:meth:`cbcontrol.ControlStore.view`). A spec is validated unless live instances
applied this very document (:meth:`cbcontrol.StoredSpec.confirmed_by`). An instance
has ``applied`` it when it reports the spec's digest.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from cbcontrol.config import CONFIG_FIELDS
from cbctl._fields import METADATA, fields

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from cbcontrol import ControlStore, HistoryRecord, StoredSpec
    from cbcontrol.config import BreakerSpec, PresetSpec
    from cbcontrol.store import StoreView

__all__ = [
    "Fleet",
    "breaker_view",
    "desired_document",
    "export_document",
    "history_view",
    "presets_view",
    "spec_generation",
]

NO_OVERRIDE: dict[str, Any] = {
    "mode": "none",
    "reason": None,
    "actor": None,
    "until": None,
}


class Fleet:
    """One consistent read of a store: specs and live instances (presets on demand)."""

    def __init__(
        self,
        store: ControlStore,
        breaker: str | None = None,
        view: StoreView | None = None,
    ) -> None:
        self.store = store
        read = store.view(breaker) if view is None else view
        self.url = read.url
        self.stale = read.stale
        self.specs: dict[str, StoredSpec] = read.specs
        self.instances: list[dict[str, Any]] = read.instances
        self._presets: dict[str, PresetSpec] | None = None

    def presets(self) -> dict[str, PresetSpec]:
        """Presets in force (built-in extended by the store's), read once."""
        if self._presets is None:
            self._presets = self.store.presets()
        return self._presets

    def names(self) -> list[str]:
        """Every breaker with a spec or on a live instance."""
        found = set(self.specs)
        for status in self.instances:
            found.update(status["breakers"])
        return sorted(found)


def spec_generation(stored: StoredSpec | None) -> int:
    """The generation cbctl wrote into this spec (0: none, or written by hand)."""
    return 0 if stored is None else stored.generation


def _spec_view(
    stored: StoredSpec | None, statuses: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    if stored is not None:
        stored.confirmed_by(statuses)  # the fleet validated it: no pydantic needed
    data: dict[str, Any] = {} if stored is None else stored.document
    view = {f: data[f] for f in CONFIG_FIELDS if f in data}
    view["preset"] = data.get("preset")
    override = data.get("override")
    view["override"] = {
        **NO_OVERRIDE,
        **(override if isinstance(override, dict) else {}),
    }
    view["reset_generation"] = data.get("reset_generation")
    view["generation"] = spec_generation(stored)
    for key in METADATA[1:]:
        view[key] = data.get(key)
    view["digest"] = None if stored is None else stored.digest
    view["origin"] = None if stored is None else stored.origin
    view["error"] = None if stored is None else stored.error
    return view


def _field_source(origin: str, name: str) -> str:
    # As the library's provenance: a file addresses each field, an etcd key does not.
    return f"{origin}.{name}" if origin.startswith("file:") else origin


def resolve_effective(
    name: str,
    spec: BreakerSpec | None,
    origin: str,
    presets: Mapping[str, PresetSpec],
) -> tuple[dict[str, dict[str, Any]], str | None]:
    """
    The effective config a store alone gives: default < preset < spec.

    Returns ``{field: {"value", "source"}}``, or ``{}`` and why it does not resolve.
    """
    preset = spec.preset if spec is not None and spec.preset else None
    if preset is None:
        preset = name if name in presets else "default"
    if preset not in presets:
        known = ", ".join(sorted(presets))
        return {}, f"preset {preset!r} is not defined; defined presets: {known}"
    values: dict[str, object] = {}
    sources: dict[str, str] = {}
    for field, value in presets[preset].config_values().items():
        values[field] = value
        sources[field] = f"preset:{preset}"
    if spec is not None:
        for field, value in spec.config_values().items():
            values[field] = value
            sources[field] = _field_source(origin, field)
    dumped, error = _validated(tuple(sorted(values.items())))
    if dumped is None:
        return {}, error
    return {
        f: {"value": dumped[f], "source": sources.get(f, "default")} for f in fields()
    }, None


@functools.lru_cache(maxsize=4096)
def _validated(
    values: tuple[tuple[str, object], ...],
) -> tuple[dict[str, Any] | None, str | None]:
    """The config of these values as JSON, or why it is invalid (once per values)."""
    from pydantic import ValidationError

    from cbcontrol.config import BreakerConfig

    try:
        config = BreakerConfig.model_validate(dict(values))
    except ValidationError as exc:
        return None, "; ".join(_message(e) for e in exc.errors())
    return config.model_dump(mode="json"), None


def _message(error: Mapping[str, Any]) -> str:
    """A pydantic error as ``path: message``, without pydantic's prefixes."""
    msg = str(error["msg"]).removeprefix("Value error, ")
    path = ".".join(str(p) for p in error["loc"])
    return f"{path}: {msg}" if path else msg


def _instance_view(
    status: Mapping[str, Any], name: str, digest: str | None
) -> dict[str, Any]:
    breaker = status["breakers"][name]
    return {
        "instance_id": status["instance_id"],
        "app": status["app"],
        "host": status["host"],
        "pid": status["pid"],
        "version": status["version"],
        "heartbeat_at": status["heartbeat_at"],
        "state": breaker["state"],
        "mode": breaker["mode"],
        "override_reason": breaker["override_reason"],
        "observed_generation": breaker["observed_generation"],
        "observed_digest": breaker["observed_digest"],
        "applied": breaker["observed_digest"] == digest,
        "effective": breaker["effective"],
        "stats": {
            **breaker["stats"],
            **breaker["counters"],
            "times_opened": breaker["times_opened"],
            "last_state_change": breaker["last_state_change"],
            "retry_after_s": breaker["retry_after_s"],
        },
        "error": breaker["error"],
    }


def breaker_view(fleet: Fleet, name: str) -> dict[str, Any]:
    """The ``cbctl get NAME -o json`` object of one breaker."""
    stored = fleet.specs.get(name)
    having = [status for status in fleet.instances if name in status["breakers"]]
    spec = _spec_view(stored, having)
    instances = [_instance_view(status, name, spec["digest"]) for status in having]
    known = [i["effective"] for i in instances if i["effective"]]
    if known:
        effective = known[0]
    else:
        usable = stored is not None and stored.error is None
        effective, error = resolve_effective(
            name,
            stored.spec if usable and stored is not None else None,
            "" if stored is None else stored.origin,
            fleet.presets(),
        )
        if error is not None and spec["error"] is None:
            spec["error"] = error
    return {"name": name, "spec": spec, "effective": effective, "instances": instances}


def history_view(records: list[HistoryRecord]) -> list[dict[str, Any]]:
    """``cbctl history -o json``: the records as stored, oldest first."""
    return [record.to_json() for record in records]


def presets_view(store: ControlStore) -> dict[str, dict[str, Any]]:
    """``cbctl presets -o json``: ``{name: {"source", "values"}}``."""
    from cbcontrol.config import BUILTIN_PRESETS

    own = set(store.store_presets())
    view = {}
    for name, spec in sorted(store.presets().items()):
        where = [
            w
            for w, yes in (
                ("built-in", name in BUILTIN_PRESETS),
                ("store", name in own),
            )
            if yes
        ]
        view[name] = {
            "source": "+".join(where),
            "values": spec.model_dump(mode="json", exclude_unset=True),
        }
    return view


def _readable(values: Mapping[str, Any]) -> dict[str, Any]:
    """Durations written the way operators write them (``60`` -> ``1m``)."""
    from cbcontrol.config import format_duration

    out = dict(values)
    for name, value in values.items():
        field = fields().get(name)
        if (
            field is not None
            and field.kind == "duration"
            and isinstance(value, int | float)
        ):
            out[name] = format_duration(float(value))
    return out


def desired_document(stored: StoredSpec) -> dict[str, Any]:
    """A spec's desired state alone (no metadata), as ``export`` writes it."""
    if stored.error is not None:
        return dict(stored.data)
    data = stored.spec.model_dump(
        mode="json", exclude_unset=True, exclude=set(METADATA)
    )
    return _readable(data)


def export_document(fleet: Fleet) -> tuple[dict[str, Any], list[str]]:
    """The store's desired state as a ConfigDocument, and what had to be left out."""
    presets = {
        name: _readable(spec.model_dump(mode="json", exclude_unset=True))
        for name, spec in sorted(fleet.store.store_presets().items())
    }
    breakers = {}
    skipped = []
    for name, stored in sorted(fleet.specs.items()):
        if stored.error is not None:
            skipped.append(f"breaker {name} left out, it is invalid: {stored.error}")
            continue
        breakers[name] = desired_document(stored)
    return {"version": 1, "presets": presets, "breakers": breakers}, skipped


def utc_now() -> datetime:
    """Now, in UTC."""
    return datetime.now(UTC)
