"""The etcd client and live source, against a real etcd server."""

from __future__ import annotations

import json
import logging
import re
import socket
import statistics
import sys
import threading
import time
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import pytest

from cbcontrol._etcd import EtcdClient, LeaseKeeper
from cbcontrol.config.sources._etcd import EtcdSource
from cbcontrol.exceptions import StoreAuthError, StoreUnavailableError
from tests.support.etcd import APP_PASSWORD, APP_USER, free_port

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping, Sequence

    from cbcontrol.config.sources._base import RawEntry, SourceSnapshot
    from tests.support.etcd import EtcdServer

pytestmark = pytest.mark.etcd

GOOD = {"max_failures": 3, "reset_timeout": "30s"}


def wait_until(predicate: Callable[[], Any], timeout: float) -> Any:
    """Poll ``predicate`` until it returns something truthy, for at most ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            msg = f"condition not met within {timeout}s"
            raise AssertionError(msg)
        time.sleep(0.01)


def put_retrying(client: EtcdClient, key: str, value: object) -> int:
    """Put JSON, retrying (bounded) while a just-restarted etcd is reconnected."""
    deadline = time.monotonic() + 5
    while True:
        try:
            return client.put(key, json.dumps(value))
        except StoreUnavailableError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


class Recorder:
    """An ``on_change`` that keeps every snapshot with the time it arrived."""

    def __init__(self) -> None:
        self.calls: list[tuple[float, SourceSnapshot]] = []

    def __call__(self, snapshot: SourceSnapshot) -> None:
        self.calls.append((time.perf_counter(), snapshot))

    @property
    def last(self) -> SourceSnapshot | None:
        """The latest snapshot, if any."""
        return self.calls[-1][1] if self.calls else None

    def entry(self, kind: str, name: str) -> RawEntry | None:
        """The latest snapshot's entry for ``(kind, name)``."""
        last = self.last
        return None if last is None else last.entries.get((kind, name))  # type: ignore[arg-type]

    def data(self, kind: str, name: str) -> Mapping[str, object] | None:
        """The latest snapshot's data for ``(kind, name)``."""
        entry = self.entry(kind, name)
        return None if entry is None else entry.data


@contextmanager
def running(source: EtcdSource) -> Iterator[Recorder]:
    """Run ``source`` in a thread; on exit, check that it stops within a second."""
    recorder = Recorder()
    stop = threading.Event()
    thread = threading.Thread(target=source.run, args=(recorder, stop), daemon=True)
    thread.start()
    try:
        yield recorder
    finally:
        stop.set()
        thread.join(timeout=1.5)
        source.close()
        assert not thread.is_alive(), "run() did not return within 1.5 s of stop"


def key_of(namespace: str, kind: str, name: str) -> str:
    """The etcd key of a document."""
    return f"/cbcontrol/{namespace}/{kind}/{name}"


# -- read ---------------------------------------------------------------------------


def test_read_returns_breakers_and_presets_with_their_origin(
    etcd_server: EtcdServer, etcd_client: EtcdClient, etcd_namespace: str
) -> None:
    """read() returns each breaker and preset document with its key and revision."""
    breaker = key_of(etcd_namespace, "breakers", "payment")
    rev_b = etcd_client.put(breaker, json.dumps(GOOD))
    rev_p = etcd_client.put(key_of(etcd_namespace, "presets", "critical"), "{}")
    source = EtcdSource(etcd_server.endpoints, etcd_namespace)

    snapshot = source.read()
    source.close()

    assert f"etcd://{etcd_server.endpoint}/{etcd_namespace}" == snapshot.source
    assert str(rev_p) == snapshot.revision
    assert snapshot.error is None
    assert {("breakers", "payment"), ("presets", "critical")} == set(snapshot.entries)
    entry = snapshot.entries[("breakers", "payment")]
    assert GOOD == entry.data
    assert f"etcd:{breaker}@{rev_b}" == entry.origin
    assert entry.error is None


