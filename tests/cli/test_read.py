"""cbctl's read commands against both stores: list, get, history, presets, schema."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from ruamel.yaml import YAML

from cbcontrol.config import BreakerConfig
from tests.cli import lines, parse

if TYPE_CHECKING:
    from tests.cli import StoreEnv

ROOT = Path(__file__).resolve().parents[2]
SPEC_KEYS = [
    "max_failures",
    "preset",
    "override",
    "reset_generation",
    "generation",
    "updated_by",
    "updated_at",
    "reason",
    "digest",
    "origin",
    "error",
]
INSTANCE_KEYS = [
    "instance_id",
    "app",
    "host",
    "pid",
    "version",
    "heartbeat_at",
    "state",
    "mode",
    "override_reason",
    "observed_generation",
    "observed_digest",
    "applied",
    "effective",
    "stats",
    "error",
]
NO_OVERRIDE = {"mode": "none", "reason": None, "actor": None, "until": None}


def _origin(env: StoreEnv, name: str) -> str:
    """The provenance prefix of a breaker's stored fields."""
    if env.path is not None:
        return f"file:{env.path}#breakers.{name}"
    return f"etcd:/cbcontrol/{env.namespace}/breakers/{name}@"


def test_list_counts_states_per_instance_and_shows_key_config(env: StoreEnv):
    """`list` has one row per breaker: states per instance, config, generation."""
    env.instance("payment", "analytics", app="checkout")
    env.instance("payment", app="billing")
    assert env.cbctl("set", "payment", "--max-failures", "3").exit_code == 0

    result = env.cbctl("list")

    assert result.exit_code == 0, result.output
    assert [
        [
            "NAME",
            "STATE",
            "MODE",
            "MAX-FAILURES",
            "RESET-TIMEOUT",
            "RATE-THRESHOLD",
            "FAILURE-RATE",
            "GENERATION",
            "ERRORS",
        ],
        ["analytics", "closed", "1", "-", "10", "10s", "-", "-", "0", "(1/1)", "-"],
        ["payment", "closed", "2", "-", "3", "1m", "-", "-", "1", "(2/2)", "-"],
    ] == [line.split() for line in lines(result.stdout) if "──" not in line]
    assert "" == result.stderr


def test_list_json_is_a_list_of_get_objects(env: StoreEnv):
    """`list -o json` is a list with the same object per breaker as `get -o json`."""
    env.instance("payment")
    env.cbctl("set", "analytics", "--max-failures", "4", "--no-wait")

    listed = parse(env.cbctl("list", "-o", "json"))
    single = parse(env.cbctl("get", "analytics", "-o", "json"))

    assert ["analytics", "payment"] == [item["name"] for item in listed]
    assert single == listed[0]
    assert ["name", "spec", "effective", "instances"] == list(listed[1])


def test_list_of_an_empty_store_prints_only_the_header(env: StoreEnv):
    """A store without breakers lists nothing, in a table or as JSON."""
    table = env.cbctl("list")
    as_json = env.cbctl("list", "-o", "json")

    assert 0 == table.exit_code
    assert 1 == len([line for line in lines(table.stdout) if line.startswith("NAME")])
    assert [] == parse(as_json)


def test_list_shows_a_rejected_spec_as_an_error(file_env: StoreEnv):
    """A stored spec that does not validate is listed with its error."""
    assert file_env.path is not None
    file_env.path.write_text("version: 1\nbreakers:\n  payment: {max_failures: 0}\n")

    table = file_env.cbctl("list")
    (view,) = parse(file_env.cbctl("list", "-o", "json"))

    message = (
        f'breaker "payment": field "max_failures" from source '
        f'"file:{file_env.path}#breakers.payment.max_failures" must be >= 1, got 0'
    )
    assert 0 == table.exit_code
    assert table.stdout.splitlines()[2].rstrip().endswith(message)
    assert (message, 0) == (view["spec"]["error"], view["spec"]["max_failures"])
    assert {"value": 3, "source": "preset:payment"} == view["effective"]["max_failures"]


