"""Scoped layers: where they apply, their precedence, their resets (memory store)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.operator.conftest import sources

if TYPE_CHECKING:
    from tests.operator.conftest import Fleet


def test_a_scope_applies_above_the_unscoped_fields_on_matching_instances(
    memory_fleet: Fleet,
):
    """eu-1 runs the scope's value, named in its provenance; us-1 the unscoped one."""
    eu = memory_fleet.instance("payment", zone="eu-1")
    us = memory_fleet.instance("payment", zone="us-1")
    memory_fleet.op.set("payment", {"max_failures": 4})

    memory_fleet.op.set("payment", {"max_failures": 2}, selector="zone=eu-1")

    assert (2, "memory:/breakers/payment@") == (
        sources(eu, "payment")["max_failures"][0],
        sources(eu, "payment")["max_failures"][1].rpartition("@")[0] + "@",
    )
    assert sources(eu, "payment")["max_failures"][1].endswith("[zone=eu-1]")
    assert 4 == us.breaker("payment").config.max_failures
    assert not sources(us, "payment")["max_failures"][1].endswith("]")


def test_of_two_matching_scopes_the_later_wins(memory_fleet: Fleet):
    """Field by field: the later scope's value, the earlier's where it is silent."""
    plane = memory_fleet.instance("payment", zone="eu-1", track="canary")
    op = memory_fleet.op
    op.set("payment", {"max_failures": 2, "reset_timeout": "45s"}, selector="zone=eu-1")
    op.set("payment", {"max_failures": 7}, selector="track=canary")

    config = plane.breaker("payment").config

    assert (7, 45.0) == (config.max_failures, config.reset_timeout)


def test_a_scope_above_the_environment(memory_fleet: Fleet):
    """A scope is a store layer: it is above env as the unscoped fields are."""
    import cbcontrol

    plane = cbcontrol.connect(
        memory_fleet.store,
        app="checkout",
        labels={"zone": "eu-1"},
        environ={"PAYMENT_CB_MAX_FAILURES": "9"},
    )
    memory_fleet.planes.append(plane)
    plane.breaker("payment")

    memory_fleet.op.set("payment", {"max_failures": 2}, selector="zone=eu-1")

    assert 2 == plane.breaker("payment").config.max_failures


def test_the_last_matching_scope_with_an_override_decides(memory_fleet: Fleet):
    """Bypass on canary, trip on eu-1 (later): a canary in eu-1 is forced open."""
    both = memory_fleet.instance("payment", zone="eu-1", track="canary")
    canary = memory_fleet.instance("payment", zone="us-1", track="canary")
    op = memory_fleet.op
    op.bypass("payment", selector="track=canary")
    op.trip("payment", selector="zone=eu-1", reason="INC-1")

    states = (
        both.breaker("payment").state.value,
        canary.breaker("payment").state.value,
    )

    assert ("forced_open", "forced_closed") == states


def test_a_scoped_reset_resets_its_instances_once(memory_fleet: Fleet):
    """Matching instances reset; others keep their counters; a re-added scope resets."""
    eu = memory_fleet.instance("payment", zone="eu-1")
    us = memory_fleet.instance("payment", zone="us-1")
    for plane in (eu, us):
        plane.breaker("payment").call(lambda: None)
    op = memory_fleet.op

    op.reset("payment", selector="zone=eu-1")
    counts = (
        eu.breaker("payment").snapshot().calls,
        us.breaker("payment").snapshot().calls,
    )
    eu.breaker("payment").call(lambda: None)
    op.set("payment", {"max_failures": 4}, selector="zone=eu-1")  # no reset
    after_set = eu.breaker("payment").snapshot().calls
    op.unset("payment", all_fields=True, selector="zone=eu-1")  # scope dropped
    op.reset("payment", selector="zone=eu-1")  # the scope comes back: reset again

    assert (0, 1) == counts
    assert 1 == after_set
    assert 0 == eu.breaker("payment").snapshot().calls


def test_promote_makes_the_scope_everyones_and_drops_it(memory_fleet: Fleet):
    """The canary's value for every instance; no scope left; history says so."""
    canary = memory_fleet.instance("payment", track="canary")
    stable = memory_fleet.instance("payment", track="stable")
    op = memory_fleet.op
    op.set("payment", {"reset_timeout": "10s"}, selector="track=canary")

    result = op.promote("payment", "track=canary", reason="canary is fine")

    assert {
        "reset_timeout": (None, "10s"),
        "reset_timeout[track=canary]": ("10s", None),
    } == dict(result.changes)
    assert [10.0, 10.0] == [
        p.breaker("payment").config.reset_timeout for p in (canary, stable)
    ]
    assert () == op.breaker("payment").spec.scopes
    assert "promote" == op.history("payment")[-1].action


def test_a_scope_with_an_override_is_not_promoted(memory_fleet: Fleet):
    """Promoting a trip would trip everyone: refused, naming the way out."""
    import pytest

    from cbcontrol import ConfigError

    memory_fleet.instance("payment", zone="eu-1")
    memory_fleet.op.trip("payment", selector="zone=eu-1")

    with pytest.raises(ConfigError, match="lift it first"):
        memory_fleet.op.promote("payment", "zone=eu-1")


def test_a_reset_and_an_override_read_at_once_leave_the_override_in_force(
    memory_fleet: Fleet,
):
    """One update bumping the reset marker and setting a trip: reset, forced open."""
    plane = memory_fleet.instance("payment")
    breaker = plane.breaker("payment")
    breaker.call(lambda: None)

    memory_fleet.store.put(  # type: ignore[union-attr]
        "breakers",
        "payment",
        {"reset_generation": 1, "override": {"mode": "forced_open", "reason": "x"}},
    )

    assert ("forced_open", 0) == (breaker.state.value, breaker.snapshot().calls)
