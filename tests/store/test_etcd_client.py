"""The etcd client, against a real etcd server: writes, leases, auth, failures."""

from __future__ import annotations

import socket
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import pytest

from cbcontrol.exceptions import StoreAuthError, StoreUnavailableError
from cbcontrol.store._etcd._client import EtcdClient
from cbcontrol.store._etcd._lease import LeaseKeeper
from tests.support.etcd import APP_PASSWORD, APP_USER, free_port
from tests.support.stores import wait_for as wait_until

if TYPE_CHECKING:
    from tests.support.etcd import EtcdServer

pytestmark = pytest.mark.etcd


def key_of(namespace: str, kind: str, name: str) -> str:
    """The etcd key of a document."""
    return f"/cbcontrol/{namespace}/{kind}/{name}"


def test_watch_from_a_compacted_revision_reports_the_compaction(
    fresh_etcd_server: EtcdServer,
) -> None:
    """A watch that starts before the compacted revision says so instead of events."""
    with EtcdClient(fresh_etcd_server.endpoints) as client:
        first = client.put("/p/k", "1")
        client.put("/p/k", "2")
        compacted = fresh_etcd_server.compact()
        watch = client.watch_prefix("/p/", first)
        created, cancelled = watch.next(5), watch.next(5)
        watch.cancel()

    assert 0 == created.compacted_revision
    assert compacted == cancelled.compacted_revision
    assert () == cancelled.events


# -- writes, leases -----------------------------------------------------------------