def test_read_ignores_keys_outside_breakers_and_presets(
    etcd_server: EtcdServer, etcd_client: EtcdClient, etcd_namespace: str
) -> None:
    """Instances, unknown kinds, nested names and look-alike namespaces are ignored."""
    etcd_client.put(key_of(etcd_namespace, "breakers", "a"), "{}")
    for key in (
        f"/cbcontrol/{etcd_namespace}/instances/i-1",
        f"/cbcontrol/{etcd_namespace}/other/a",
        f"/cbcontrol/{etcd_namespace}/breakers/a/b",
        f"/cbcontrol/{etcd_namespace}/breakers/",
        f"/cbcontrol/{etcd_namespace}x/breakers/b",
    ):
        etcd_client.put(key, "{}")
    source = EtcdSource(etcd_server.endpoints, etcd_namespace)

    snapshot = source.read()
    source.close()

    assert [("breakers", "a")] == list(snapshot.entries)


def test_read_reports_garbage_that_never_parsed(
    etcd_server: EtcdServer, etcd_client: EtcdClient, etcd_namespace: str
) -> None:
    """A key whose only version is not a JSON object has no data and an error."""
    key = key_of(etcd_namespace, "breakers", "bad")
    rev = etcd_client.put(key, b"\xff{}")
    source = EtcdSource(etcd_server.endpoints, etcd_namespace)

    entry = source.read().entries[("breakers", "bad")]
    source.close()

    assert entry.data is None
    assert (
        f'etcd key "{key}" at revision {rev} must be a JSON object, got bytes that '
        "are not UTF-8 (invalid start byte): '\ufffd{}'"
    ) == entry.error


# -- run ----------------------------------------------------------------------------


def test_run_delivers_every_put_within_milliseconds(
    etcd_server: EtcdServer, etcd_client: EtcdClient, etcd_namespace: str
) -> None:
    """Each of 50 puts reaches on_change as a fresh snapshot (latency printed)."""
    key = key_of(etcd_namespace, "breakers", "payment")
    source = EtcdSource(etcd_server.endpoints, etcd_namespace)
    latencies = []
    with running(source) as recorder:
        wait_until(lambda: recorder.last, 5)
        for i in range(1, 51):
            start = time.perf_counter()
            etcd_client.put(key, json.dumps({"max_failures": i}))
            wait_until(
                lambda i=i: recorder.data("breakers", "payment") == {"max_failures": i},
                5,
            )
            latencies.append(recorder.calls[-1][0] - start)
    p50 = statistics.median(latencies) * 1000
    p99 = statistics.quantiles(latencies, n=100)[98] * 1000
    sys.stdout.write(
        f"\nput -> on_change over 50 puts: p50 {p50:.2f} ms, p99 {p99:.2f} ms\n"
    )

    assert 51 == len(recorder.calls)
    assert max(latencies) < 1.0


def test_run_drops_deleted_keys(
    etcd_server: EtcdServer, etcd_client: EtcdClient, etcd_namespace: str
) -> None:
    """A deleted key disappears from the next snapshot; the others stay."""
    etcd_client.put(key_of(etcd_namespace, "breakers", "a"), "{}")
    etcd_client.put(key_of(etcd_namespace, "breakers", "b"), "{}")
    source = EtcdSource(etcd_server.endpoints, etcd_namespace)
    with running(source) as recorder:
        wait_until(lambda: recorder.entry("breakers", "a"), 5)
        deleted = etcd_client.delete(key_of(etcd_namespace, "breakers", "a"))
        wait_until(lambda: not recorder.entry("breakers", "a"), 5)

    assert deleted
    assert [("breakers", "b")] == list(recorder.calls[-1][1].entries)


def test_run_delivers_presets_and_ignores_other_keys(
    etcd_server: EtcdServer, etcd_client: EtcdClient, etcd_namespace: str
) -> None:
    """A preset put is delivered; a put outside breakers/presets triggers nothing."""
    source = EtcdSource(etcd_server.endpoints, etcd_namespace)
    source.read()
    with running(source) as recorder:
        etcd_client.put(f"/cbcontrol/{etcd_namespace}/instances/i-1", "{}")
        etcd_client.put(key_of(etcd_namespace, "presets", "checkout"), '{"x": 1}')
        wait_until(lambda: recorder.entry("presets", "checkout"), 5)

    assert 1 == len(recorder.calls)
    assert {"x": 1} == recorder.data("presets", "checkout")


