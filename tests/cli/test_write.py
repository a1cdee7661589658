"""cbctl's writes against both stores: set, unset, trip, bypass, reset, and waiting."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest

from tests.cli import lines, parse

if TYPE_CHECKING:
    from tests.cli import StoreEnv

APPLIED = re.compile(r"^applied on 1/1 instances in \d+ ms$")


def _spec(env: StoreEnv, name: str) -> dict[str, object]:
    """The stored spec document of a breaker, as the library reads it."""
    with env.open() as store:
        stored = store.get(name)
    return {} if stored is None else dict(stored.data)


def _instance(env: StoreEnv, name: str) -> dict[str, object]:
    """The only instance's view of a breaker, from `get -o json`."""
    (instance,) = parse(env.cbctl("get", name, "-o", "json"))["instances"]
    return instance


def test_set_writes_waits_and_reports(env: StoreEnv):
    """`set` writes the spec, waits for the live instance and says how long it took."""
    plane = env.instance("payment")

    result = env.cbctl(
        "set", "payment", "--max-failures", "3", "--reset-timeout", "45s"
    )

    output = lines(result.stdout)
    assert 0 == result.exit_code, result.output
    assert (
        "payment: generation 1 (max_failures: (unset) → 3, "
        "reset_timeout: (unset) → 45s)" == output[0]
    )
    assert APPLIED.match(output[1]), output
    assert 2 == len(output)
    assert "" == result.stderr
    assert 3 == plane.breaker("payment").config.max_failures
    assert 45.0 == plane.breaker("payment").config.reset_timeout


def test_set_json_reports_generation_and_acknowledgement(env: StoreEnv):
    """`set -o json` prints the documented write object."""
    plane = env.instance("payment")

    result = parse(env.cbctl("set", "payment", "--max-failures", "3", "-o", "json"))

    assert [
        "name",
        "generation",
        "changed",
        "applied",
        "instances",
        "elapsed_ms",
        "pending",
        "waited",
    ] == list(result)
    assert ("payment", 1, True, 1, 1, [], True) == (
        result["name"],
        result["generation"],
        result["changed"],
        result["applied"],
        result["instances"],
        result["pending"],
        result["waited"],
    )
    assert 1 == plane.observed_generation("payment")


def test_set_without_instances_succeeds_and_says_so(env: StoreEnv):
    """With no live instance the write succeeds, and the second line says why."""
    result = env.cbctl("set", "payment", "--max-failures", "3")

    assert 0 == result.exit_code
    assert [
        "payment: generation 1 (max_failures: (unset) → 3)",
        "no live instance has breaker payment yet",
    ] == lines(result.stdout)


def test_set_that_changes_nothing_writes_nothing(env: StoreEnv):
    """Setting what is stored (30s vs 30) leaves the spec and generation alone."""
    env.cbctl("set", "payment", "--reset-timeout", "30")

    result = env.cbctl("set", "payment", "--reset-timeout", "30s")

    assert 0 == result.exit_code
    assert ["payment unchanged (generation 1)"] == lines(result.stdout)
    assert 30 == _spec(env, "payment")["reset_timeout"]


def test_no_wait_writes_without_waiting(env: StoreEnv):
    """`--no-wait` prints only the write; JSON says it did not wait."""
    env.instance("payment")

    table = env.cbctl("set", "payment", "--max-failures", "3", "--no-wait")
    as_json = parse(
        env.cbctl("set", "payment", "--max-failures", "4", "--no-wait", "-o", "json")
    )

    assert ["payment: generation 1 (max_failures: (unset) → 3)"] == lines(table.stdout)
    assert (2, False, 1) == (
        as_json["generation"],
        as_json["waited"],
        as_json["instances"],
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--max-failures", "0"], "invalid --max-failures 0: must be >= 1"),
        (["--max-failures", "abc"], "invalid --max-failures 'abc': must be an integer"),
        (
            ["--window-type", "sliding"],
            "invalid --window-type 'sliding': must be one of 'count' or 'time'",
        ),
        (
            ["--reset-timeout", "5x"],
            (
                "invalid --reset-timeout '5x': must be a duration such as '30s', "
                "'1m30s', '250ms' or a number of seconds, got '5x'"
            ),
        ),
        (
            ["--failure-rate-threshold", "150"],
            "invalid --failure-rate-threshold 150: must be <= 100",
        ),
        (
            ["--max-failures", "3", "--timeout", "soon"],
            (
                "invalid --timeout 'soon': must be a duration such as '30s', "
                "'1m30s', '250ms' or a number of seconds"
            ),
        ),
        (
            [],
            (
                "nothing to set: give at least one field option "
                "(e.g. --max-failures 3) or --preset"
            ),
        ),
    ],
)
def test_bad_values_are_usage_errors_before_any_write(
    env: StoreEnv, args: list[str], message: str
):
    """A bad value exits 2 naming the flag, the value and the rule; nothing written."""
    result = env.cbctl("set", "payment", *args)

    assert 2 == result.exit_code
    assert f"error: {message}\n" == result.stderr
    assert "" == result.stdout
    assert {} == _spec(env, "payment")


