"""Fixtures for every test: a clean environment, and real etcd servers when asked."""

from __future__ import annotations

import os
import shutil
import uuid
from typing import TYPE_CHECKING

import pytest

from tests.support.etcd import APP_PASSWORD, APP_USER, ROOT_PASSWORD, EtcdServer

if TYPE_CHECKING:
    from collections.abc import Iterator

    from cbcontrol.store._etcd._client import EtcdClient


@pytest.fixture(autouse=True)
def clean_environ(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Each test starts without the cbcontrol variables of the shell, and own caches."""
    for name in list(os.environ):
        if name.startswith(("CBCONTROL_", "CB_", "CBCTL_")) or "_CB_" in name:
            monkeypatch.delenv(name)
    # Planes keep a local copy of their store: never share one between tests.
    monkeypatch.setenv("CBCONTROL_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture(scope="session")
def etcd_server() -> Iterator[EtcdServer]:
    """One etcd for the session, shared by the tests that leave it as they found it."""
    with EtcdServer() as server:
        yield server


@pytest.fixture
def fresh_etcd_server() -> Iterator[EtcdServer]:
    """An etcd of the test's own, for tests that kill, pause or compact it."""
    with EtcdServer() as server:
        yield server


@pytest.fixture
def etcd_namespace() -> str:
    """A namespace no other test uses, so tests can share one server."""
    return f"t{uuid.uuid4().hex[:12]}"


@pytest.fixture
def auth_etcd_server() -> Iterator[EtcdServer]:
    """An etcd with auth on, 1 s tokens, and user `app` owning `/cbcontrol/`."""
    with EtcdServer("--auth-token-ttl=1") as server:
        server.enable_auth(ROOT_PASSWORD)
        server.add_user(APP_USER, APP_PASSWORD, readwrite_prefix="/cbcontrol/")
        yield server


@pytest.fixture
def tls_etcd_server() -> Iterator[EtcdServer]:
    """An etcd serving clients over TLS only, with a CA of its own."""
    if shutil.which("openssl") is None:  # `make test` installs it
        pytest.fail("the TLS test makes its certificates with openssl; install it")
    with EtcdServer(tls=True) as server:
        yield server


@pytest.fixture
def etcd_client(etcd_server: EtcdServer) -> Iterator[EtcdClient]:
    """A client of the session's etcd, closed after the test."""
    from cbcontrol.store._etcd._client import EtcdClient

    with EtcdClient(etcd_server.endpoints) as client:
        yield client
