"""cbctl's reads: list, get, history, presets, explain; every output format."""

from __future__ import annotations

import json
import os
import subprocess
from typing import TYPE_CHECKING

import pytest

from tests.cli import CBCTL, lines, parse

if TYPE_CHECKING:
    from tests.cli import StoreEnv


def test_list_shows_states_applied_and_key_config(env: StoreEnv):
    """One row per breaker: states, applied, config as instances run it."""
    env.instance("payment")
    env.instance("payment", "analytics")
    assert 0 == env.cbctl("set", "payment", "--max-failures", "4").exit_code

    result = env.cbctl("list")

    assert 0 == result.exit_code, result.output
    names = "NAME STATE MODE APPLIED GEN MAX-FAIL RESET THRESHOLD FAIL-RATE NOTES"
    assert [  # piped: the same fields on every line, as awk splits them
        names.split(),
        ["analytics", "closed", "-", "1/1", "0", "10", "10s", "-", "-", "-"],
        ["payment", "closed", "-", "2/2", "1", "4", "1m", "-", "-", "-"],
    ] == [line.split() for line in lines(result.stdout)]


def test_list_json_is_a_list_of_get_objects(env: StoreEnv):
    """`list -o json` is the list of what `get NAME -o json` prints."""
    env.instance("payment", "analytics")

    listed = parse(env.cbctl("list", "-o", "json"))
    one = parse(env.cbctl("get", "payment", "-o", "json"))

    assert ["analytics", "payment"] == [item["name"] for item in listed]
    assert one["spec"] == listed[1]["spec"]
    assert one["effective"] == listed[1]["effective"]


def test_get_json_has_the_documented_keys(env: StoreEnv):
    """DESIGN.md §6's keys are all there, with the instance's effective config."""
    plane = env.instance("payment", labels={"zone": "eu-1"})
    env.cbctl("trip", "payment", "--reason", "INC-42")

    view = parse(env.cbctl("get", "payment", "-o", "json"))

    assert {"name", "spec", "effective", "instances"} <= set(view)
    assert {"mode", "reason", "actor", "until"} == set(view["spec"]["override"])
    assert "forced_open" == view["spec"]["override"]["mode"]
    assert {"generation", "preset", "scopes", "error"} <= set(view["spec"])
    [instance] = view["instances"]
    assert {
        "instance_id",
        "app",
        "state",
        "mode",
        "observed_generation",
        "effective",
        "stats",
        "error",
        "labels",
        "liveness",
    } <= set(instance)
    assert plane.instance_id == instance["instance_id"]
    assert "eu-1" == instance["labels"]["zone"]
    assert {"value": 3, "source": "preset:payment"} == view["effective"]["max_failures"]
    assert instance["effective"] == view["effective"]


def test_get_without_instances_resolves_the_store_alone(env: StoreEnv):
    """No live instance: default < preset < spec, from the store."""
    assert 0 == env.cbctl("set", "payment", "--reset-timeout", "45s").exit_code

    view = parse(env.cbctl("get", "payment", "-o", "json"))

    assert "store" == view["effective_from"]
    assert 45.0 == view["effective"]["reset_timeout"]["value"]
    assert {"value": 3, "source": "preset:payment"} == view["effective"]["max_failures"]
    assert [] == view["instances"]


def test_a_field_that_differs_between_instances_is_shown_differing(env: StoreEnv):
    """An instance's env value shows as differing in list, get and json."""
    env.instance("payment")
    env.instance("payment", environ={"PAYMENT_CB_MAX_FAILURES": "9"})

    listed = env.cbctl("list")
    got = env.cbctl("get", "payment")
    view = parse(env.cbctl("get", "payment", "-o", "json"))

    [difference] = view["differences"]
    assert "max_failures" == difference["field"]
    assert {(3, "preset:payment"), (9, "env:PAYMENT_CB_MAX_FAILURES")} == {
        (v["value"], v["source"]) for v in difference["values"]
    }
    assert "3*[1]" in listed.stdout
    assert "9 from env:PAYMENT_CB_MAX_FAILURES on" in listed.stdout
    assert "max_failures differs between instances" in got.stdout


def test_an_invalid_spec_shows_as_invalid_not_as_applied(file_env: StoreEnv):
    """A hand-edited bad value: `invalid`, and the generation instances keep."""
    file_env.instance("payment")
    assert 0 == file_env.cbctl("set", "payment", "--max-failures", "4").exit_code
    file_env.path.write_text(  # type: ignore[union-attr]
        "version: 1\nbreakers:\n  payment: {max_failures: 0, generation: 2}\n"
    )

    def shown() -> str:
        return file_env.cbctl("list").stdout

    from tests.support.waiting import wait_until

    assert wait_until(lambda: "invalid" in shown(), timeout=10)
    text = shown()
    assert "invalid[1]" in text
    assert "generation 2 is invalid; instances keep generation 1 (last good)" in text
    assert "must be >= 1" in text


def test_selectors_filter_list_and_get(env: StoreEnv):
    """`-l zone=eu-1` shows matching instances only, counted over them."""
    env.instance("payment", labels={"zone": "eu-1"})
    env.instance("payment", "analytics", labels={"zone": "us-1"})

    listed = parse(env.cbctl("list", "-l", "zone=eu-1", "-o", "json"))
    got = parse(env.cbctl("get", "payment", "-l", "zone in (eu-1)", "-o", "json"))

    assert ["payment"] == [b["name"] for b in listed]
    assert ["eu-1"] == [i["labels"]["zone"] for i in got["instances"]]


