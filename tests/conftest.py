"""Fixtures for every test: a clean environment, and a real etcd when asked for."""

from __future__ import annotations

import os
import uuid
from typing import TYPE_CHECKING

import pytest

from tests.support.etcd import EtcdServer

if TYPE_CHECKING:
    from collections.abc import Iterator


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
