"""`cbctl watch`: a frame at once, one per change of the store, and when stale."""

from __future__ import annotations

import json
import re
import subprocess
from typing import TYPE_CHECKING

import pytest

from tests.cli import CBCTL, lines

if TYPE_CHECKING:
    from tests.cli import StoreEnv
    from tests.support.etcd import EtcdServer


def test_watch_draws_the_fleet_at_once(env: StoreEnv):
    """The first frame comes without waiting for a change; `-o json` is one line."""
    env.instance("payment")

    result = env.cbctl("watch", "--iterations", "1", "-o", "json")

    (frame,) = lines(result.stdout)
    assert 0 == result.exit_code, result.output
    assert ["payment"] == [view["name"] for view in json.loads(frame)]


def test_watch_table_has_a_header_and_the_list(env: StoreEnv):
    """Piped, the dashboard is printed as a header line and the list table."""
    env.instance("payment")

    result = env.cbctl("watch", "--iterations", "1")

    output = lines(result.stdout)
    assert 0 == result.exit_code, result.output
    assert re.match(
        rf"^cbctl watch · {re.escape(env.url)} · 1 instances · \d\d:\d\d:\d\d UTC · "
        r"Ctrl-C to quit$",
        output[0],
    )
    assert ["payment", "closed", "1"] == output[4].split()[:3]


def test_watch_redraws_when_the_store_changes(env: StoreEnv):
    """A write by someone else produces the next frame, without polling by cbctl."""
    args = [str(CBCTL), "--store", env.url, "watch", "--iterations", "2", "-o", "json"]
    with subprocess.Popen(args, stdout=subprocess.PIPE, text=True) as process:
        assert process.stdout is not None
        first = json.loads(process.stdout.readline())
        with env.open() as store:
            store.update("payment", lambda d: {**d, "max_failures": 3}, actor="test")
        second = json.loads(process.stdout.readline())
        code = process.wait(timeout=10)

    assert 0 == code
    assert [] == first
    assert [("payment", 3)] == [(v["name"], v["spec"]["max_failures"]) for v in second]


@pytest.mark.etcd
def test_watch_says_when_its_data_is_stale(fresh_etcd_server: EtcdServer):
    """With etcd gone, the next frame keeps the last data and says it is stale."""
    url = f"etcd://{fresh_etcd_server.endpoint}/w"
    args = [str(CBCTL), "--store", url, "watch", "--iterations", "2"]
    with subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        assert process.stdout is not None
        first = process.stdout.readline()
        fresh_etcd_server.kill()
        out, _ = process.communicate(timeout=20)

    assert first.startswith("cbctl watch · ")
    assert re.search(
        r" STALE since \d\d:\d\d:\d\d UTC: the data below may be out of date: etcd "
        rf"at {re.escape(fresh_etcd_server.endpoint)} is unavailable",
        " ".join(out.split()),
    ), out
