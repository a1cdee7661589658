"""deploy/etcd/setup-rbac.sh against a real etcd: what each role may and may not do."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

import cbcontrol
from cbcontrol.exceptions import StoreAuthError
from tests.support.etcd import EtcdServer
from tests.support.waiting import wait_until

if TYPE_CHECKING:
    from collections.abc import Iterator

SCRIPT = Path(__file__).resolve().parents[2] / "deploy" / "etcd" / "setup-rbac.sh"
PASSWORDS = {
    "ETCD_ROOT_PASSWORD": "root-pw",
    "CBCONTROL_APP_PASSWORD": "app-pw",
    "CBCONTROL_OPERATOR_PASSWORD": "operator-pw",
}
APP = "cbcontrol-app-prod"
OPERATOR = "cbcontrol-operator-prod"

pytestmark = pytest.mark.etcd


def run_script(server: EtcdServer) -> subprocess.CompletedProcess[str]:
    """Run the script for namespace ``prod`` on ``server``."""
    env = {
        "PATH": os.environ["PATH"],
        "ETCDCTL_API": "3",
        "ETCDCTL_ENDPOINTS": server.endpoint,
        "CBCONTROL_NAMESPACE": "prod",
        **PASSWORDS,
    }
    return subprocess.run(
        [str(SCRIPT)], env=env, capture_output=True, text=True, check=False, timeout=60
    )


def etcdctl(
    server: EtcdServer, user: str, *args: str
) -> subprocess.CompletedProcess[str]:
    """Run etcdctl as ``user`` (its password from PASSWORDS)."""
    password = {
        APP: PASSWORDS["CBCONTROL_APP_PASSWORD"],
        OPERATOR: PASSWORDS["CBCONTROL_OPERATOR_PASSWORD"],
    }[user]
    env = {
        "PATH": os.environ["PATH"],
        "ETCDCTL_API": "3",
        "ETCDCTL_ENDPOINTS": server.endpoint,
        "ETCDCTL_USER": f"{user}:{password}",
    }
    return subprocess.run(
        ["etcdctl", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )


@pytest.fixture(scope="module")
def server() -> Iterator[EtcdServer]:
    """An etcd set up by the script (run twice: it must be re-runnable)."""
    with EtcdServer() as server:
        first = run_script(server)
        again = run_script(server)
        assert 0 == first.returncode, first.stderr
        assert 0 == again.returncode, again.stderr
        assert (
            f"namespace prod: users {APP} ({APP}), {OPERATOR} ({OPERATOR})\n"
            == again.stdout
        )
        yield server


def test_the_app_reads_specs_and_publishes_its_status(server: EtcdServer) -> None:
    """The app user gets its config from the spec; the operator sees it applied."""
    store = cbcontrol.open_store(
        f"etcd://{OPERATOR}:operator-pw@{server.endpoint}/prod"
    )
    written = store.update(
        "payment", lambda doc: {**doc, "max_failures": 3}, actor="ops", reason="test"
    )
    plane = cbcontrol.connect(
        f"etcd://{APP}:app-pw@{server.endpoint}/prod", app="checkout", environ={}
    )
    try:
        payment = plane.breaker("payment")

        assert 3 == payment.config.max_failures
        assert {} == plane.errors()
        assert plane.health().ok, plane.health()
        assert wait_until(
            lambda: any(
                s.breakers.get("payment") is not None
                and s.breakers["payment"].observed_generation == written.generation
                for s in store.instances()
            )
        )
    finally:
        plane.close()
        store.close()


def test_the_app_cannot_change_specs(server: EtcdServer) -> None:
    """Writing a spec with the app's credentials is refused."""
    store = cbcontrol.open_store(f"etcd://{APP}:app-pw@{server.endpoint}/prod")
    try:
        with pytest.raises(StoreAuthError):
            store.update("payment", lambda doc: {**doc, "max_failures": 1}, actor="app")
    finally:
        store.close()

    denied = etcdctl(server, APP, "put", "/cbcontrol/prod/presets/p", "{}")
    history = etcdctl(server, APP, "put", "/cbcontrol/prod/history/payment/1", "{}")
    epoch = etcdctl(server, APP, "put", "/cbcontrol/prod/epoch", "{}")
    assert "permission denied" in denied.stderr
    assert "permission denied" in history.stderr
    assert "permission denied" in epoch.stderr


def test_the_app_reads_only_what_configures_it(server: EtcdServer) -> None:
    """The app role reads specs, presets and the epoch, not the audit trail."""
    specs = etcdctl(server, APP, "get", "--prefix", "/cbcontrol/prod/breakers/")
    epoch = etcdctl(server, APP, "get", "/cbcontrol/prod/epoch")
    history = etcdctl(server, APP, "get", "--prefix", "/cbcontrol/prod/history/")
    everything = etcdctl(server, APP, "get", "--prefix", "/cbcontrol/prod/")
    # The epoch is granted as one key, not as a prefix of every key it begins.
    lookalike = etcdctl(server, APP, "get", "/cbcontrol/prod/epochs")

    assert 0 == specs.returncode, specs.stderr
    assert 0 == epoch.returncode, epoch.stderr
    assert "permission denied" in history.stderr
    assert "permission denied" in everything.stderr
    assert "permission denied" in lookalike.stderr


def test_roles_end_at_their_namespace(server: EtcdServer) -> None:
    """Neither role reaches another namespace; the operator cannot forge statuses."""
    other_app = etcdctl(server, APP, "get", "--prefix", "/cbcontrol/staging/")
    other_op = etcdctl(server, OPERATOR, "put", "/cbcontrol/staging/breakers/x", "{}")
    forged = etcdctl(server, OPERATOR, "put", "/cbcontrol/prod/instances/x", "{}")
    record = etcdctl(server, OPERATOR, "put", "/cbcontrol/prod/status/payment/x", "{}")
    allowed = etcdctl(server, OPERATOR, "put", "/cbcontrol/prod/presets/p", "{}")

    assert "permission denied" in other_app.stderr
    assert "permission denied" in other_op.stderr
    assert "permission denied" in forged.stderr
    assert "permission denied" in record.stderr
    assert 0 == allowed.returncode, allowed.stderr