def test_get_json_has_the_documented_keys(env: StoreEnv):
    """`get -o json` carries spec, effective with sources, and per-instance status."""
    plane = env.instance("payment")
    env.cbctl("set", "payment", "--max-failures", "3")

    view = parse(env.cbctl("get", "payment", "-o", "json"))

    spec = view["spec"]
    (instance,) = view["instances"]
    assert ["name", "spec", "effective", "instances"] == list(view)
    assert SPEC_KEYS == list(spec)
    assert (3, 1, NO_OVERRIDE) == (
        spec["max_failures"],
        spec["generation"],
        spec["override"],
    )
    assert list(BreakerConfig.model_fields) == list(view["effective"])
    assert 3 == view["effective"]["max_failures"]["value"]
    assert view["effective"]["max_failures"]["source"].startswith(
        _origin(env, "payment")
    )
    assert {"value": "alternative", "source": "preset:payment"} == view["effective"][
        "fallback"
    ]
    assert INSTANCE_KEYS == list(instance)
    assert (plane.instance_id, "checkout", "closed", "none", 1, True) == (
        instance["instance_id"],
        instance["app"],
        instance["state"],
        instance["mode"],
        instance["observed_generation"],
        instance["applied"],
    )
    assert 0 == instance["stats"]["calls"]
    assert view["effective"] == instance["effective"]


def test_a_hand_edited_spec_is_applied_by_its_digest(file_env: StoreEnv):
    """Without `generation` in the file, an instance applied it when digests match."""
    assert file_env.path is not None
    file_env.path.write_text("version: 1\nbreakers:\n  payment: {max_failures: 4}\n")
    plane = file_env.instance("payment")

    view = parse(file_env.cbctl("get", "payment", "-o", "json"))

    assert (0, 0) == (plane.observed_generation("payment"), view["spec"]["generation"])
    assert [(True, view["spec"]["digest"])] == [
        (i["applied"], i["observed_digest"]) for i in view["instances"]
    ]


def test_get_without_instances_resolves_the_store_alone(env: StoreEnv):
    """With no live instance, `effective` is default < preset < the stored spec."""
    env.cbctl("set", "payment", "--max-failures", "2", "--reset-timeout", "45s")

    view = parse(env.cbctl("get", "payment", "-o", "json"))

    effective = view["effective"]
    assert [] == view["instances"]
    assert 2 == effective["max_failures"]["value"]
    assert effective["reset_timeout"]["source"].startswith(_origin(env, "payment"))
    assert {"value": 45.0, "source": effective["reset_timeout"]["source"]} == effective[
        "reset_timeout"
    ]
    assert {"value": "alternative", "source": "preset:payment"} == effective["fallback"]
    assert {"value": 100, "source": "default"} == effective["window_size"]


def test_get_table_shows_each_field_with_its_source(file_env: StoreEnv):
    """`get` prints the spec line, the config with sources, and the instances."""
    plane = file_env.instance("payment")
    file_env.cbctl("set", "payment", "--max-failures", "3", "--reason", "tune")

    result = file_env.cbctl("get", "payment")

    output = lines(result.stdout)
    source = f"file:{file_env.path}#breakers.payment.max_failures"
    assert 0 == result.exit_code, result.output
    assert "payment  generation 1  preset -  mode -" == output[0]
    assert ["max_failures", "3", source, "3"] == next(
        line.split() for line in output if line.startswith("max_failures")
    )
    assert ["fallback", "alternative", "preset:payment"] == next(
        line.split() for line in output if line.startswith("fallback ")
    )
    assert [plane.instance_id, "checkout", "closed", "1", "0", "-", "0", "-"] == next(
        line.split() for line in output if line.startswith(plane.instance_id)
    )


def test_get_yaml_is_the_json_view(env: StoreEnv):
    """`-o yaml` prints the same data as `-o json`."""
    env.cbctl("set", "payment", "--max-failures", "3")

    as_yaml = YAML(typ="safe").load(env.cbctl("get", "payment", "-o", "yaml").stdout)
    as_json = parse(env.cbctl("get", "payment", "-o", "json"))

    assert as_json == as_yaml


def test_an_unknown_breaker_exits_3_with_a_suggestion(env: StoreEnv):
    """A misspelt name exits 3 and suggests the close names."""
    env.instance("payment")

    result = env.cbctl("get", "paymnt")

    assert 3 == result.exit_code
    assert (
        f'error: no breaker "paymnt" in {env.url}; did you mean "payment"?\n'
        == result.stderr
    )
    assert "" == result.stdout


def test_an_unknown_breaker_without_close_names_lists_the_known_ones(env: StoreEnv):
    """Without a close match, the error lists the breakers there are."""
    env.cbctl("set", "payment", "--max-failures", "3")
    env.cbctl("set", "analytics", "--max-failures", "3")

    result = env.cbctl("get", "zzz")

    assert 3 == result.exit_code
    assert (
        f'error: no breaker "zzz" in {env.url}; known breakers: analytics, payment\n'
        == result.stderr
    )


