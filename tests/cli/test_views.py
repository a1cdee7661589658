"""
The views cbctl prints are the same whether cbctl validates a spec or trusts the fleet.

`cbctl get` skips validating a stored spec (and loading pydantic) when every live
instance that has the breaker applied it without error. What it then shows must be
exactly what validating gives.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from cbcontrol import StoredSpec
from cbctl._render import to_json
from cbctl._views import Fleet, breaker_view

if TYPE_CHECKING:
    from tests.cli import StoreEnv


def _views_both_ways(
    env: StoreEnv, monkeypatch: pytest.MonkeyPatch
) -> tuple[str, str, bool]:
    """``payment``'s view as cbctl builds it, as validation gives it, and if trusted."""
    with env.open() as store:
        fleet = Fleet(store)
    stored = fleet.specs["payment"]
    as_built = breaker_view(fleet, "payment")
    trusted = stored.confirmed_by([])  # what the view's own call decided, cached
    fleet.specs = {
        n: StoredSpec(s.name, s.data, s.origin) for n, s in fleet.specs.items()
    }
    with monkeypatch.context() as patch:
        patch.setattr(StoredSpec, "confirmed_by", lambda *_: False)
        validated = breaker_view(fleet, "payment")
    # Compared as `-o json` prints them: 50 and 50.0 are equal in Python, not in JSON.
    return to_json(as_built), to_json(validated), trusted


def _await_applied(env: StoreEnv, result_generation: int) -> None:
    with env.open() as store:
        ack = store.wait_applied("payment", result_generation, timeout=5)
    assert ack.complete


@pytest.mark.parametrize(
    ("change", "trusted"),
    [
        (["set", "payment", "--max-failures", "3"], True),
        (["set", "payment", "--reset-timeout", "1m30s", "--jitter", "0"], True),
        (
            [
                "set",
                "payment",
                "--failure-rate-threshold",
                "50",
                "--minimum-calls",
                "5",
            ],
            True,
        ),
        (
            ["set", "payment", "--request-timeout", "none", "--preset", "analytics"],
            True,
        ),
        (["set", "payment", "--fallback-url", "http://backup"], True),
        (["trip", "payment", "--reason", "incident 42"], True),
        (["reset", "payment"], True),
        (["trip", "payment", "--for", "10m"], False),  # `until` is validated
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else str(v),
)
def test_a_spec_the_fleet_applied_shows_as_validated(
    env: StoreEnv, monkeypatch: pytest.MonkeyPatch, change: list[str], trusted: bool
):
    """Trusting the fleet's validation gives the view that validating gives."""
    env.instance("payment")
    result = env.cbctl(*change, "-o", "json")
    assert 0 == result.exit_code, result.output

    as_built, validated, was_trusted = _views_both_ways(env, monkeypatch)

    assert (validated, trusted) == (as_built, was_trusted)


def test_a_spec_an_instance_has_not_applied_is_validated(
    env: StoreEnv, monkeypatch: pytest.MonkeyPatch
):
    """A pending instance, or one reporting an error, leaves validating to cbctl."""
    env.instance("payment")
    env.cbctl("set", "payment", "--max-failures", "3")
    env.fake_instance("payment", observed_generation=0)

    as_built, validated, was_trusted = _views_both_ways(env, monkeypatch)

    assert (validated, False) == (as_built, was_trusted)


def test_a_hand_written_spec_with_text_values_is_shown_as_the_library_reads_it(
    etcd_env: StoreEnv, monkeypatch: pytest.MonkeyPatch
):
    """`"30s"`, `50` for a float: shown as 30.0 and 50.0, trusted or validated."""
    from cbcontrol.store._etcd._client import EtcdClient

    assert etcd_env.etcd is not None
    etcd_env.instance("payment")
    key = f"/cbcontrol/{etcd_env.namespace}/breakers/payment"
    with EtcdClient(etcd_env.etcd.endpoints) as client:
        client.put(
            key,
            '{"generation": 7, "reset_timeout": "30s", "failure_rate_threshold": 50,'
            ' "minimum_calls": 5}',
        )
    _await_applied(etcd_env, 7)

    as_built, validated, was_trusted = _views_both_ways(etcd_env, monkeypatch)

    assert (validated, True) == (as_built, was_trusted)
    spec = json.loads(as_built)["spec"]
    assert ["30.0", "50.0"] == [
        json.dumps(spec[f]) for f in ("reset_timeout", "failure_rate_threshold")
    ]
