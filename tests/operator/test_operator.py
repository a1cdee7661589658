"""The operator API without the CLI, on the file store and on etcd."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from typing import TYPE_CHECKING

import pytest

from cbcontrol import ConfigError
from cbcontrol.exceptions import BreakerNotFoundError

if TYPE_CHECKING:
    from tests.operator.conftest import Fleet


def test_a_targeted_write_is_acknowledged_by_matching_instances_only(fleet: Fleet):
    """trip -l zone=eu-1: 1/1 matching of 2 live; only eu-1 is forced open."""
    eu = fleet.instance("payment", zone="eu-1")
    us = fleet.instance("payment", zone="us-1")

    [result] = fleet.op.wait(
        [fleet.op.trip("payment", selector="zone=eu-1", reason="INC-42")], 10
    )

    assert (1, 1, 2, ()) == (
        result.ack.applied,
        result.ack.instances,
        result.ack.live,
        result.ack.pending,
    )
    assert ("forced_open", "closed") == (
        eu.breaker("payment").state.value,
        us.breaker("payment").state.value,
    )
    assert "zone=eu-1" == fleet.op.history("payment")[-1].selector


def test_the_read_models_are_the_json_cbctl_prints(fleet: Fleet):
    """get's JSON: spec, effective with sources, instances with labels and liveness."""
    plane = fleet.instance("payment", zone="eu-1")
    fleet.op.wait([fleet.op.set("payment", {"reset_timeout": "45s"})], 10)

    view = fleet.op.breaker("payment")
    data = view.to_json()

    assert view.effective_from == f"instance:{plane.instance_id}"
    assert 45.0 == data["spec"]["reset_timeout"]
    assert 45.0 == data["effective"]["reset_timeout"]["value"]
    [instance] = data["instances"]
    assert ("live", "eu-1", True) == (
        instance["liveness"],
        instance["labels"]["zone"],
        instance["applied"],
    )
    assert [view.to_json()] == [
        b.to_json() for b in fleet.op.fleet().breakers if b.name == "payment"
    ]


def test_fields_that_differ_between_instances_are_listed(fleet: Fleet):
    """A scope on one instance: max_failures differs, with both sources."""
    fleet.instance("payment", track="canary")
    fleet.instance("payment", track="stable")
    fleet.op.wait(
        [fleet.op.set("payment", {"max_failures": 8}, selector="track=canary")], 10
    )

    [difference] = fleet.op.breaker("payment").differences

    assert "max_failures" == difference.field
    assert {3, 8} == {value for value, _, _ in difference.values}


def test_a_dry_run_writes_nothing(fleet: Fleet):
    """The change and the would-be generation, and no history."""
    fleet.instance("payment")

    result = fleet.op.set("payment", {"max_failures": 4}, dry_run=True)

    assert (True, 1, {"max_failures": (None, 4)}) == (
        result.dry_run,
        result.generation,
        dict(result.changes),
    )
    assert [] == fleet.op.history("payment")


def test_bad_values_and_names_are_refused_before_any_write(fleet: Fleet):
    """ConfigError naming the field; BreakerNotFoundError with a suggestion."""
    fleet.instance("payment")

    with pytest.raises(ConfigError) as bad:
        fleet.op.set("payment", {"max_failures": 0})
    with pytest.raises(BreakerNotFoundError) as unknown:
        fleet.op.trip("paymnet")

    assert "max_failures" == bad.value.field
    assert ("payment",) == unknown.value.suggestions
    assert [] == fleet.op.history()


def test_a_document_is_planned_then_applied_without_lowering_run_time_state(
    fleet: Fleet,
):
    """The plan per breaker and field; applying it keeps a trip and a reset marker."""
    plane = fleet.instance("payment")
    op = fleet.op
    op.wait([op.reset("payment"), op.trip("payment", reason="INC-9")], 10)
    document = (
        b"version: 1\nbreakers:\n  payment: {max_failures: 6, reset_generation: 0}\n"
    )

    checked = op.check_document(document, "desired.yaml")
    plan = op.plan(checked)
    results = op.wait(op.apply(plan, reason="gitops"), 10)
    again = op.plan(op.check_document(document, "desired.yaml"))

    assert checked.valid
    assert {"max_failures": (None, 6)} == dict(plan.breakers[0].changes)
    assert [
        (
            "breaker payment: reset_generation 0 is below the store's 1: kept "
            "(applying never resets)"
        )
    ] == list(plan.notes)
    assert [True] == [r.complete for r in results]
    assert (6, "forced_open") == (
        plane.breaker("payment").config.max_failures,
        plane.breaker("payment").state.value,
    )
    assert not again


