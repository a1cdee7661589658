"""The plain facts of `cbcontrol.config._layout` agree with the models they describe."""

from __future__ import annotations

import types
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel

from cbcontrol.config import (
    CONFIG_FIELDS,
    DURATION_FIELDS,
    FLOAT_FIELDS,
    BreakerConfig,
    InstanceStatus,
    parse_duration,
)
from cbcontrol.config._layout import STATUS_FORMAT

# The field tree of InstanceStatus when STATUS_FORMAT was last bumped. If this test
# fails, the status layout changed: bump STATUS_FORMAT in cbcontrol/config/_layout.py
# (readers then validate statuses of the old format) and update this tree.
STATUS_LAYOUT: dict[str, Any] = {
    "format": "int",
    "instance_id": "str",
    "app": "str",
    "host": "str",
    "pid": "int",
    "started_at": "AwareDatetime",
    "heartbeat_at": "AwareDatetime",
    "version": "str",
    "store": "str",
    "breakers": {
        "state": "str",
        "mode": "Literal['none', 'forced_open', 'forced_closed']",
        "override_reason": "str | None",
        "observed_generation": "int",
        "effective": {"value": "Any", "source": "str"},
        "stats": {
            "window_calls": "int",
            "failure_rate": "float | None",
            "slow_call_rate": "float | None",
            "consecutive_failures": "int",
        },
        "counters": {
            "calls": "int",
            "successes": "int",
            "failures": "int",
            "ignored": "int",
            "rejections": "int",
            "fallbacks": "int",
            "slow_calls": "int",
        },
        "times_opened": "int",
        "last_state_change": "AwareDatetime | None",
        "retry_after_s": "float | None",
        "error": "str | None",
    },
    "errors": "dict[str, str]",
}
STATUS_LAYOUT_FORMAT = 1


def _walk(annotation: Any, metadata: tuple[Any, ...] = ()) -> list[tuple[Any, tuple]]:
    """Every type inside ``annotation``, with the Annotated metadata around it."""
    origin = get_origin(annotation)
    if origin is Annotated:
        base, *extra = get_args(annotation)
        return _walk(base, (*metadata, *extra))
    if origin in (Union, types.UnionType):
        return [t for arg in get_args(annotation) for t in _walk(arg, metadata)]
    return [(annotation, metadata)]


def _layout(model: type[BaseModel]) -> dict[str, Any]:
    """Field name -> type text, or the nested layout of a model (or dict of models)."""
    tree: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        annotation = info.annotation
        nested = annotation if isinstance(annotation, type) else None
        if get_origin(annotation) is dict:
            nested = get_args(annotation)[1]
        if isinstance(nested, type) and issubclass(nested, BaseModel):
            tree[name] = _layout(nested)
        else:
            plain = type(annotation) is type  # `int`, not `dict[str, str]`
            text = annotation.__name__ if plain else str(annotation)
            tree[name] = text.replace("typing.", "").replace("pydantic.types.", "")
    return tree


def test_config_fields_are_breaker_configs_fields_in_order():
    """CONFIG_FIELDS lists every BreakerConfig field, in declaration order."""
    assert tuple(BreakerConfig.model_fields) == CONFIG_FIELDS


def test_duration_and_float_fields_are_the_models():
    """DURATION_FIELDS are the fields parsed as durations; FLOAT_FIELDS the floats."""
    durations = set()
    floats = set()
    for name, info in BreakerConfig.model_fields.items():
        for kind, metadata in _walk(info.annotation, tuple(info.metadata)):
            if any(getattr(m, "func", None) is parse_duration for m in metadata):
                durations.add(name)
            elif kind is float:
                floats.add(name)

    assert (durations, floats) == (set(DURATION_FIELDS), set(FLOAT_FIELDS))


def test_status_format_is_bumped_with_the_status_layout():
    """A changed InstanceStatus layout comes with a new STATUS_FORMAT."""
    assert (STATUS_LAYOUT_FORMAT, STATUS_LAYOUT) == (
        STATUS_FORMAT,
        _layout(InstanceStatus),
    )


def test_statuses_carry_their_format():
    """A published status says which format it is in."""
    status = InstanceStatus.model_validate(
        {
            "instance_id": "i",
            "app": "a",
            "host": "h",
            "pid": 1,
            "started_at": "2026-11-27T00:00:00Z",
            "heartbeat_at": "2026-11-27T00:00:00Z",
        }
    )

    assert STATUS_FORMAT == status.model_dump(mode="json")["format"]
