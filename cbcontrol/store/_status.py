"""
The layout of reported state (format 2), written by instances and read by tools.

An instance publishes an **identity** under ``instances/<id>`` (who it is, its health,
its errors, and the ``base`` it resolves configs from: its library's defaults and
built-in presets) and one **record** per breaker under ``status/<breaker>/<id>``::

    {"state": "closed", "gen": 7, "digest": "9c0f...", "cfg": "51e2...",
     "calls": [calls, successes, failures, ignored, rejections, fallbacks, slow],
     "window": [calls, failure_rate, slow_call_rate, consecutive_failures],
     "opened": 0, "since": "2026-11-27T12:00:00.123Z"}

plus, only when they apply: ``reason`` (of a forced mode), ``retry_at`` (an open
breaker's next probe), ``error`` (the config error in force) and ``local`` (the
instance's own layers, env and code, which the store cannot know).

A record holds nothing the store can give: the effective config with provenance is
*derived* by the one resolver (:func:`~cbcontrol.config._merge.merge`) from the spec
the instance applied (``digest``), the store's presets, the identity's ``base`` and the
record's ``local`` layers, and checked against ``cfg``, the digest of what the
instance runs. A record only changes when the breaker does, so an idle instance writes
nothing; times are wall-clock instants fixed when the state changed, so they do not
jitter.

:func:`instance_document` turns an identity and its records back into the
``InstanceStatus`` shape that ``cbctl`` and the JSON API show (DESIGN.md §6).
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from cbcontrol.config._fields import CONFIG_FIELDS, as_read
from cbcontrol.config._merge import (
    Layer,
    ScopedValues,
    merge,
    merge_presets,
    preset_table,
    spec_layers,
)
from cbcontrol.exceptions import ConfigError
from cbcontrol.store._port import STALE_S, STATUS_TTL_S

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = [
    "STATUS_FORMAT",
    "canonical",
    "config_digest",
    "derive_effective",
    "digest",
    "digest_of",
    "instance_document",
    "layer_json",
    "liveness",
    "scopes_of_document",
    "utc_text",
]

STATUS_FORMAT: Final = 2
"""
The layout of reported state (``docs/store.md``), published in each identity.

2: an identity under ``instances/<id>`` and one record per breaker under
``status/<breaker>/<id>``; 1: one ``InstanceStatus`` document per instance.
"""
COUNTERS = ("calls", "successes", "failures", "ignored", "rejections", "fallbacks")
"""The order of the ``calls`` array (then ``slow_calls``)."""
WINDOW = ("window_calls", "failure_rate", "slow_call_rate", "consecutive_failures")
"""The order of the ``window`` array."""


def canonical(data: object) -> bytes:
    """The one JSON form of a document that digests are taken of."""
    return json.dumps(
        data, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode()


def digest(data: object) -> str:
    """A short digest of a document's canonical JSON (16 hex digits)."""
    return digest_of(canonical(data))


def digest_of(encoded: bytes) -> str:
    """:func:`digest` of a document already in canonical JSON."""
    return hashlib.blake2b(encoded, digest_size=8).hexdigest()


def config_digest(values: Mapping[str, object], sources: Mapping[str, str]) -> str:
    """The digest of an effective config (JSON values) with its provenance."""
    return digest({"values": dict(values), "sources": dict(sources)})