def test_a_malformed_selector_is_a_usage_error(env: StoreEnv):
    """A selector that does not parse exits 2, naming the requirement."""
    env.instance("payment")

    result = env.cbctl("list", "-l", "zone in ()")

    assert 2 == result.exit_code
    assert result.stderr.startswith(
        "error: invalid --selector zone in (): has an empty value in 'in (...)'"
    )


def test_output_name_and_jsonpath_work_as_in_kubectl(env: StoreEnv):
    """`-o name` prints kind/name; `-o jsonpath` reads the JSON ({.items} for lists)."""
    env.instance("payment", "analytics")

    names = env.cbctl("list", "-o", "name")
    path = env.cbctl(
        "list",
        "-o",
        "jsonpath={range .items[*]}{.name} {.instances[0].state}{'\\n'}{end}",
    )
    one = env.cbctl("get", "payment", "-o", "jsonpath={.effective.max_failures.value}")

    assert "breaker/analytics\nbreaker/payment\n" == names.stdout
    assert "analytics closed\npayment closed\n" == path.stdout
    assert "3" == one.stdout


def test_an_unknown_output_format_is_a_usage_error(env: StoreEnv):
    """`-o xml` exits 2 naming the formats."""
    result = env.cbctl("list", "-o", "xml")

    assert 2 == result.exit_code
    assert "'xml' is not one of table, wide, json, yaml, name" in result.output


def test_get_yaml_is_the_json_view_without_anchors(env: StoreEnv):
    """`-o yaml` holds what `-o json` does, written out in full."""
    env.instance("payment")
    from ruamel.yaml import YAML

    text = env.cbctl("get", "payment", "-o", "yaml").stdout
    view = parse(env.cbctl("get", "payment", "-o", "json"))

    assert "&id" not in text
    assert view["effective"] == YAML(typ="safe").load(text)["effective"]


def test_history_shows_who_changed_what_and_why(env: StoreEnv):
    """Oldest first, with the selector of a targeted change."""
    env.instance("payment", labels={"zone": "eu-1"})
    env.cbctl("set", "payment", "--max-failures", "4", "--reason", "tune")
    env.cbctl("trip", "payment", "-l", "zone=eu-1", "--reason", "INC-7")

    records = parse(env.cbctl("history", "payment", "-o", "json"))
    table = env.cbctl("history", "payment")

    assert [("set", None, "tune"), ("trip", "zone=eu-1", "INC-7")] == [
        (r["action"], r["selector"], r["reason"]) for r in records
    ]
    assert {"max_failures": [None, 4]} == records[0]["changes"]
    assert "override[zone=eu-1]" in records[1]["changes"]
    assert "max_failures: - → 4" in table.stdout


def test_history_of_an_unknown_breaker_exits_3(env: StoreEnv):
    """No record, no spec, no instance: not found."""
    result = env.cbctl("history", "nothing")

    assert 3 == result.exit_code


def test_presets_lists_built_in_and_store_presets(env: StoreEnv):
    """Built-in ones, extended by the store's, with their values."""
    with env.open() as store:
        store.put_preset("critical", {"max_failures": 2, "reset_timeout": "2m"})

    view = parse(env.cbctl("presets", "-o", "json"))
    table = env.cbctl("presets")

    assert {
        "source": "store",
        "values": {"max_failures": 2, "reset_timeout": 120.0},
    } == (view["critical"])
    assert "built-in" == view["payment"]["source"]
    assert "critical       store      max_failures=2, reset_timeout=2m" in table.stdout


@pytest.mark.parametrize(
    "spelling", ["failure_rate_threshold", "failure-rate-threshold"]
)
def test_explain_says_type_default_unit_rule_and_presets(
    file_env: StoreEnv, spelling: str
):
    """`explain FIELD` from the catalog, with the presets that set it."""
    found = parse(file_env.cbctl("explain", spelling, "-o", "json"))
    text = file_env.cbctl("explain", "max_failures").stdout

    assert {
        "name": "failure_rate_threshold",
        "kind": "float",
        "nullable": True,
        "unit": "percent",
        "rule": "a number > 0 and <= 100 (percent; 50% or 50), or none",
    }.items() <= found.items()
    assert "PRESETS   analytics=10, payment=3, user-profile=5" in text


def test_explain_of_an_unknown_field_suggests_one(file_env: StoreEnv):
    """A misspelt field exits 2 with the closest."""
    result = file_env.cbctl("explain", "max_failure")

    assert 2 == result.exit_code
    assert "did you mean 'max_failures'?" in result.stderr


def test_list_json_of_an_empty_store_is_an_empty_list(env: StoreEnv):
    """Nothing there: `[]`, exit 0."""
    result = env.cbctl("list", "-o", "json")

    assert 0 == result.exit_code
    assert [] == json.loads(result.stdout)


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        (["get", "pay"], ["payment", "payments-eu"]),
        (["trip", "pro"], ["profile"]),
        (["set", "profile", "--preset", "u"], ["user-profile"]),
    ],
)
def test_shell_completion_offers_the_store_s_names(
    file_env: StoreEnv, words: list[str], expected: list[str]
):
    """Breaker names come from the store, preset names from the built-in ones and
    the store's, as bash asks for them."""
    for name in ("payment", "payments-eu", "profile"):
        assert 0 == file_env.cbctl("set", name, "--max-failures", "3").exit_code
    line = ["cbctl", "--store", file_env.url, *words]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CBCONTROL_")}
    env.update(
        _CBCTL_COMPLETE="complete_bash",
        COMP_WORDS=" ".join(line),
        COMP_CWORD=str(len(line) - 1),
    )

    done = subprocess.run(
        [str(CBCTL)], capture_output=True, text=True, env=env, timeout=60, check=False
    )

    assert 0 == done.returncode, done.stderr
    assert expected == done.stdout.split()
