"""
Plain facts about the stored documents, for readers that do not load the models.

``cbctl get`` reads a store without importing pydantic (about 40 ms of a ~100 ms
run): it needs the names of the config fields, which of them hold durations or
floats, and the exact shape of an instance status and of a spec's other keys, to
tell a document it can take as it is from one it must validate. The models are the
source of truth; ``tests/config/test_layout.py`` keeps these in step with them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

__all__ = [
    "CONFIG_FIELDS",
    "DURATION_FIELDS",
    "FLOAT_FIELDS",
    "SPEC_SHAPE",
    "STATUS_FORMAT",
    "STATUS_SHAPE",
    "STATUS_TTL_S",
    "conforms",
    "field_source",
]

CONFIG_FIELDS: Final[tuple[str, ...]] = (
    "max_failures",
    "failure_rate_threshold",
    "slow_call_rate_threshold",
    "slow_call_duration",
    "window_type",
    "window_size",
    "minimum_calls",
    "reset_timeout",
    "backoff_multiplier",
    "max_reset_timeout",
    "jitter",
    "half_open_max_calls",
    "success_threshold",
    "half_open_max_wait",
    "request_timeout",
    "fallback",
    "cache_ttl",
    "cache_max_entries",
    "fallback_url",
)
"""The tunable fields of ``BreakerConfig``, in declaration order."""

DURATION_FIELDS: Final = frozenset(
    {
        "slow_call_duration",
        "reset_timeout",
        "max_reset_timeout",
        "half_open_max_wait",
        "request_timeout",
        "cache_ttl",
    }
)
"""Fields written as durations (``30s``) and held as float seconds."""

FLOAT_FIELDS: Final = frozenset(
    {
        "failure_rate_threshold",
        "slow_call_rate_threshold",
        "backoff_multiplier",
        "jitter",
    }
)
"""Fields held as floats (an integer given is stored as written, read as a float)."""

STATUS_TTL_S: Final = 10
"""Seconds a status lives without a heartbeat (the etcd lease TTL)."""

STATUS_FORMAT: Final = 1
"""
The layout of ``InstanceStatus`` documents, published in each as ``format``.

Bump it whenever a field is added, removed or changes type anywhere in the status
(and change :data:`STATUS_SHAPE`); statuses written before formats existed read 0.
"""


def field_source(origin: str, field: str | None) -> str:
    """
    The provenance of one field of the document at ``origin``.

    Files address each field (``file:/x.yaml#breakers.payment.max_failures``); an etcd
    key holds the whole document at one revision, the provenance of all its fields.
    """
    if field is None or not origin.startswith(("file:", "code:")):
        return origin
    return f"{origin}.{field}" if "#" in origin else f"{origin}#{field}"


# -- shapes: what a document holds, as JSON, once the models dumped it ---------------


@dataclass(frozen=True, slots=True)
class MapOf:
    """A JSON object with any string keys, each value of shape ``item``."""

    item: object


@dataclass(frozen=True, slots=True)
class Partial:
    """A JSON object whose keys are some of ``keys`` (a dict of shapes)."""

    keys: dict[str, object]


ANY: Final = "any"
"""Any JSON value."""
TIME: Final = "time"
"""A time with a zone, written as pydantic writes it (``...T06:28:04.294000Z``)."""

_STATS = {
    "window_calls": int,
    "failure_rate": (float, None),
    "slow_call_rate": (float, None),
    "consecutive_failures": int,
}
_COUNTERS = dict.fromkeys(
    ("calls", "successes", "failures", "ignored", "rejections", "fallbacks"), int
) | {"slow_calls": int}
_MODES = frozenset({"none", "forced_open", "forced_closed"})
_BREAKER = {
    "state": str,
    "mode": _MODES,
    "override_reason": (str, None),
    "observed_generation": int,
    "effective": MapOf({"value": ANY, "source": str}),
    "stats": _STATS,
    "counters": _COUNTERS,
    "times_opened": int,
    "last_state_change": (TIME, None),
    "retry_after_s": (float, None),
    "error": (str, None),
}
STATUS_SHAPE: Final = {
    "format": int,
    "instance_id": str,
    "app": str,
    "host": str,
    "pid": int,
    "started_at": TIME,
    "heartbeat_at": TIME,
    "version": str,
    "store": str,
    "breakers": MapOf(_BREAKER),
    "errors": MapOf(str),
}
"""``InstanceStatus.model_dump(mode="json")``: exactly these keys and JSON types."""

SPEC_SHAPE: Final = Partial(
    {
        "preset": (str, None),
        "override": (
            None,
            Partial(
                {
                    "mode": _MODES,
                    "reason": (str, None),
                    "actor": (str, None),
                    "until": None,  # a time: pydantic rewrites it, so validate
                }
            ),
        ),
        "reset_generation": (int, None),
        "generation": (int, None),
        "updated_by": (str, None),
        "updated_at": (str, None),
        "reason": (str, None),
    }
    | dict.fromkeys(CONFIG_FIELDS, ANY)
)
"""
A ``BreakerSpec`` document that its model keeps as it is, config values aside.

The config fields' values are checked elsewhere (against what instances applied):
durations and floats are rewritten by the model.
"""


def conforms(value: object, shape: object) -> bool:
    """
    Whether the JSON ``value`` has ``shape``.

    A shape is a Python type (exactly: ``1`` is not a ``float``, ``True`` not an
    ``int``), ``None``, :data:`ANY`, :data:`TIME`, a frozenset of allowed strings, a
    tuple of alternatives, a dict (an object with exactly these keys), or a
    :class:`MapOf` or :class:`Partial`.
    """
    if isinstance(shape, tuple):
        return any(conforms(value, s) for s in shape)
    if isinstance(shape, dict | Partial | MapOf):
        return isinstance(value, dict) and _members_conform(value, shape)
    if isinstance(shape, frozenset):
        return value in shape
    if shape is None or shape == ANY:
        return shape is not None or value is None
    if shape == TIME:
        return isinstance(value, str) and _is_pydantic_time(value)
    return type(value) is shape


def _members_conform(value: dict[object, object], shape: object) -> bool:
    if isinstance(shape, MapOf):
        return all(
            isinstance(k, str) and conforms(v, shape.item) for k, v in value.items()
        )
    if isinstance(shape, Partial):
        return all(
            k in shape.keys and conforms(v, shape.keys[str(k)])
            for k, v in value.items()
        )
    assert isinstance(shape, dict)  # noqa: S101 - conforms() sends only these
    return value.keys() == shape.keys() and all(
        conforms(value[k], s) for k, s in shape.items()
    )


def _is_pydantic_time(text: str) -> bool:
    """A time with a zone, in the form pydantic writes it back."""
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return False
    written = parsed.isoformat().replace("+00:00", "Z")
    return parsed.tzinfo is not None and written == text