def utc_text(seconds: float) -> str:
    """A wall-clock time as ``2026-11-27T12:00:00.123Z``."""
    moment = datetime.fromtimestamp(seconds, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def layer_json(layer: Layer) -> dict[str, Any]:
    """A local layer as a record carries it."""
    out: dict[str, Any] = {"kind": layer.kind}
    if layer.values:
        out["values"] = dict(layer.values)
        out["sources"] = dict(layer.sources)
    if layer.preset is not None:
        out["preset"] = [layer.preset, layer.preset_source]
    return out


def _layer(data: object) -> Layer:
    """A record's local layer back as a Layer (raises on anything malformed)."""
    if not isinstance(data, dict):
        raise TypeError(data)
    values = data.get("values") or {}
    sources = data.get("sources") or {}
    preset, preset_source = data.get("preset") or (None, None)
    if not isinstance(values, dict) or not isinstance(sources, dict):
        raise TypeError(data)
    return Layer(str(data["kind"]), values, sources, preset, preset_source)


def _read_values(document: Mapping[str, Any]) -> dict[str, object]:
    return {f: as_read(f, document[f]) for f in CONFIG_FIELDS if f in document}


def scopes_of_document(spec: Mapping[str, Any]) -> list[ScopedValues]:
    """
    A spec document's scopes, as the merge takes them (raises when malformed).

    For a document an instance applied: the models accepted it.
    """
    scopes = spec.get("scopes") or []
    if not isinstance(scopes, list):
        raise TypeError(scopes)
    if not scopes:
        return []
    from cbcontrol._labels import Selector

    return [
        ScopedValues(
            Selector.parse(str(scope["selector"])),
            _read_values(scope),
            scope.get("preset"),
        )
        for scope in scopes
    ]


def derive_effective(
    name: str,
    *,
    spec: Mapping[str, Any] | None,
    origin: str,
    layer: str,
    base: Mapping[str, Any],
    store_presets: Mapping[str, tuple[Mapping[str, Any], str]],
    local: Sequence[object],
    labels: Mapping[str, str] | None = None,
) -> tuple[dict[str, Any], dict[str, str]] | None:
    """
    What an instance runs, derived from what the store knows: ``(values, sources)``.

    Args:
        name: The breaker.
        spec: The spec document the instance applied (None: no spec).
        origin: Its provenance.
        layer: The store's layer kind (``file`` or ``etcd``).
        base: The instance's ``{"defaults": ..., "presets": ...}``.
        store_presets: The store's presets as ``{name: (document, origin)}``.
        local: The record's ``local`` layers.
        labels: The instance's labels, which pick the spec's scopes.

    Returns:
        None when it cannot be derived (a malformed record or document).
    """
    try:
        table = merge_presets(
            preset_table(base["presets"]),
            {
                n: ({f: as_read(f, v) for f, v in d.items() if f in CONFIG_FIELDS}, o)
                for n, (d, o) in store_presets.items()
            },
        )
        layers = [_layer(item) for item in local]
        if spec is not None:
            layers += spec_layers(
                layer,
                _read_values(spec),
                spec.get("preset"),
                origin,
                scopes=scopes_of_document(spec),
                labels=labels or {},
            )
        merged = merge(name, layers, table)
        values = {**base["defaults"], **merged.values}
    except (ConfigError, KeyError, TypeError, ValueError, AttributeError):
        return None
    return values, merged.sources


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _status_time(value: object) -> str | None:
    """A time with a zone, as the models write it; None if it is not one."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return moment.isoformat().replace("+00:00", "Z")


def _int(value: object) -> int:
    return value if type(value) is int else 0


def _number(value: object) -> float | None:
    return float(value) if type(value) in (int, float) else None  # type: ignore[arg-type]


def _breaker_view(
    name: str,
    record: Mapping[str, Any],
    *,
    identity: Mapping[str, Any],
    specs: Mapping[str, tuple[Mapping[str, Any] | None, str, str | None]],
    layer: str,
    store_presets: Mapping[str, tuple[Mapping[str, Any], str]],
    now: float,
) -> dict[str, Any]:
    """One breaker of an instance in the ``BreakerStatus`` shape (as JSON)."""
    state = str(record.get("state", "closed"))
    calls, window = _list(record.get("calls")), _list(record.get("window"))
    counters = [_int(v) for v in calls] + [0] * (len(COUNTERS) + 1)
    stats = list(window) + [None] * len(WINDOW)
    spec, origin, spec_digest = specs.get(name, (None, "", None))
    applied = record.get("digest")
    effective: dict[str, Any] = {}
    base = identity.get("base")
    local = _list(record.get("local"))
    labels = identity.get("labels")
    if isinstance(base, dict) and applied == spec_digest:
        derived = derive_effective(
            name,
            spec=spec if applied is not None else None,
            origin=origin,
            layer=layer,
            base=base,
            store_presets=store_presets,
            local=local,
            labels=labels if isinstance(labels, dict) else {},
        )
        if derived is not None and config_digest(*derived) == record.get("cfg"):
            values, sources = derived
            order = [*CONFIG_FIELDS, *(f for f in values if f not in CONFIG_FIELDS)]
            effective = {
                f: {"value": values[f], "source": sources.get(f, "default")}
                for f in order
                if f in values
            }
    retry_at = record.get("retry_at")
    retry = None
    if isinstance(retry_at, str):
        try:
            moment = datetime.fromisoformat(retry_at).timestamp()
            retry = round(max(0.0, moment - now), 3)
        except ValueError:
            retry = None
    forced = state in ("forced_open", "forced_closed")
    return {
        "state": state,
        "mode": state if forced else "none",
        "override_reason": record.get("reason") if forced else None,
        "observed_generation": _int(record.get("gen")),
        "observed_digest": applied if isinstance(applied, str) else None,
        "rejected_digest": _text(record.get("rejected")),
        "effective": effective,
        "stats": {
            "window_calls": _int(stats[0]),
            "failure_rate": _number(stats[1]),
            "slow_call_rate": _number(stats[2]),
            "consecutive_failures": _int(stats[3]),
        },
        "counters": {
            **{key: counters[i] for i, key in enumerate(COUNTERS)},
            "slow_calls": counters[len(COUNTERS)],
        },
        "times_opened": _int(record.get("opened")),
        "last_state_change": _status_time(record.get("since")),
        "retry_after_s": retry,
        "error": _text(record.get("error")),
    }


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def liveness(age: float | None) -> str:
    """``live``, ``stale`` (heartbeat late) or ``lost`` (none for the TTL), by age."""
    if age is None or age < STALE_S:
        return "live"
    return "stale" if age < STATUS_TTL_S else "lost"


def instance_document(
    identity: Mapping[str, Any],
    records: Mapping[str, Mapping[str, Any]],
    *,
    specs: Mapping[str, tuple[Mapping[str, Any] | None, str, str | None]],
    layer: str,
    store_presets: Mapping[str, tuple[Mapping[str, Any], str]],
    now: float,
    age: float | None = None,
) -> dict[str, Any]:
    """
    An instance's identity and records in the ``InstanceStatus`` shape (JSON).

    Args:
        identity: Its identity document.
        records: Its breaker records, by breaker name.
        specs: ``{name: (document, origin, digest)}`` of the stored specs.
        layer: The store's layer kind.
        store_presets: The store's presets as ``{name: (document, origin)}``.
        now: The wall-clock time, for ``retry_after_s``.
        age: Seconds since its last heartbeat, if the store can tell.
    """
    errors = identity.get("errors")
    labels = identity.get("labels")
    return {
        "format": _int(identity.get("format")),
        "instance_id": str(identity.get("instance_id", "")),
        "app": str(identity.get("app", "")),
        "host": str(identity.get("host", "")),
        "pid": _int(identity.get("pid")),
        "started_at": _status_time(identity.get("started_at")),
        "heartbeat_at": _status_time(identity.get("updated_at")),
        "version": str(identity.get("version", "unknown")),
        "store": str(identity.get("store", "")),
        "labels": {str(k): str(v) for k, v in labels.items()}
        if isinstance(labels, dict)
        else {},
        "heartbeat_age_s": None if age is None else round(age, 1),
        "liveness": liveness(age),
        "breakers": {
            name: _breaker_view(
                name,
                record,
                identity=identity,
                specs=specs,
                layer=layer,
                store_presets=store_presets,
                now=now,
            )
            for name, record in sorted(records.items())
        },
        "errors": {str(k): str(v) for k, v in errors.items()}
        if isinstance(errors, dict)
        else {},
        "health": identity.get("health")
        if isinstance(identity.get("health"), dict)
        else {},
    }
