"""Fixtures of the end-to-end tests: a store of each kind, app fleets, and cbctl."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import pytest

import cbcontrol
from cbcontrol.exceptions import StoreError
from tests.e2e.harness import App, Cbctl, wait_until
from tests.support.etcd import EtcdServer

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path


@pytest.fixture(scope="session")
def e2e_etcd() -> Iterator[EtcdServer]:
    """One real etcd for the end-to-end tests; each test uses its own namespace."""
    with EtcdServer() as server:
        yield server


@pytest.fixture(params=["file", pytest.param("etcd", marks=pytest.mark.etcd)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh store: a YAML file in the test's directory, or a new etcd namespace."""
    if request.param == "file":
        path = tmp_path / "cbcontrol.yaml"
        path.write_text("version: 1\n")
        return f"file://{path}"
    server: EtcdServer = request.getfixturevalue("e2e_etcd")
    return f"etcd://{server.endpoint}/e2e{uuid.uuid4().hex[:12]}"


@pytest.fixture
def cbctl(store: str) -> Cbctl:
    """The real cbctl program, pointed at the test's store."""
    return Cbctl(store)


@pytest.fixture
def start_apps(store: str, tmp_path: Path) -> Iterator[Callable[..., list[App]]]:
    """Start checkout apps, wait until the store lists them; all are killed after."""
    started: list[App] = []

    def start(count: int, **env: str) -> list[App]:
        apps = [
            App(store, tmp_path / f"app{len(started) + i}.log", env)
            for i in range(count)
        ]
        started.extend(apps)
        for app in apps:
            app.wait_ready()
        expected = {app.instance_id for app in started if app.process.poll() is None}

        def all_reported() -> bool:
            try:
                with cbcontrol.open_store(store) as control:
                    statuses = control.instances()
            except StoreError:  # a new file store: no status written yet
                return False
            reported = {s.instance_id for s in statuses if "payment" in s.breakers}
            return expected <= reported

        assert wait_until(all_reported, timeout=10), "apps did not report"
        return apps

    yield start
    for app in started:
        app.close()