def test_an_unknown_preset_is_a_usage_error(env: StoreEnv):
    """A preset the store does not define is refused by the store's validation."""
    result = env.cbctl("set", "payment", "--preset", "nope")

    assert 2 == result.exit_code
    assert (
        "error: invalid --preset 'nope': names a preset that is not defined; defined "
        "presets: analytics, default, payment, user-profile\n" == result.stderr
    )
    assert {} == _spec(env, "payment")


def test_none_clears_an_optional_field(env: StoreEnv):
    """`--request-timeout none` stores an explicit null, which instances apply."""
    plane = env.instance("payment")
    env.cbctl("set", "payment", "--request-timeout", "5s")

    result = env.cbctl("set", "payment", "--request-timeout", "none")

    assert 0 == result.exit_code, result.output
    assert None is _spec(env, "payment")["request_timeout"]
    assert None is plane.breaker("payment").config.request_timeout


def test_none_clears_an_optional_field_the_spec_does_not_set(file_env: StoreEnv):
    """`--failure-rate-threshold none` on a spec without it stores an explicit null."""
    file_env.cbctl("set", "payment", "--max-failures", "3")

    result = file_env.cbctl("set", "payment", "--failure-rate-threshold", "none")

    assert 0 == result.exit_code
    assert None is _spec(file_env, "payment")["failure_rate_threshold"]


def test_unset_brings_back_the_environment_value(
    env: StoreEnv, monkeypatch: pytest.MonkeyPatch
):
    """Removing a live field lets the env layer under it show through in `get`."""
    monkeypatch.setenv("PAYMENT_CB_MAX_FAILURES", "7")
    env.instance("payment")
    env.cbctl("set", "payment", "--max-failures", "3", "--reset-timeout", "45s")

    result = env.cbctl("unset", "payment", "--max-failures")

    effective = _instance(env, "payment")["effective"]
    assert 0 == result.exit_code, result.output
    assert (
        "payment: generation 2 (max_failures: 3 → (unset))" == lines(result.stdout)[0]
    )
    assert {"value": 7, "source": "env:PAYMENT_CB_MAX_FAILURES"} == effective[
        "max_failures"
    ]
    assert 45.0 == effective["reset_timeout"]["value"]


def test_unset_all_brings_back_the_preset_and_keeps_the_override(env: StoreEnv):
    """`unset --all` removes every config field; the trip stays."""
    env.instance("payment")
    env.cbctl("set", "payment", "--max-failures", "9", "--fallback", "none")
    env.cbctl("trip", "payment")

    result = env.cbctl("unset", "payment", "--all")

    view = parse(env.cbctl("get", "payment", "-o", "json"))
    assert 0 == result.exit_code, result.output
    assert {"value": 3, "source": "preset:payment"} == view["effective"]["max_failures"]
    assert "forced_open" == view["spec"]["override"]["mode"]
    assert "forced_open" == view["instances"][0]["state"]


def test_unset_without_flags_is_a_usage_error(env: StoreEnv):
    """`unset NAME` alone says what to give."""
    env.cbctl("set", "payment", "--max-failures", "3")

    result = env.cbctl("unset", "payment")

    assert 2 == result.exit_code
    assert (
        "error: nothing to unset: give field flags (e.g. --max-failures), --preset or "
        "--all\n" == result.stderr
    )


