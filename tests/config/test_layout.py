"""The plain facts of `cbcontrol.config._layout` agree with the models they describe."""

from __future__ import annotations

import types
from datetime import UTC
from typing import Annotated, Any, Union, get_args, get_origin

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cbcontrol
from cbcontrol.config import (
    CONFIG_FIELDS,
    DURATION_FIELDS,
    FLOAT_FIELDS,
    BreakerConfig,
    BreakerSpec,
    InstanceStatus,
    parse_duration,
)
from cbcontrol.config._layout import (
    ANY,
    SPEC_SHAPE,
    STATUS_FORMAT,
    STATUS_SHAPE,
    TIME,
    MapOf,
    Partial,
    conforms,
)


def _walk(annotation: Any, metadata: tuple[Any, ...] = ()) -> list[tuple[Any, tuple]]:
    """Every type inside ``annotation``, with the Annotated metadata around it."""
    origin = get_origin(annotation)
    if origin is Annotated:
        base, *extra = get_args(annotation)
        return _walk(base, (*metadata, *extra))
    if origin in (Union, types.UnionType):
        return [t for arg in get_args(annotation) for t in _walk(arg, metadata)]
    return [(annotation, metadata)]


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


def _json_of(shape: object) -> st.SearchStrategy[Any]:
    """JSON values of ``shape`` (see cbcontrol.config._layout.conforms)."""
    if isinstance(shape, tuple):
        return st.one_of([_json_of(s) for s in shape])
    if isinstance(shape, dict):
        return st.fixed_dictionaries({k: _json_of(s) for k, s in shape.items()})
    if isinstance(shape, Partial):
        return st.fixed_dictionaries(
            {}, optional={k: _json_of(s) for k, s in shape.keys.items()}
        )
    if isinstance(shape, MapOf):
        return st.dictionaries(_NAMES, _json_of(shape.item), max_size=2)
    if isinstance(shape, frozenset):
        return st.sampled_from(sorted(shape))
    simple: dict[object, st.SearchStrategy[Any]] = {
        None: st.none(),
        ANY: st.one_of(st.none(), st.integers(), st.floats(allow_nan=False), _NAMES),
        TIME: st.datetimes(timezones=st.just(UTC)).map(
            lambda t: t.isoformat().replace("+00:00", "Z")
        ),
        int: st.integers(min_value=0, max_value=2**40),
        float: st.floats(min_value=0, max_value=1e9),
        str: _NAMES,
    }
    return simple[shape]


_NAMES = st.text("abcz-_", max_size=6)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(document=_json_of(STATUS_SHAPE))
def test_a_status_of_the_documented_shape_is_what_the_model_dumps(
    document: dict[str, Any],
):
    """
    STATUS_SHAPE is exactly InstanceStatus as JSON: such a document validates to itself.

    If this fails, the status layout changed: change STATUS_SHAPE and bump
    STATUS_FORMAT in cbcontrol/config/_layout.py (readers then validate older ones).
    """
    dumped = InstanceStatus.model_validate(document).model_dump(mode="json")

    assert (document, True) == (dumped, conforms(dumped, STATUS_SHAPE))


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(
    document=_json_of(SPEC_SHAPE).map(
        lambda d: {k: v for k, v in d.items() if k not in CONFIG_FIELDS}
    )
)
def test_a_spec_of_the_documented_shape_keeps_its_other_keys(
    document: dict[str, Any],
):
    """SPEC_SHAPE's keys besides the config fields are kept by BreakerSpec as given."""
    dumped = BreakerSpec.model_validate(document).model_dump(
        mode="json", exclude_unset=True
    )

    assert document == dumped


@pytest.mark.parametrize(
    ("document", "shape"),
    [
        ({"format": 1}, STATUS_SHAPE),
        ({"labels": {}}, SPEC_SHAPE),
        (
            {"override": {"mode": "forced_open", "until": "2026-11-27T12:00:00Z"}},
            SPEC_SHAPE,
        ),
        ({"override": {"mode": "open"}}, SPEC_SHAPE),
        ({"preset": 5}, SPEC_SHAPE),
        ({"reset_generation": True}, SPEC_SHAPE),
        ({"generation": 1.0}, SPEC_SHAPE),
    ],
    ids=str,
)
def test_what_a_model_would_change_or_reject_does_not_conform(
    document: dict[str, Any], shape: object
):
    """Missing or unknown keys, wrong types, values the model rewrites: no shape."""
    assert not conforms(document, shape)


@pytest.mark.parametrize(
    "time",
    ["2026-11-27T06:28:04.294000", "2026-11-27T06:28:04+00:00", "yesterday"],
)
def test_a_time_not_written_as_pydantic_writes_it_does_not_conform(time: str):
    """Naive times and other spellings of UTC are left to the model."""
    assert not conforms(time, TIME)


def test_instances_publish_their_format():
    """What a running process publishes says which layout it is in."""
    plane = cbcontrol.connect("memory://", app="x")
    try:
        status = plane.status().model_dump(mode="json")
    finally:
        plane.close()

    assert (STATUS_FORMAT, True) == (status["format"], conforms(status, STATUS_SHAPE))
