"""
Plain facts about the stored documents, for readers that do not load the models.

``cbctl get`` reads a store without importing pydantic (about 100 ms with the
models): it needs the names of the config fields, which of them hold durations or
floats, and the shape of a spec's other keys, to show a document that instances
applied as the library reads it. The models are the source of truth;
``tests/config/test_layout.py`` keeps these in step with them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = [
    "CONFIG_FIELDS",
    "DURATION_FIELDS",
    "FLOAT_FIELDS",
    "SPEC_SHAPE",
    "STATUS_FORMAT",
    "STATUS_TTL_S",
    "as_read",
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

STATUS_FORMAT: Final = 2
"""
The layout of reported state (``docs/store.md``), published in each identity.

2: an identity under ``instances/<id>`` and one record per breaker under
``status/<breaker>/<id>``; 1: one ``InstanceStatus`` document per instance.
"""


def as_read(name: str, value: object) -> object:
    """
    A stored config value as the library holds it (``"30s"`` -> ``30.0``).

    For a value the library accepted; anything else raises ``ValueError`` or
    ``TypeError`` (a duration that is not one).
    """
    if value is None:
        return None
    if name in DURATION_FIELDS:
        from cbcontrol.config._duration import parse_duration

        return parse_duration(value)
    if name in FLOAT_FIELDS and type(value) is int:
        return float(value)
    return value


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
class Partial:
    """A JSON object whose keys are some of ``keys`` (a dict of shapes)."""

    keys: dict[str, object]


ANY: Final = "any"
"""Any JSON value."""

_MODES = frozenset({"none", "forced_open", "forced_closed"})
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
    ``int``), ``None``, :data:`ANY`, a frozenset of allowed strings, a tuple of
    alternatives, a dict (an object with exactly these keys), or a :class:`Partial`.
    """
    if isinstance(shape, tuple):
        return any(conforms(value, s) for s in shape)
    if isinstance(shape, dict | Partial):
        return isinstance(value, dict) and _members_conform(value, shape)
    if isinstance(shape, frozenset):
        return value in shape
    if shape is None or shape == ANY:
        return shape is not None or value is None
    return type(value) is shape


def _members_conform(value: dict[object, object], shape: object) -> bool:
    if isinstance(shape, Partial):
        return all(
            k in shape.keys and conforms(v, shape.keys[str(k)])
            for k, v in value.items()
        )
    assert isinstance(shape, dict)  # noqa: S101 - conforms() sends only these
    return value.keys() == shape.keys() and all(
        conforms(value[k], s) for k, s in shape.items()
    )