def test_compare_and_swap_lets_exactly_one_of_two_writers_win(
    etcd_server: EtcdServer, etcd_client: EtcdClient, etcd_namespace: str
) -> None:
    """Two writers expecting the same revision race; exactly one write lands."""
    key = key_of(etcd_namespace, "breakers", "payment")
    etcd_client.put(key, "{}")
    _, revision = etcd_client.get(key)
    barrier = threading.Barrier(2)
    results: dict[str, bool] = {}

    def writer(name: str) -> None:
        with EtcdClient(etcd_server.endpoints) as client:
            barrier.wait()
            results[name] = client.compare_and_swap(key, name, revision)

    threads = [threading.Thread(target=writer, args=(n,)) for n in ("w1", "w2")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    winner = next(name for name, won in results.items() if won)
    value, _ = etcd_client.get(key)

    assert [False, True] == sorted(results.values())
    assert winner.encode() == value


def test_compare_and_swap_with_revision_zero_creates_only(
    etcd_client: EtcdClient, etcd_namespace: str
) -> None:
    """Expected revision 0 writes only a key that does not exist yet."""
    key = key_of(etcd_namespace, "breakers", "new")

    assert etcd_client.compare_and_swap(key, "first", 0)
    assert not etcd_client.compare_and_swap(key, "second", 0)
    assert (b"first", etcd_client.get(key)[1]) == etcd_client.get(key)


def test_lease_keys_vanish_on_revoke_and_on_expiry(
    etcd_client: EtcdClient, etcd_namespace: str
) -> None:
    """A key on a revoked lease is gone at once; one on an unrefreshed lease expires."""
    revoked, expiring = (key_of(etcd_namespace, "instances", n) for n in ("r", "e"))
    lease = etcd_client.grant_lease(10)
    etcd_client.put(revoked, "{}", lease=lease)
    short = etcd_client.grant_lease(1)
    etcd_client.put(expiring, "{}", lease=short)
    etcd_client.revoke(lease)
    after_revoke = etcd_client.get(revoked)
    wait_until(lambda: etcd_client.get(expiring) == (None, 0), 5)
    etcd_client.revoke(short)  # already gone: not an error

    assert (None, 0) == after_revoke
    assert 0 == etcd_client.keepalive(short)


def test_lease_keeper_keeps_the_lease_and_replaces_a_lost_one(
    etcd_client: EtcdClient, etcd_namespace: str
) -> None:
    """The keeper outlives the TTL, re-grants a revoked lease, and revokes on stop."""
    key = key_of(etcd_namespace, "instances", "i-1")
    leases: list[int] = []

    def on_lease(lease: int) -> None:
        leases.append(lease)
        etcd_client.put(key, "{}", lease=lease)

    keeper = LeaseKeeper(etcd_client, ttl=1, on_lease=on_lease)
    with keeper:
        wait_until(lambda: leases, 5)
        time.sleep(2.0)
        alive_after_ttl = etcd_client.get(key)[0]
        etcd_client.revoke(leases[0])
        wait_until(lambda: len(leases) == 2 and etcd_client.get(key)[0], 5)
    gone_after_stop = etcd_client.get(key)

    assert b"{}" == alive_after_ttl
    assert leases[0] != leases[1]
    assert (None, 0) == gone_after_stop


# -- auth, failures -----------------------------------------------------------------


def test_wrong_password_is_an_auth_error(auth_etcd_server: EtcdServer) -> None:
    """A wrong password raises StoreAuthError naming the endpoint, user and cause."""
    client = EtcdClient(
        auth_etcd_server.endpoints,
        user=APP_USER,
        password="wrong",
    )

    with pytest.raises(
        StoreAuthError,
        match=rf"^etcd at {auth_etcd_server.endpoint} refused authentication for user "
        r"'app': etcdserver: authentication failed, invalid user ID or password$",
    ):
        client.get("/cbcontrol/x")
    client.close()


def test_missing_credentials_and_foreign_keys_are_auth_errors(
    auth_etcd_server: EtcdServer,
) -> None:
    """No credentials, or a key outside the user's role, raise StoreAuthError."""
    anonymous = EtcdClient(auth_etcd_server.endpoints)
    app = EtcdClient(auth_etcd_server.endpoints, user=APP_USER, password=APP_PASSWORD)

    with pytest.raises(
        StoreAuthError,
        match=rf"^etcd at {auth_etcd_server.endpoint} refused get '/cbcontrol/x' for "
        r"a client without credentials \(set user and password\): "
        r"etcdserver: user name is empty$",
    ):
        anonymous.get("/cbcontrol/x")
    with pytest.raises(
        StoreAuthError,
        match=rf"^etcd at {auth_etcd_server.endpoint} refused put '/elsewhere' for "
        r"user 'app': etcdserver: permission denied$",
    ):
        app.put("/elsewhere", "x")
    anonymous.close()
    app.close()


def test_refused_endpoint_fails_fast_naming_it() -> None:
    """A port nobody listens on raises StoreUnavailableError at once."""
    port = free_port()
    client = EtcdClient([("127.0.0.1", port)], timeout=2)
    start = time.monotonic()

    with pytest.raises(
        StoreUnavailableError,
        match=rf"^etcd at 127\.0\.0\.1:{port} is unavailable \(get '/k'\): .*"
        r"(?i:connection refused).*$",
    ):
        client.get("/k")
    assert time.monotonic() - start < 2
    client.close()


def test_silent_endpoint_times_out_naming_it() -> None:
    """A peer that accepts connections but never answers times out within `timeout`."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        client = EtcdClient([("127.0.0.1", port)], timeout=1)
        start = time.monotonic()

        with pytest.raises(
            StoreUnavailableError,
            match=rf"^etcd at 127\.0\.0\.1:{port} is unavailable \(get '/k'\): "
            r"no answer within 1s$",
        ):
            client.get("/k")
        assert time.monotonic() - start < 3
        client.close()


@pytest.mark.parametrize(
    ("details", "shown"),
    [("context deadline exceeded", "no answer within 1s"), ("context canceled", "")],
)
def test_a_members_own_deadline_answer_is_unavailable_and_moves_on(
    etcd_server: EtcdServer, details: str, shown: str
) -> None:
    """A member that gives up waiting for a leader answers UNKNOWN with Go's context
    error: that is transient (writes retry on it), and the next endpoint is tried."""
    grpc = pytest.importorskip("grpc")
    from pyetcd import etcdrpc

    class GivingUp(etcdrpc.KVServicer):  # type: ignore[misc]
        """A member that gives every read up, as one without a leader does."""

        def Range(self, request: object, context: Any) -> None:  # noqa: N802
            """Answer as etcd does when the caller's deadline passed first."""
            context.abort(grpc.StatusCode.UNKNOWN, details)

    server = grpc.server(ThreadPoolExecutor(max_workers=2))
    etcdrpc.add_KVServicer_to_server(GivingUp(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with (
            EtcdClient([("127.0.0.1", port)], timeout=1) as alone,
            pytest.raises(
                StoreUnavailableError,
                match=rf"^etcd at 127\.0\.0\.1:{port} is unavailable \(get '/k'\): "
                rf"{shown or details}$",
            ),
        ):
            alone.get("/k")
        endpoints = [("127.0.0.1", port), *etcd_server.endpoints]
        with EtcdClient(endpoints, timeout=1) as client:
            assert (None, 0) == client.get("/moved-on")  # from the second endpoint
    finally:
        server.stop(None)


def test_second_endpoint_is_used_when_the_first_is_down(
    etcd_server: EtcdServer,
) -> None:
    """With one endpoint refusing, calls go to the next one."""
    endpoints = [("127.0.0.1", free_port()), *etcd_server.endpoints]
    with EtcdClient(endpoints) as client:
        revision = client.put("/failover", "ok")

        assert (b"ok", revision) == client.get("/failover")


def test_missing_library_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without etcd-sdk-python (or etcd3) the error says which extra to install."""
    monkeypatch.setitem(sys.modules, "pyetcd.etcdrpc", None)
    monkeypatch.setitem(sys.modules, "etcd3.etcdrpc", None)

    with pytest.raises(
        ImportError,
        match=r"^etcd support is not installed, run `pip install cbcontrol\[etcd\]`$",
    ):
        EtcdClient()
