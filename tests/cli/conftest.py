"""Fixtures for the cbctl tests: both stores, each with live instances on demand."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.cli import StoreEnv

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from tests.support.etcd import EtcdServer


@pytest.fixture
def file_env(tmp_path: Path) -> Iterator[StoreEnv]:
    """A YAML file store in the test's temporary directory."""
    path = tmp_path / "cbcontrol.yaml"
    path.write_text("version: 1\n")
    env = StoreEnv("file", f"file://{path}", path=path)
    yield env
    env.close()


@pytest.fixture
def etcd_env(etcd_server: EtcdServer, etcd_namespace: str) -> Iterator[StoreEnv]:
    """The session's etcd, in a namespace of the test's own."""
    url = f"etcd://{etcd_server.endpoint}/{etcd_namespace}"
    env = StoreEnv("etcd", url, etcd=etcd_server, namespace=etcd_namespace)
    yield env
    env.close()


@pytest.fixture(params=["file", pytest.param("etcd", marks=pytest.mark.etcd)])
def env(request: pytest.FixtureRequest) -> StoreEnv:
    """Each store in turn: the file store, then etcd."""
    return request.getfixturevalue(f"{request.param}_env")
