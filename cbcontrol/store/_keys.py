"""
The key layout under a namespace, in one place (``docs/store.md``).

::

    breakers/<name>               a breaker's spec (JSON)
    presets/<name>                a preset (JSON partial config)
    epoch                         the store's identity (JSON), see docs/store.md
    history/<name>/<generation>   audit records, 12-digit generations, never overwritten
    instances/<id>                an instance's identity and health, on its lease
    status/<breaker>/<id>         one breaker's record on one instance, on its lease

Keys are relative to ``/cbcontrol/<namespace>/`` in etcd. Every name in a key follows
the one name grammar (:mod:`cbcontrol._names`); a key that does not fit this layout is
classified as ``invalid``, so it is reported and never read as another name.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Final

from cbcontrol._limits import (
    MAX_DOCUMENT_BYTES,
    MAX_RECORD_BYTES,
    DocumentError,
    clip,
    load_object,
)
from cbcontrol._names import NAME_RULE, is_name
from cbcontrol.store._port import Document, Scope

if TYPE_CHECKING:
    from collections.abc import Mapping

    from cbcontrol.store._port import DocKind

__all__ = [
    "EPOCH",
    "HISTORY",
    "classify",
    "decode",
    "encode",
    "history_key",
    "invalid_reason",
    "prefixes",
    "status_changes",
]

EPOCH: Final = "epoch"
HISTORY: Final = "history/"
_DESIRED: Final = frozenset({"breakers", "presets"})
_STATUS: Final = frozenset({"instances", "status"})
GENERATION_DIGITS: Final = 12


def classify(relative: str) -> tuple[DocKind, str, str]:
    """
    ``(kind, name, instance)`` of a key relative to the namespace.

    Keys of the desired and reported layouts give their kind; anything else, or a
    name outside the grammar, gives ``("invalid", <clipped key>, "")``.
    """
    if relative == EPOCH:
        return ("epoch", "", "")
    kind, _, rest = relative.partition("/")
    if kind in _DESIRED or kind == "instances":
        if is_name(rest):
            return (kind, rest, "")  # type: ignore[return-value]
    elif kind == "status":
        breaker, _, instance = rest.partition("/")
        if is_name(breaker) and is_name(instance):
            return ("status", breaker, instance)
    return ("invalid", clip(relative, 200), "")


def invalid_reason(relative: str) -> str:
    """Why a key is ``invalid``, for reports."""
    kind = relative.partition("/")[0]
    if kind in _DESIRED | _STATUS:
        return f'key "{clip(relative, 200)}" is ignored: its name {NAME_RULE}'
    return f'key "{clip(relative, 200)}" is ignored: it is not part of the layout'


def history_key(name: str, generation: int) -> str:
    """``history/<name>/<generation>``, zero-padded so that keys sort by generation."""
    return f"{HISTORY}{name}/{generation:0{GENERATION_DIGITS}d}"


def prefixes(scope: Scope) -> list[str]:
    """The relative prefixes (or exact keys, without a final ``/``) a scope covers."""
    desired, status, breaker = scope.desired, scope.status, scope.breaker
    keys = []
    if desired:
        if scope.specs:
            keys.append(f"breakers/{breaker}" if breaker else "breakers/")
        if scope.whole:
            keys += ["presets/", EPOCH]
    if status:
        if scope.whole:
            keys.append("instances/")
        if scope.records:
            keys.append(f"status/{breaker}/" if breaker else "status/")
    return keys


def decode(relative: str, value: bytes | None, version: int, origin: str) -> Document:
    """
    The :class:`Document` of a key's value: parsed within the limits, or its error.

    Args:
        relative: The key relative to the namespace.
        value: The bytes, or None for a deleted key.
        version: The backend's version of it.
        origin: The provenance (``etcd:/cbcontrol/ns/breakers/x@42``).
    """
    kind, name, instance = classify(relative)
    if kind == "invalid":  # deleted, it is no longer worth a report
        error = None if value is None else invalid_reason(relative)
        return Document("invalid", name, None, origin, version=version, error=error)
    if value is None:
        return Document(kind, name, None, origin, instance, version)
    limit = MAX_RECORD_BYTES if kind == "status" else MAX_DOCUMENT_BYTES
    scheme, _, where = origin.partition(":")
    what = f'{scheme} key "{where.rpartition("@")[0]}" at revision {version}'
    try:
        data = load_object(value, what, max_bytes=limit)
    except DocumentError as exc:
        return Document(kind, name, None, origin, instance, version, str(exc))
    return Document(kind, name, data, origin, instance, version)


def encode(data: Mapping[str, Any]) -> bytes:
    """A document as stored: compact JSON with sorted keys."""
    return json.dumps(data, separators=(",", ":"), sort_keys=True).encode()


def status_changes(
    instance_id: str,
    identity: Mapping[str, Any] | None,
    records: Mapping[str, Mapping[str, Any] | None],
) -> dict[str, bytes | None]:
    """The keys an instance's publish writes (None: deletes), relative."""
    changes: dict[str, bytes | None] = {}
    if identity is not None:
        changes[f"instances/{instance_id}"] = encode(identity)
    for breaker, record in records.items():
        key = f"status/{breaker}/{instance_id}"
        changes[key] = None if record is None else encode(record)
    return changes
