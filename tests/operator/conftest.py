"""Fixtures of the operator API tests: a store of each kind, and instances on it."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest

import cbcontrol
from cbcontrol.exceptions import StoreError
from cbcontrol.operator import Operator, open_operator
from cbcontrol.store import MemoryStore

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from tests.support.etcd import EtcdServer


@dataclass
class Fleet:
    """A store, the operator API on it, and the instances a test starts."""

    store: str | MemoryStore
    op: Operator
    planes: list[cbcontrol.ControlPlane] = field(default_factory=list)

    def instance(self, *names: str, **labels: str) -> cbcontrol.ControlPlane:
        """A live instance with breakers ``names`` and ``labels``, once it reports."""
        plane = cbcontrol.connect(self.store, app="checkout", labels=labels)
        self.planes.append(plane)
        for name in names:
            plane.breaker(name)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                view = self.op.store.view()
            except StoreError:
                view = None
            reported = [
                s
                for s in (view.instances if view else [])
                if s["instance_id"] == plane.instance_id
            ]
            if reported and set(names) <= set(reported[0]["breakers"]):
                return plane
            time.sleep(0.02)
        msg = f"instance {plane.instance_id} did not report in time"
        raise AssertionError(msg)

    def close(self) -> None:
        """Stop the instances and close the API."""
        for plane in self.planes:
            plane.close()
        self.op.close()


def _fleet(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Fleet:
    if kind == "memory":
        memory = MemoryStore()
        return Fleet(memory, Operator(cbcontrol.open_store(memory), actor="tester"))
    if kind == "file":
        url = f"file://{tmp_path / 'cbcontrol.yaml'}"
        return Fleet(url, open_operator(url, actor="tester", create=True))
    server: EtcdServer = request.getfixturevalue("etcd_server")
    namespace: str = request.getfixturevalue("etcd_namespace")
    url = f"etcd://{server.endpoint}/{namespace}"
    return Fleet(url, open_operator(url, actor="tester"))


@pytest.fixture(params=["file", pytest.param("etcd", marks=pytest.mark.etcd)])
def fleet(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Fleet]:
    """The file store, then etcd."""
    found = _fleet(request.param, tmp_path, request)
    yield found
    found.close()


@pytest.fixture
def memory_fleet(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Fleet]:
    """The in-memory store: changes are delivered before a write returns."""
    found = _fleet("memory", tmp_path, request)
    yield found
    found.close()


def sources(plane: cbcontrol.ControlPlane, name: str) -> dict[str, Any]:
    """``{field: (value, source)}`` of a breaker on an instance."""
    return plane.breaker(name).explain()
