"""Label selectors (kubectl's syntax) and CBCONTROL_LABELS."""

from __future__ import annotations

import pytest

import cbcontrol
from cbcontrol import ConfigError
from cbcontrol.operator import Selector, parse_labels

LABELS = {"app": "checkout", "zone": "eu-1", "track": "canary"}


@pytest.mark.parametrize(
    ("text", "canonical", "matches"),
    [
        ("zone=eu-1", "zone=eu-1", True),
        ("zone==eu-1", "zone=eu-1", True),
        ("zone!=eu-1", "zone!=eu-1", False),
        ("tier!=gold", "tier!=gold", True),  # a missing label is not gold
        ("zone in (us-1, eu-1)", "zone in (eu-1,us-1)", True),
        ("zone notin (eu-1)", "zone notin (eu-1)", False),
        ("tier notin (gold)", "tier notin (gold)", True),
        ("track", "track", True),
        ("!track", "!track", False),
        ("zone=eu-1, track=canary", "track=canary,zone=eu-1", True),
        ("zone=eu-1,track=stable", "track=stable,zone=eu-1", False),
        ("example.com/tier=gold", "example.com/tier=gold", False),
        ("", "", True),
    ],
)
def test_selectors_parse_match_and_have_one_canonical_text(
    text: str, canonical: str, matches: bool
):
    """Equality, inequality, sets, existence, AND; sorted canonical text."""
    selector = Selector.parse(text)

    assert (canonical, matches) == (str(selector), selector.matches(LABELS))
    assert selector == Selector.parse(canonical)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("zone in ()", "has an empty value in 'in (...)'"),
        ("zone=eu 1", "cannot be read"),
        ("a,,b", "has an empty requirement"),
        ("-zone=x", "has the label key '-zone'"),
        ("zone in (a,b", "cannot be read"),
    ],
)
def test_a_malformed_selector_is_refused_naming_the_part(text: str, why: str):
    """A ConfigError on field selector, naming what is wrong and the syntax."""
    with pytest.raises(ConfigError) as caught:
        Selector.parse(text)

    assert "selector" == caught.value.field
    assert caught.value.rule.startswith(why)
    assert "key=value, key!=value, 'key in (a,b)'" in caught.value.rule


def test_labels_from_the_environment_skip_bad_entries_and_automatic_keys():
    """`zone=eu-1,bad,app=x`: zone kept; bad and app reported, not fatal."""
    labels, errors = parse_labels("zone=eu-1, bad ,app=x,track=")

    assert {"zone": "eu-1", "track": ""} == labels
    assert ["labels", "labels"] == [e.field for e in errors]


def test_an_instance_publishes_its_labels_and_reports_bad_ones():
    """app, host, instance and CBCONTROL_LABELS; a bad entry is in its errors."""
    plane = cbcontrol.connect(
        "memory://", app="checkout", environ={"CBCONTROL_LABELS": "zone=eu-1,==="}
    )
    try:
        labels = plane.labels
        errors = plane.errors()
    finally:
        plane.close()

    assert {"app", "host", "instance", "zone"} == set(labels)
    assert ("checkout", "eu-1", plane.instance_id) == (
        labels["app"],
        labels["zone"],
        labels["instance"],
    )
    assert "labels" in errors
