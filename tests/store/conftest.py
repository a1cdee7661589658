"""Fixtures for the config-source tests: etcd with auth, with TLS, and a client."""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING

import pytest

from tests.support.etcd import APP_PASSWORD, APP_USER, ROOT_PASSWORD, EtcdServer

if TYPE_CHECKING:
    from collections.abc import Iterator

    from cbcontrol.store._etcd._client import EtcdClient


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
