"""The control plane on the YAML file store: real files, real watching."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

import cbcontrol
from cbcontrol import State
from tests.support.waiting import wait_until

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


def write(path: Path, text: str) -> None:
    """Save like an editor: write a temporary file, then rename it over the target."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    """A YAML file store with one spec for payment."""
    path = tmp_path / "cbcontrol.yaml"
    path.write_text("version: 1\nbreakers:\n  payment:\n    max_failures: 2\n")
    return path


@pytest.fixture
def plane(config_file: Path) -> Iterator[cbcontrol.ControlPlane]:
    """A plane watching the file, as CBCONTROL_STORE=file://... would make it."""
    plane = cbcontrol.connect(
        environ={"CBCONTROL_STORE": f"file://{config_file}"}, app="checkout"
    )
    yield plane
    plane.close()


def test_the_file_configures_breakers_at_connect(
    plane: cbcontrol.ControlPlane, config_file: Path
) -> None:
    """A breaker gets its file spec at once, with the field's place in the file."""
    pay = plane.breaker("payment")

    assert (
        2,
        f"file:{config_file}#breakers.payment.max_failures",
    ) == pay.explain()["max_failures"]


def test_an_edit_is_applied_to_the_running_breaker(
    plane: cbcontrol.ControlPlane, config_file: Path
) -> None:
    """Saving a new value retunes the live breaker within a second, state kept."""
    pay = plane.breaker("payment")
    with pytest.raises(ZeroDivisionError):
        pay.call(lambda: 1 / 0)

    write(config_file, "version: 1\nbreakers:\n  payment:\n    max_failures: 1\n")
    applied = wait_until(lambda: pay.config.max_failures == 1)

    assert applied
    assert 1 == pay.snapshot().failures
    assert State.CLOSED == pay.state


def test_a_broken_file_keeps_the_last_good_config(
    plane: cbcontrol.ControlPlane, config_file: Path
) -> None:
    """Unparsable YAML is rejected and reported; the breaker keeps its config."""
    pay = plane.breaker("payment")

    write(config_file, "version: 1\nbreakers:\n  payment: [unclosed\n")
    reported = wait_until(lambda: "store" in plane.errors())
    write(config_file, "version: 1\nbreakers:\n  payment:\n    max_failures: 5\n")
    recovered = wait_until(lambda: pay.config.max_failures == 5)

    assert reported
    assert recovered
    assert "store" not in plane.errors()


def test_an_invalid_value_keeps_the_last_good_config(
    plane: cbcontrol.ControlPlane, config_file: Path
) -> None:
    """A value that breaks a rule is rejected for that breaker only, with the place."""
    pay = plane.breaker("payment")
    cart = plane.breaker("cart")

    write(
        config_file,
        "version: 1\nbreakers:\n  payment:\n    max_failures: -1\n"
        "  cart:\n    max_failures: 9\n",
    )
    applied = wait_until(lambda: cart.config.max_failures == 9)

    assert applied
    assert 2 == pay.config.max_failures
    assert plane.errors()["breakers/payment"] == (
        f'breaker "payment": field "max_failures" from source '
        f'"file:{config_file}#breakers.payment.max_failures" must be >= 1, got -1'
    )


def test_a_trip_in_the_file_forces_the_breaker_open(
    plane: cbcontrol.ControlPlane, config_file: Path
) -> None:
    """An override written to the file forces the breaker open on the running app."""
    pay = plane.breaker("payment")

    write(
        config_file,
        "version: 1\nbreakers:\n  payment:\n"
        "    override: {mode: forced_open, reason: INC-42}\n",
    )

    assert wait_until(lambda: pay.state is State.FORCED_OPEN)
    with pytest.raises(cbcontrol.CircuitOpenError, match="INC-42"):
        pay.call(lambda: 1)


def test_default_store_is_the_local_file(
    config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With CBCONTROL_STORE unset, ./cbcontrol.yaml is used when it exists."""
    monkeypatch.chdir(config_file.parent)

    with cbcontrol.connect(environ={}) as plane:
        pay = plane.breaker("payment")

        assert "file" == plane.store.scheme
        assert 2 == pay.config.max_failures


def test_the_instance_reports_beside_the_file_and_withdraws(config_file: Path) -> None:
    """A plane writes its status to the status directory and deletes it on close."""
    store = cbcontrol.open_store(f"file://{config_file}", environ={})
    plane = cbcontrol.connect(f"file://{config_file}", app="checkout", environ={})
    plane.breaker("payment")

    reported = wait_until(
        lambda: [["payment"]] == [list(s.breakers) for s in store.instances()]
    )
    status = store.instances()[0]
    plane.close()

    assert reported
    assert ("checkout", plane.instance_id) == (status.app, status.instance_id)
    assert (2, f"file:{config_file}#breakers.payment.max_failures") == (
        status.breakers["payment"].effective["max_failures"].value,
        status.breakers["payment"].effective["max_failures"].source,
    )
    assert [] == store.instances()


def test_a_write_is_acknowledged_by_the_instance(
    plane: cbcontrol.ControlPlane, config_file: Path
) -> None:
    """open_store().update() then wait_applied() sees the running app apply it."""
    pay = plane.breaker("payment")
    store = cbcontrol.open_store(f"file://{config_file}", environ={})
    wait_until(lambda: any("payment" in s.breakers for s in store.instances()))

    result = store.update(
        "payment", lambda d: {**d, "max_failures": 4}, actor="ops@test", reason="tune"
    )
    ack = store.wait_applied("payment", result.generation, timeout=5.0)

    assert ack.complete
    assert (1, 1) == (ack.applied, ack.instances)
    assert 4 == pay.config.max_failures
    assert ["ops@test"] == [r.actor for r in store.history("payment")]


def test_a_status_that_cannot_be_published_is_in_health(
    config_file: Path, tmp_path: Path
) -> None:
    """A status directory that cannot be made: the app runs on, health says why."""
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    environ = {"CBCONTROL_STATUS_DIR": str(blocker / "status")}
    plane = cbcontrol.connect(f"file://{config_file}", app="checkout", environ=environ)
    plane.breaker("payment")

    failed = wait_until(lambda: plane.health().status_error is not None)
    health = plane.health()
    plane.close()

    assert failed
    assert str(health.status_error).startswith(
        f"cannot write instance status {blocker / 'status'}/"
    )
    assert "set CBCONTROL_STATUS_DIR to a writable directory" in str(
        health.status_error
    )