def test_history_shows_who_changed_what_and_why(
    env: StoreEnv, monkeypatch: pytest.MonkeyPatch
):
    """`history` lists each write with actor, action, reason and changes."""
    monkeypatch.setenv("CBCTL_ACTOR", "ana")
    env.cbctl("set", "payment", "--max-failures", "3", "--reason", "tune")
    env.cbctl("trip", "payment", "--reason", "INC-42")
    env.cbctl("reset", "payment")

    records = parse(env.cbctl("history", "payment", "-o", "json"))
    table = env.cbctl("history", "payment")

    assert [
        ("ana", "set", "tune", 1, {"max_failures": [None, 3]}),
        ("ana", "trip", "INC-42", 2, None),
        ("ana", "reset", None, 3, None),
    ] == [
        (
            r["actor"],
            r["action"],
            r["reason"],
            r["generation"],
            r["changes"] if r["action"] == "set" else None,
        )
        for r in records
    ]
    assert ["ana", "set", "1", "tune", "max_failures: (unset) → 3"] == [
        part.strip() for part in lines(table.stdout)[2].split("   ") if part.strip()
    ][1:]


def test_history_of_an_unknown_breaker_exits_3(env: StoreEnv):
    """A breaker nobody ever wrote or reported has no history: exit 3."""
    result = env.cbctl("history", "nothing")

    assert 3 == result.exit_code
    assert (
        f'error: no breaker "nothing" in {env.url}; the store has no breaker yet '
        "(`cbctl set NAME ...` creates one)\n" == result.stderr
    )


def test_presets_lists_built_in_and_store_presets(env: StoreEnv):
    """`presets` merges the store's presets over the built-in ones, field by field."""
    with env.open() as store:
        store.put_preset(
            "checkout-critical", {"max_failures": 2, "reset_timeout": "2m"}
        )
        store.put_preset("payment", {"max_failures": 4})

    view = parse(env.cbctl("presets", "-o", "json"))
    table = env.cbctl("presets")

    assert {
        "source": "store",
        "values": {"max_failures": 2, "reset_timeout": 120.0},
    } == view["checkout-critical"]
    assert {
        "source": "built-in+store",
        "values": {"max_failures": 4, "reset_timeout": 60.0, "fallback": "alternative"},
    } == view["payment"]
    assert [
        "analytics",
        "checkout-critical",
        "default",
        "payment",
        "user-profile",
    ] == list(view)
    assert (
        "checkout-critical   store            max_failures=2, reset_timeout=2m"
        in lines(table.stdout)
    )


@pytest.mark.parametrize("name", ["config-file", "breaker-spec"])
def test_schema_matches_the_checked_in_schemas(file_env: StoreEnv, name: str):
    """`schema NAME` prints exactly the generated schemas/NAME.json."""
    result = file_env.cbctl("schema", name)

    assert 0 == result.exit_code
    assert (ROOT / "schemas" / f"{name}.json").read_text() == result.stdout


def test_schema_of_the_instance_status(file_env: StoreEnv):
    """`schema instance-status` describes what instances report."""
    schema = json.loads(file_env.cbctl("schema", "instance-status").stdout)

    assert "InstanceStatus" == schema["title"]
    assert {"instance_id", "app", "heartbeat_at", "breakers"} <= set(
        schema["properties"]
    )


def test_list_shows_how_long_an_override_has_left(env: StoreEnv):
    """A trip with --for shows its time left in the MODE column."""
    env.cbctl("set", "payment", "--max-failures", "3")
    env.cbctl("set", "analytics", "--max-failures", "10")
    env.cbctl("trip", "payment", "--for", "30m", "--no-wait")
    env.cbctl("bypass", "analytics", "--no-wait")

    rows = [line.split() for line in lines(env.cbctl("list").stdout)[2:]]

    assert ["analytics", "-", "forced_closed", "10"] == rows[0][:4]
    assert "payment" == rows[1][0]
    assert re.match(r"^\((30m|29m\d+s) left\)$", " ".join(rows[1][3:5])), rows[1]


def test_get_yaml_has_no_anchors(env: StoreEnv):
    """Shared parts of the view are written out in full, not as YAML aliases."""
    env.instance("payment")
    env.cbctl("set", "payment", "--max-failures", "3")

    text = env.cbctl("get", "payment", "-o", "yaml").stdout

    assert "&id" not in text
    assert "*id" not in text
    assert "effective:" in text
