"""The environment layer: <SERVICE>_CB_<FIELD> and CB_<FIELD>."""

from __future__ import annotations

import pytest

from cbcontrol.config import ConfigBuilder
from cbcontrol.config._env import EnvSource, env_prefix
from cbcontrol.exceptions import ConfigError


@pytest.mark.parametrize(
    ("name", "prefix"),
    [("payment", "PAYMENT_CB_"), ("user-profile", "USER_PROFILE_CB_")],
)
def test_prefix_is_the_upper_cased_service_name(name: str, prefix: str) -> None:
    """Service names map to variable prefixes with `-` turned into `_`."""
    assert prefix == env_prefix(name)


def test_service_variables_win_over_global_ones() -> None:
    """PAYMENT_CB_X beats CB_X; CB_X applies to every breaker."""
    env = {"CB_MAX_FAILURES": "9", "PAYMENT_CB_MAX_FAILURES": "3", "CB_JITTER": "0.2"}

    payment, errors = EnvSource(env).layer("payment")
    other, _ = EnvSource(env).layer("analytics")

    assert [] == errors
    assert {"max_failures": 3, "jitter": 0.2} == payment.values
    assert "env:PAYMENT_CB_MAX_FAILURES" == payment.sources["max_failures"]
    assert {"max_failures": 9, "jitter": 0.2} == other.values


def test_values_are_parsed_from_text() -> None:
    """Durations, numbers, literals and null words are parsed like config files."""
    env = {
        "SVC_CB_RESET_TIMEOUT": "1m30s",
        "SVC_CB_FAILURE_RATE_THRESHOLD": "50",
        "SVC_CB_WINDOW_TYPE": "time",
        "SVC_CB_REQUEST_TIMEOUT": "none",
        "SVC_CB_PRESET": "analytics",
    }

    layer, errors = EnvSource(env).layer("svc")

    assert [] == errors
    assert {
        "reset_timeout": 90.0,
        "failure_rate_threshold": 50.0,
        "window_type": "time",
        "request_timeout": None,
    } == layer.values
    assert ("analytics", "env:SVC_CB_PRESET") == (layer.preset, layer.preset_source)


def test_a_bad_value_is_reported_and_skipped() -> None:
    """A bad variable names itself, the value and the rule; the layer below shows."""
    env = {"PAYMENT_CB_MAX_FAILURES": "three", "PAYMENT_CB_JITTER": "0.1"}

    layer, errors = EnvSource(env).layer("payment")

    assert {"jitter": 0.1} == layer.values
    assert [
        (
            'breaker "payment": field "max_failures" from source '
            "\"env:PAYMENT_CB_MAX_FAILURES\" must be an integer, got 'three'"
        )
    ] == [str(e) for e in errors]


def test_an_out_of_range_value_names_the_rule() -> None:
    """PAYMENT_CB_MAX_FAILURES=0 is rejected with the >= 1 rule."""
    layer, errors = EnvSource({"PAYMENT_CB_MAX_FAILURES": "0"}).layer("payment")

    assert {} == layer.values
    assert [
        (
            'breaker "payment": field "max_failures" from source '
            "\"env:PAYMENT_CB_MAX_FAILURES\" must be >= 1, got '0'"
        )
    ] == [str(e) for e in errors]


def test_an_unknown_service_variable_suggests_the_right_one() -> None:
    """A misspelt PAYMENT_CB_ variable is reported with a did-you-mean."""
    _, errors = EnvSource({"PAYMENT_CB_MAX_FAILURE": "3"}).layer("payment")

    assert 1 == len(errors)
    assert str(errors[0]).startswith(
        'breaker "payment": field "PAYMENT_CB_MAX_FAILURE" from source '
        '"env:PAYMENT_CB_MAX_FAILURE" is not a known setting; '
        "did you mean PAYMENT_CB_MAX_FAILURES?"
    )


def test_unknown_global_variables_are_left_alone() -> None:
    """CB_ variables that are not settings may belong to other software."""
    layer, errors = EnvSource({"CB_SOMETHING_ELSE": "x"}).layer("payment")

    assert ([], {}) == (errors, dict(layer.values))


def test_builder_raises_on_bad_environment() -> None:
    """The explicit builder refuses a bad variable instead of skipping it."""
    builder = ConfigBuilder("payment", environ={"PAYMENT_CB_JITTER": "2"})

    with pytest.raises(
        ConfigError,
        match=(
            r'^breaker "payment": field "jitter" from source "env:PAYMENT_CB_JITTER" '
            r"must be < 1, got '2'$"
        ),
    ):
        builder.from_environment()


def test_os_environ_is_read_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without an explicit mapping the process environment is read."""
    monkeypatch.setenv("INVENTORY_CB_MAX_FAILURES", "8")

    layer, _ = EnvSource().layer("inventory")

    assert {"max_failures": 8} == layer.values
