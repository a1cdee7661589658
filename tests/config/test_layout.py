"""The plain facts of `cbcontrol.config._layout` agree with the models they describe."""

from __future__ import annotations

import types
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
    parse_duration,
)
from cbcontrol.config._layout import (
    ANY,
    SPEC_SHAPE,
    STATUS_FORMAT,
    Partial,
    as_read,
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
    if isinstance(shape, frozenset):
        return st.sampled_from(sorted(shape))
    simple: dict[object, st.SearchStrategy[Any]] = {
        None: st.none(),
        ANY: st.one_of(st.none(), st.integers(), st.floats(allow_nan=False), _NAMES),
        int: st.integers(min_value=0, max_value=2**40),
        float: st.floats(min_value=0, max_value=1e9),
        str: _NAMES,
    }
    return simple[shape]


_NAMES = st.text("abcz-_", max_size=6)


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


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(
    values=st.fixed_dictionaries(
        {},
        optional={
            "max_failures": st.integers(1, 10**6),
            "failure_rate_threshold": st.integers(1, 100) | st.floats(0.5, 100),
            "reset_timeout": st.sampled_from(["30s", "1m30s", "250ms", 45, 2.5]),
            "request_timeout": st.none() | st.just("10s"),
            "fallback": st.sampled_from(["none", "cache"]),
            "jitter": st.floats(0, 0.99),
        },
    )
)
def test_as_read_reads_values_as_the_model_does(values: dict[str, Any]):
    """A value the model accepts reads, without the model, as the model holds it."""
    spec = BreakerSpec.model_validate(values)

    assert spec.model_dump(mode="json", exclude_unset=True) == {
        name: as_read(name, value) for name, value in values.items()
    }


def test_instances_publish_their_format():
    """What a running process reports says which layout it is in."""
    plane = cbcontrol.connect("memory://", app="x")
    try:
        status = plane.status().model_dump(mode="json")
    finally:
        plane.close()

    assert STATUS_FORMAT == status["format"]