def test_trip_for_a_while_forces_open_until_then(
    env: StoreEnv, monkeypatch: pytest.MonkeyPatch
):
    """`trip --for 2s` writes an override that ends about 2 s from now."""
    monkeypatch.setenv("CBCTL_ACTOR", "ana")
    env.instance("payment")
    before = datetime.now(UTC)

    result = env.cbctl("trip", "payment", "--reason", "INC-42", "--for", "2s")

    override = _spec(env, "payment")["override"]
    assert isinstance(override, dict)
    until = datetime.fromisoformat(override.pop("until"))
    assert 0 == result.exit_code, result.output
    assert {"mode": "forced_open", "actor": "ana", "reason": "INC-42"} == override
    assert 1.9 <= (until - before).total_seconds() <= 3.0
    assert ("forced_open", "INC-42") == (
        _instance(env, "payment")["state"],
        _instance(env, "payment")["override_reason"],
    )


def test_bypass_forces_closed(env: StoreEnv):
    """`bypass` writes a forced_closed override that instances apply."""
    env.instance("payment")

    result = env.cbctl("bypass", "payment", "--reason", "PSP flapping")

    assert 0 == result.exit_code, result.output
    assert "forced_closed" == _instance(env, "payment")["state"]
    assert (
        "bypass" == parse(env.cbctl("history", "payment", "-o", "json"))[-1]["action"]
    )


def test_reset_clears_the_override_and_the_counters(env: StoreEnv):
    """`reset` lifts the override and bumps reset_generation: instances start over."""
    plane = env.instance("payment")
    breaker = plane.breaker("payment")
    for _ in range(2):
        breaker.call(lambda: None)
    env.cbctl("trip", "payment")

    result = env.cbctl("reset", "payment")

    spec = _spec(env, "payment")
    assert 0 == result.exit_code, result.output
    assert (1, None) == (spec["reset_generation"], spec.get("override"))
    assert "closed" == breaker.state.value
    assert 0 == breaker.snapshot().calls
    assert 2 == parse(env.cbctl("reset", "payment", "-o", "json"))["generation"] - 1


@pytest.mark.parametrize(
    "args",
    [
        ["unset", "paymnt", "--all"],
        ["trip", "paymnt"],
        ["bypass", "paymnt"],
        ["reset", "paymnt"],
    ],
)
def test_writes_to_an_unknown_breaker_exit_3(env: StoreEnv, args: list[str]):
    """Only `set` creates breakers; the other writes want a known name."""
    env.cbctl("set", "payment", "--max-failures", "3")

    result = env.cbctl(*args)

    assert 3 == result.exit_code
    assert (
        f'error: no breaker "paymnt" in {env.url}; did you mean "payment"?\n'
        == result.stderr
    )
    assert "" == result.stdout


def test_an_instance_that_does_not_apply_exits_4(env: StoreEnv):
    """A live instance stuck on an old generation makes the write exit 4, naming it."""
    env.instance("payment")
    stuck = env.fake_instance("payment")

    result = env.cbctl("set", "payment", "--max-failures", "3", "--timeout", "300ms")

    assert 4 == result.exit_code
    assert (
        "payment: generation 1 (max_failures: (unset) → 3)" == lines(result.stdout)[0]
    )
    assert re.match(r"^applied on 1/2 instances in \d+ ms$", lines(result.stdout)[1])
    assert (
        "error: payment generation 1 not applied by 1/2 instances within 300ms: "
        f"{stuck}\n" == result.stderr
    )


def test_not_applied_json_lists_the_pending_instances(env: StoreEnv):
    """With `-o json`, exit 4 still prints the write object with `pending`."""
    stuck = env.fake_instance("payment")

    result = env.cbctl("trip", "payment", "--timeout", "0.2s", "-o", "json")

    assert 4 == result.exit_code
    assert ([stuck], 0, 1) == (
        parse(result)["pending"],
        parse(result)["applied"],
        parse(result)["instances"],
    )