def test_export_is_configuration_only(fleet: Fleet):
    """No override, no reset marker, no metadata; scopes without run-time state."""
    fleet.instance("payment", zone="eu-1")
    op = fleet.op
    op.set("payment", {"max_failures": 4}, reason="tune")
    op.set("payment", {"max_failures": 2}, selector="zone=eu-1")
    op.trip("payment", selector="zone=eu-1")
    op.reset("payment")

    document, skipped = op.export()

    assert [] == skipped
    assert {
        "max_failures": 4,
        "scopes": [{"selector": "zone=eu-1", "max_failures": 2}],
    } == document["breakers"]["payment"]


def test_a_fresh_export_plans_no_change_after_a_targeted_reset(fleet: Fleet):
    """A scope left with only its reset marker is run-time state: not drift."""
    fleet.instance("payment", zone="eu-1")
    op = fleet.op
    op.wait([op.trip("payment", selector="zone=eu-1")], 10)
    op.wait([op.reset("payment", selector="zone=eu-1")], 10)

    document, _ = op.export()
    raw = json.dumps(document).encode()  # YAML's JSON form, as a pipeline may keep it
    plan = op.plan(op.check_document(raw, "export.yaml"))

    assert not plan
    assert [] == list(plan.notes)


def test_watch_yields_views_with_state_spec_and_applied_events(fleet: Fleet):
    """A failure streak and a write: state, spec and applied events, in order."""
    plane = fleet.instance("payment")
    breaker = plane.breaker("payment")
    stop = threading.Event()
    kinds: list[tuple[str, str | None]] = []
    frames = fleet.op.watch(stop)

    def fail() -> None:
        raise ConnectionError

    def follow() -> None:
        for frame in frames:
            kinds.extend((e.kind, e.new) for e in frame.events)

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    time.sleep(1.0)
    for _ in range(3):
        with contextlib.suppress(ConnectionError):
            breaker.call(fail)
    fleet.op.wait([fleet.op.set("payment", {"max_failures": 4})], 10)
    deadline = time.monotonic() + 10
    while ("applied", "1") not in kinds and time.monotonic() < deadline:
        time.sleep(0.1)
    stop.set()
    thread.join(timeout=10)

    assert ("state", "open") in kinds
    assert kinds.index(("spec", "1")) < kinds.index(("applied", "1"))


def test_doctor_leaves_no_trace_of_its_write_test(fleet: Fleet):
    """The write test writes a preset and removes it."""
    report = fleet.op.doctor(write_test=True)

    assert "ok" == {c.check: c.status for c in report.checks}["write"]
    assert "cbctl-doctor" not in fleet.op.preset_names()


def test_a_breaker_published_just_after_a_miss_is_not_suggested_to_itself(
    memory_fleet: Fleet, monkeypatch: pytest.MonkeyPatch
):
    """The read that lists known names for the error may already see the name."""
    op = memory_fleet.op
    monkeypatch.setattr(op, "names", lambda: ["payment", "payments"])

    with pytest.raises(BreakerNotFoundError) as missed:
        op.trip("payment", reason="INC-1")

    assert ("payments",) == missed.value.suggestions
    assert 'did you mean "payments"?' in str(missed.value)


def test_a_document_of_bad_values_gives_a_bounded_report(memory_fleet: Fleet):
    """A huge bad value is quoted in part; thousands of bad entries, the first 50."""
    huge = "x" * 200_000
    many = "".join(f"  b{i}: {{max_failures: 0}}\n" for i in range(3_000))
    document = f"version: 1\nbreakers:\n  payment: {{fallback: {huge}}}\n{many}"

    checked = memory_fleet.op.check_document(document.encode(), "bad.yaml")

    assert not checked.valid
    assert 51 == len(checked.errors)
    assert checked.errors[-1] == "... and 2951 more errors"
    assert all(len(e) < 2_000 for e in checked.errors)
    assert "breakers.payment.fallback" in checked.errors[0]
