"""No credential appears in any output, error, log, status or health report."""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING

import pytest

import cbcontrol
from tests.cli import StoreEnv
from tests.support.etcd import APP_PASSWORD, APP_USER, free_port
from tests.support.waiting import wait_until

if TYPE_CHECKING:
    from tests.support.etcd import EtcdServer

SECRET = "s3cr3t-Pa55"  # noqa: S105 - a password that must never be shown


@pytest.mark.parametrize(
    "url",
    [
        f"etcd://ops:{SECRET}@127.0.0.1:{free_port()}/ns",  # nothing listens
        f"etcd://ops:{SECRET}@no-port/ns",
        f"etcd://ops:{SECRET}@127.0.0.1:99999/ns",
        f"etcd://ops:{SECRET}@127.0.0.1:2379/bad ns",
        f"etcds://ops:{SECRET}@/ns",
        f"etcd:/ops:{SECRET}@127.0.0.1:2379/ns",
        f"etcd://ops:{SECRET}@with@at:1/ns",
    ],
    ids=["refused", "no-port", "bad-port", "bad-namespace", "no-host", "typo", "at"],
)
def test_a_password_in_a_store_url_is_never_echoed(url: str) -> None:
    """Whatever is wrong with the URL or the store, the password stays out of it."""
    env = StoreEnv("etcd", url)

    results = [env.run("list"), env.run("get", "payment"), env.run("doctor")]

    assert [] == [r.args for r in results if r.returncode == 0]
    for result in results:
        assert SECRET not in result.stdout + result.stderr


@pytest.mark.etcd
def test_credentials_stay_out_of_cbctl_status_health_and_logs(
    auth_etcd_server: EtcdServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """With auth: wrong password, outputs, the instance status, health and logs."""
    caplog.set_level(logging.DEBUG)
    namespace = f"s{uuid.uuid4().hex[:8]}"
    endpoint = auth_etcd_server.endpoint
    good = f"etcd://{APP_USER}:{APP_PASSWORD}@{endpoint}/{namespace}"
    wrong = StoreEnv("etcd", f"etcd://{APP_USER}:{SECRET}@{endpoint}/{namespace}")
    plane = cbcontrol.connect(good, app="checkout")
    plane.breaker("payment")
    env = StoreEnv("etcd", good, etcd=auth_etcd_server, namespace=namespace)
    assert wait_until(lambda: "payment" in env.run("list").stdout, timeout=10)

    refused = wrong.run("list")
    outputs = [
        refused,
        env.run("list", "-o", "json"),
        env.run("get", "payment", "-o", "yaml"),
        env.run("doctor", "-o", "json"),
    ]
    auth_etcd_server.pause()
    assert wait_until(lambda: not plane.health().reachable, timeout=15)
    auth_etcd_server.resume()
    health = plane.health()
    status = plane.status().model_dump_json()
    plane.close()
    logged = "\n".join(r.getMessage() for r in caplog.records)

    assert 1 == refused.returncode
    assert "refused authentication for user 'app'" in refused.stderr
    for text in [*(r.stdout + r.stderr for r in outputs), status, repr(health), logged]:
        assert SECRET not in text
        assert APP_PASSWORD not in text
