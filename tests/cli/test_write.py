"""cbctl's writes: set, unset, trip, bypass, reset, promote; targeting; dry runs."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.cli import lines, parse

if TYPE_CHECKING:
    from tests.cli import StoreEnv


def test_set_writes_waits_and_reports(env: StoreEnv):
    """Every live instance applies it; cbctl says how many, in one line each."""
    planes = [env.instance("payment"), env.instance("payment")]

    result = env.cbctl(
        "set", "payment", "--max-failures", "4", "--reset-timeout", "45s"
    )

    assert 0 == result.exit_code, result.output
    first, second = lines(result.stdout)
    assert (
        "payment: generation 1 (max_failures: - → 4, reset_timeout: - → 45s)" == first
    )
    assert second.startswith("applied on 2/2 instances in ")
    assert [4, 4] == [p.breaker("payment").config.max_failures for p in planes]


def test_set_json_reports_generation_and_acknowledgement(env: StoreEnv):
    """`-o json`: name, generation, applied of instances, elapsed, changes."""
    env.instance("payment")

    data = parse(env.cbctl("set", "payment", "--max-failures", "4", "-o", "json"))

    assert {
        "name": "payment",
        "action": "set",
        "generation": 1,
        "changed": True,
        "dry_run": False,
        "selector": None,
        "applied": 1,
        "instances": 1,
        "live": 1,
        "pending": [],
        "waited": True,
        "changes": {"max_failures": [None, 4]},
        "notes": [],
    } == {k: v for k, v in data.items() if k != "elapsed_ms"}


def test_percentages_take_a_percent_sign(env: StoreEnv):
    """`--failure-rate-threshold 50%` is 50 (percent); shown as 50%."""
    env.instance("payment")

    result = env.cbctl("set", "payment", "--failure-rate-threshold", "50%")
    view = parse(env.cbctl("get", "payment", "-o", "json"))

    assert 0 == result.exit_code, result.output
    assert "failure_rate_threshold: - → 50%" in result.stdout
    assert 50.0 == view["effective"]["failure_rate_threshold"]["value"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--max-failures", "0"], "error: invalid --max-failures 0: must be >= 1\n"),
        (
            ["--max-failures", "three"],
            "error: invalid --max-failures three: must be an integer >= 1, or none\n",
        ),
        (
            ["--reset-timeout", "soon"],
            (
                "error: invalid --reset-timeout soon: must be a duration (30s, 1m30s, "
                "250ms, or seconds) > 0\n"
            ),
        ),
        (
            ["--window-size", "none"],
            (
                "error: invalid --window-size none: cannot be none; it must be an "
                "integer >= 1\n"
            ),
        ),
        (
            ["--failure-rate-threshold", "150%"],
            "error: invalid --failure-rate-threshold 150: must be <= 100\n",
        ),
    ],
)
def test_bad_values_are_usage_errors_before_any_write(
    file_env: StoreEnv, args: list[str], expected: str
):
    """Exit 2 naming the flag, the value and the rule; nothing is written."""
    result = file_env.cbctl("set", "payment", *args)

    assert 2 == result.exit_code
    assert expected == result.stderr
    assert [] == parse(file_env.cbctl("history", "-o", "json"))


def test_an_unknown_preset_is_a_usage_error(file_env: StoreEnv):
    """`--preset nope` names the presets there are."""
    result = file_env.cbctl("set", "payment", "--preset", "nope")

    assert 2 == result.exit_code
    assert result.stderr.startswith(
        "error: invalid --preset nope: names a preset that is not defined; "
        "defined presets: analytics, default, payment, user-profile"
    )


def test_none_clears_an_optional_field(env: StoreEnv):
    """`--request-timeout none` stores null: no timeout."""
    plane = env.instance("payment")

    result = env.cbctl("set", "payment", "--request-timeout", "none")

    assert 0 == result.exit_code, result.output
    assert "request_timeout: - → -" not in result.stdout
    assert plane.breaker("payment").config.request_timeout is None


def test_unset_says_the_value_that_now_shows_through(env: StoreEnv):
    """After unset: `max_failures is now 9 (from env:...)`."""
    env.instance("payment", environ={"PAYMENT_CB_MAX_FAILURES": "9"})
    env.cbctl("set", "payment", "--max-failures", "4")

    result = env.cbctl("unset", "payment", "--max-failures")

    assert 0 == result.exit_code, result.output
    assert (
        "payment: generation 2 (max_failures: 4 → (removed))" == lines(result.stdout)[0]
    )
    assert "max_failures is now 9 (from env:PAYMENT_CB_MAX_FAILURES)" in result.stdout


def test_unset_without_flags_is_a_usage_error(env: StoreEnv):
    """Nothing named: exit 2."""
    env.instance("payment")

    result = env.cbctl("unset", "payment")

    assert 2 == result.exit_code
    assert result.stderr.startswith("error: nothing to unset")


def test_trip_for_a_while_forces_open_until_then(env: StoreEnv):
    """`trip --for 30m` records the expiry; instances are forced open."""
    plane = env.instance("payment")

    result = env.cbctl("trip", "payment", "--reason", "INC-42", "--for", "30m")
    view = parse(env.cbctl("get", "payment", "-o", "json"))

    assert 0 == result.exit_code, result.output
    assert "forced_open" == plane.breaker("payment").state.value
    assert "INC-42" == view["spec"]["override"]["reason"]
    assert view["spec"]["override"]["until"].endswith("Z")
    assert "forced_open(29m" in env.cbctl("list").stdout


def test_bypass_then_reset_closes_with_zeroed_counters(env: StoreEnv):
    """bypass forces closed; reset lifts it and zeroes counters."""
    plane = env.instance("payment")
    breaker = plane.breaker("payment")
    env.cbctl("bypass", "payment")
    assert "forced_closed" == breaker.state.value
    breaker.call(lambda: None)

    result = env.cbctl("reset", "payment")

    assert 0 == result.exit_code, result.output
    assert ("closed", 0) == (breaker.state.value, breaker.snapshot().calls)


def test_a_selector_targets_matching_instances_only(env: StoreEnv):
    """`trip -l zone=eu-1`: eu-1 forced open, us-1 untouched, ack 1/1 of 2 live."""
    eu = env.instance("payment", labels={"zone": "eu-1"})
    us = env.instance("payment", labels={"zone": "us-1"})

    result = env.cbctl("trip", "payment", "-l", "zone=eu-1", "--reason", "INC-9")
    data = parse(env.cbctl("reset", "payment", "-l", "zone=eu-1", "-o", "json"))

    assert 0 == result.exit_code, result.output
    assert "applied on 1/1 matching instance, 2 live, in" in result.stdout
    assert (1, 1, 2) == (data["applied"], data["instances"], data["live"])
    assert ("closed", "closed") == (
        eu.breaker("payment").state.value,
        us.breaker("payment").state.value,
    )


def test_a_canary_is_set_on_a_subset_then_promoted(env: StoreEnv):
    """set -l track=canary, then promote: every instance has it, the scope is gone."""
    canary = env.instance("payment", labels={"track": "canary"})
    stable = env.instance("payment", labels={"track": "stable"})

    env.cbctl("set", "payment", "-l", "track=canary", "--max-failures", "7")
    before = (
        canary.breaker("payment").config.max_failures,
        stable.breaker("payment").config.max_failures,
    )
    result = env.cbctl("promote", "payment", "-l", "track=canary")
    view = parse(env.cbctl("get", "payment", "-o", "json"))

    assert 0 == result.exit_code, result.output
    assert (7, 3) == before
    assert [7, 7] == [
        p.breaker("payment").config.max_failures for p in (canary, stable)
    ]
    assert [] == view["spec"]["scopes"]
    assert 7 == view["spec"]["max_failures"]


def test_unset_all_on_a_scope_rolls_the_canary_back(env: StoreEnv):
    """`unset --all -l ...` drops the scope: its instances follow the rest again."""
    canary = env.instance("payment", labels={"track": "canary"})
    env.cbctl("set", "payment", "-l", "track=canary", "--max-failures", "7")

    result = env.cbctl("unset", "payment", "--all", "-l", "track=canary")

    assert 0 == result.exit_code, result.output
    assert 3 == canary.breaker("payment").config.max_failures
    assert [] == parse(env.cbctl("get", "payment", "-o", "json"))["spec"]["scopes"]


def test_a_scope_hiding_a_change_is_noted(env: StoreEnv):
    """An unscoped set under a scope that sets the same field says so."""
    env.instance("payment", labels={"zone": "eu-1"})
    env.cbctl("set", "payment", "-l", "zone=eu-1", "--max-failures", "2")

    result = env.cbctl("set", "payment", "--max-failures", "6")

    assert (
        "note: scope zone=eu-1 sets max_failures: it takes precedence on the "
        "instances it selects"
    ) in result.stdout


def test_dry_run_shows_the_change_and_writes_nothing(env: StoreEnv):
    """`--dry-run` on a write: the would-be generation and changes, no write."""
    plane = env.instance("payment")

    result = env.cbctl("trip", "payment", "--dry-run")
    data = parse(
        env.cbctl("set", "payment", "--max-failures", "4", "--dry-run", "-o", "json")
    )

    assert 0 == result.exit_code, result.output
    assert (
        "payment: would be generation 1 (override: - → forced_open)"
        == lines(result.stdout)[0]
    )
    assert "dry run: nothing written" in result.stdout
    assert (True, False) == (data["dry_run"], data["waited"])
    assert "closed" == plane.breaker("payment").state.value
    assert [] == parse(env.cbctl("history", "payment", "-o", "json"))


def test_a_write_that_changes_nothing_writes_nothing(env: StoreEnv):
    """`30s` where 30 is stored: unchanged, same generation."""
    env.instance("payment")
    env.cbctl("set", "payment", "--reset-timeout", "30")

    result = env.cbctl("set", "payment", "--reset-timeout", "30s")

    assert "payment unchanged (generation 1)" == lines(result.stdout)[0]


def test_writes_to_an_unknown_breaker_exit_3(env: StoreEnv):
    """trip, bypass, reset and unset need a known breaker; set creates one."""
    codes = [
        env.cbctl(*args).exit_code
        for args in (
            ("trip", "nothing"),
            ("bypass", "nothing"),
            ("reset", "nothing"),
            ("unset", "nothing", "--all"),
        )
    ]

    assert [3, 3, 3, 3] == codes


def test_an_instance_that_does_not_apply_exits_4(env: StoreEnv):
    """A live instance stuck on an old generation: exit 4 naming it."""
    env.instance("payment")
    stuck = env.fake_instance("payment")

    result = env.cbctl("set", "payment", "--max-failures", "4", "--timeout", "1s")

    assert 4 == result.exit_code
    assert result.stderr == (
        f"error: payment generation 1 not applied by 1/2 instances within 1s: {stuck}\n"
    )