@pytest.mark.parametrize(
    ("raw", "got"),
    [
        ("max_failures: 3", "invalid JSON (Expecting value at line 1 column 1)"),
        ("[1, 2, 3]", "a JSON array"),
        ("42", "a JSON number"),
    ],
)
def test_run_keeps_last_good_data_of_a_garbage_key(
    etcd_server: EtcdServer,
    etcd_client: EtcdClient,
    etcd_namespace: str,
    raw: str,
    got: str,
) -> None:
    """Garbage in a key keeps its last good data with an error; a fix clears it."""
    key = key_of(etcd_namespace, "breakers", "payment")
    good_rev = etcd_client.put(key, json.dumps(GOOD))
    source = EtcdSource(etcd_server.endpoints, etcd_namespace)
    with running(source) as recorder:
        wait_until(lambda: recorder.data("breakers", "payment"), 5)
        bad_rev = etcd_client.put(key, raw)
        broken = wait_until(lambda: recorder.entry("breakers", "payment").error, 5)
        kept = recorder.entry("breakers", "payment")
        etcd_client.put(key, '{"max_failures": 7}')
        wait_until(
            lambda: recorder.data("breakers", "payment") == {"max_failures": 7}, 5
        )
        fixed = recorder.entry("breakers", "payment")

    assert (
        f'etcd key "{key}" at revision {bad_rev} must be a JSON object, '
        f"got {got}: {raw!r}"
    ) == broken
    assert GOOD == kept.data
    assert f"etcd:{key}@{good_rev}" == kept.origin
    assert fixed.error is None


def test_run_reports_a_killed_etcd_and_catches_up_after_restart(
    fresh_etcd_server: EtcdServer, etcd_namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    """While etcd is down the snapshot has the error; a put after restart arrives."""
    caplog.set_level(logging.INFO, logger="cbcontrol.etcd")
    server = fresh_etcd_server
    key = key_of(etcd_namespace, "breakers", "payment")
    client = EtcdClient(server.endpoints)
    client.put(key, json.dumps(GOOD))
    source = EtcdSource(server.endpoints, etcd_namespace)
    with running(source) as recorder:
        wait_until(lambda: recorder.data("breakers", "payment"), 5)
        server.kill()
        down = wait_until(lambda: recorder.last.error and recorder.last, 5)
        time.sleep(1.5)  # several reconnection attempts while it is down
        server.start()
        back = time.monotonic()
        put_retrying(client, key, {"max_failures": 9})
        wait_until(
            lambda: recorder.data("breakers", "payment") == {"max_failures": 9}, 5
        )
        caught_up = time.monotonic() - back
    client.close()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]

    assert re.fullmatch(
        rf"etcd at {server.endpoint} is unavailable \(watch prefixes "
        rf"'/cbcontrol/{etcd_namespace}/breakers/', "
        rf"'/cbcontrol/{etcd_namespace}/presets/'\): .+",
        down.error,
    )
    assert GOOD == down.entries[("breakers", "payment")].data
    assert down.revision.endswith("+unavailable")
    assert caught_up < 5
    assert recorder.last.error is None
    assert 1 == len(warnings)
    assert 1 == sum("reconnected after" in r.getMessage() for r in caplog.records)


def test_run_detects_a_hung_etcd_and_recovers(
    fresh_etcd_server: EtcdServer, etcd_namespace: str
) -> None:
    """A frozen etcd is reported within 10 s; changes flow again after it resumes."""
    server = fresh_etcd_server
    key = key_of(etcd_namespace, "breakers", "payment")
    client = EtcdClient(server.endpoints)
    client.put(key, json.dumps(GOOD))
    source = EtcdSource(server.endpoints, etcd_namespace)
    with running(source) as recorder:
        wait_until(lambda: recorder.data("breakers", "payment"), 5)
        server.pause()
        paused = time.monotonic()
        error = wait_until(lambda: recorder.last.error, 10)
        detected = time.monotonic() - paused
        time.sleep(1.0)
        server.resume()
        back = time.monotonic()
        put_retrying(client, key, {"max_failures": 4})
        wait_until(
            lambda: recorder.data("breakers", "payment") == {"max_failures": 4}, 5
        )
        caught_up = time.monotonic() - back
    client.close()
    sys.stdout.write(f"\nhung etcd detected after {detected:.1f} s\n")

    assert re.fullmatch(
        rf"etcd at {server.endpoint} is unavailable: no answer on the watch stream "
        r"within 6s \(hung or partitioned\)",
        error,
    )
    assert detected < 10
    assert caught_up < 5
    assert recorder.last.error is None


