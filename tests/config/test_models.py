"""Config models: durations, validation rules and the messages users see."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from cbcontrol.config import BreakerConfig, BreakerSpec, format_duration, parse_duration
from cbcontrol.config._builder import validate_spec
from cbcontrol.exceptions import ConfigError


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30.0),
        ("1m30s", 90.0),
        ("250ms", 0.25),
        ("2h", 7200.0),
        ("1.5s", 1.5),
        ("45", 45.0),
        (12, 12.0),
        (0.5, 0.5),
        (timedelta(minutes=2), 120.0),
    ],
)
def test_durations_parse_like_operators_write_them(
    text: object, seconds: float
) -> None:
    """Durations accept Go-style strings, numbers and timedelta."""
    assert seconds == parse_duration(text)


@pytest.mark.parametrize("bad", ["soon", "10x", True, None, "nan", [1]])
def test_bad_durations_name_the_accepted_forms(bad: object) -> None:
    """A bad duration says which forms are accepted and echoes the value."""
    with pytest.raises(
        ValueError,
        match=(
            r"^must be a duration such as '30s', '1m30s', '250ms' or a number of "
            rf"seconds, got {bad!r}$".replace("[", r"\[").replace("]", r"\]")
        ),
    ):
        parse_duration(bad)


@pytest.mark.parametrize(
    ("seconds", "text"), [(90.0, "1m30s"), (0.25, "250ms"), (3600.0, "1h"), (0.0, "0s")]
)
def test_durations_format_back(seconds: float, text: str) -> None:
    """Seconds render the way they are written."""
    assert text == format_duration(seconds)


def test_defaults_are_the_articles() -> None:
    """BreakerConfig() opens after 5 failures for 30 s, 10 s request timeout."""
    config = BreakerConfig()

    assert (5, 30.0, 10.0, 300.0) == (
        config.max_failures,
        config.reset_timeout,
        config.request_timeout,
        config.cache_ttl,
    )


def test_config_is_frozen_and_strict() -> None:
    """The config cannot be mutated, and text is not silently taken for numbers."""
    config = BreakerConfig()

    with pytest.raises(ValidationError):
        config.max_failures = 3  # type: ignore[misc]
    with pytest.raises(ValidationError):
        BreakerConfig(max_failures="3")  # type: ignore[arg-type]


def test_window_limits_are_enforced() -> None:
    """A count window larger than 100,000 calls is refused with the limit."""
    with pytest.raises(ValidationError, match="window_size must be <= 100000 calls"):
        BreakerConfig(window_size=100_001)


def test_spec_errors_name_breaker_field_value_source_and_rule() -> None:
    """A bad spec field is reported in the house template."""
    with pytest.raises(
        ConfigError,
        match=(
            r'^breaker "payment": field "max_failures" from source '
            r'"etcd:/cbcontrol/default/breakers/payment@42" must be >= 1, got 0$'
        ),
    ):
        validate_spec(
            "payment",
            {"max_failures": 0},
            "etcd:/cbcontrol/default/breakers/payment@42",
        )


def test_file_spec_errors_point_at_the_field() -> None:
    """A file source's provenance points at the field inside the document."""
    with pytest.raises(ConfigError) as info:
        validate_spec(
            "payment", {"reset_timeout": "soon"}, "file:/x.yaml#breakers.payment"
        )

    assert "file:/x.yaml#breakers.payment.reset_timeout" == info.value.source
    assert ("reset_timeout", "soon") == (info.value.field, info.value.value)


def test_unknown_spec_fields_get_a_did_you_mean() -> None:
    """A misspelt field in a spec suggests the right name."""
    with pytest.raises(
        ConfigError, match=r"is not a known field; did you mean 'max_failures'\?"
    ):
        validate_spec("payment", {"max_failure": 3}, "etcd:/k@1")


def test_null_clears_only_optional_fields() -> None:
    """null disables an optional threshold but cannot unset a required number."""
    spec = validate_spec("svc", {"failure_rate_threshold": None}, "etcd:/k@1")

    with pytest.raises(ConfigError, match=r'field "window_size" .* cannot be null'):
        validate_spec("svc", {"window_size": None}, "etcd:/k@1")
    assert {"failure_rate_threshold": None} == spec.config_values()


def test_override_until_must_carry_a_zone() -> None:
    """An override expiry without a time zone is refused."""
    with pytest.raises(ConfigError, match=r'field "override.until"'):
        validate_spec(
            "svc",
            {"override": {"mode": "forced_open", "until": "2026-11-27T12:00:00"}},
            "etcd:/k@1",
        )

    ok = BreakerSpec.model_validate(
        {"override": {"mode": "forced_open", "until": "2026-11-27T12:00:00Z"}}
    )
    assert ok.override is not None
    assert "2026-11-27T12:00:00+00:00" == ok.override.until.isoformat()  # type: ignore[union-attr]