def test_run_stops_promptly_while_etcd_is_hung(
    fresh_etcd_server: EtcdServer, etcd_namespace: str
) -> None:
    """Setting stop ends run() within a second even while a read hangs."""
    source = EtcdSource(fresh_etcd_server.endpoints, etcd_namespace, hang_timeout=1.0)
    with running(source) as recorder:
        wait_until(lambda: recorder.last, 5)
        fresh_etcd_server.pause()
        wait_until(lambda: recorder.last.error, 5)
        time.sleep(0.3)  # now inside a read that cannot answer
    fresh_etcd_server.resume()

    assert "hung or partitioned" in recorder.last.error


class CompactingClient(EtcdClient):
    """A client that lets writes and a compaction slip in before the first watch."""

    def __init__(self, server: EtcdServer, writes: dict[str, str]) -> None:
        super().__init__(server.endpoints)
        self.server = server
        self.writes = writes

    def watch_prefixes(self, prefixes: Sequence[str], start_revision: int = 0) -> Any:
        """Write and compact past ``start_revision``, then watch."""
        if self.writes:
            for key, value in self.writes.items():
                self.put(key, value)
            self.writes = {}
            self.server.compact()
        return super().watch_prefixes(prefixes, start_revision)


def test_run_rereads_everything_when_its_revision_was_compacted(
    fresh_etcd_server: EtcdServer, etcd_namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Changes the watch missed behind a compaction are picked up by a full re-read."""
    caplog.set_level(logging.INFO, logger="cbcontrol.etcd")
    server = fresh_etcd_server
    a, b = (
        key_of(etcd_namespace, "breakers", "a"),
        key_of(etcd_namespace, "breakers", "b"),
    )
    with EtcdClient(server.endpoints) as client:
        client.put(a, '{"v": 1}')
        client.put(b, '{"v": 1}')
    missed = {a: '{"v": 2}', b: '{"v": 2}'}
    source = EtcdSource(
        namespace=etcd_namespace,
        client_factory=lambda: CompactingClient(server, dict(missed)),
    )
    with running(source) as recorder:
        wait_until(
            lambda: (
                recorder.data("breakers", "a") == {"v": 2}
                and recorder.data("breakers", "b") == {"v": 2}
            ),
            5,
        )

    assert any("was compacted" in r.getMessage() for r in caplog.records)
    assert all(snapshot.error is None for _, snapshot in recorder.calls)


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


def test_right_password_survives_token_expiry_and_restart(
    auth_etcd_server: EtcdServer, etcd_namespace: str
) -> None:
    """Expired and restart-invalidated tokens are renewed, for calls and the watch."""
    server = auth_etcd_server
    key = key_of(etcd_namespace, "breakers", "payment")
    client = EtcdClient(server.endpoints, user=APP_USER, password=APP_PASSWORD)
    client.put(key, json.dumps(GOOD))
    time.sleep(2.5)  # the 1 s token expires
    after_expiry = client.get(key)[0]
    source = EtcdSource(
        server.endpoints, etcd_namespace, user=APP_USER, password=APP_PASSWORD
    )
    with running(source) as recorder:
        wait_until(lambda: recorder.data("breakers", "payment"), 5)
        server.restart()
        back = time.monotonic()
        put_retrying(client, key, {"max_failures": 2})
        wait_until(
            lambda: recorder.data("breakers", "payment") == {"max_failures": 2}, 5
        )
        caught_up = time.monotonic() - back
    client.close()

    assert json.dumps(GOOD).encode() == after_expiry
    assert caught_up < 5


def test_tls_endpoint_works_with_its_ca(
    tls_etcd_server: EtcdServer, etcd_namespace: str
) -> None:
    """Over TLS the client and the source work with the CA, and fail without it."""
    server = tls_etcd_server
    ca_cert = str(server.ca_cert)
    with EtcdClient(server.endpoints, ca_cert=ca_cert) as client:
        client.put(key_of(etcd_namespace, "breakers", "a"), "{}")
    source = EtcdSource(server.endpoints, etcd_namespace, ca_cert=ca_cert)
    snapshot = source.read()
    source.close()
    plaintext = EtcdClient(server.endpoints)
    untrusted = EtcdClient(server.endpoints, tls=True)  # system roots only

    assert f"etcds://{server.endpoint}/{etcd_namespace}" == snapshot.source
    assert [("breakers", "a")] == list(snapshot.entries)
    for client in (plaintext, untrusted):
        with pytest.raises(
            StoreUnavailableError, match=rf"^etcd at {server.endpoint} "
        ):
            client.get("/k")
        client.close()


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
