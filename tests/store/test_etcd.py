"""The etcd backend against a real etcd: reads, the supervised watch, status keys."""

from __future__ import annotations

import json
import logging
import re
import statistics
import sys
import threading
import time
from typing import TYPE_CHECKING

import pytest

from cbcontrol.exceptions import StoreUnavailableError
from cbcontrol.store import Scope
from cbcontrol.store._etcd._backend import EtcdBackend
from cbcontrol.store._etcd._client import EtcdClient
from tests.support.etcd import APP_PASSWORD, APP_USER
from tests.support.stores import Follower, wait_for

if TYPE_CHECKING:
    from tests.support.etcd import EtcdServer

pytestmark = pytest.mark.etcd

GOOD = {"max_failures": 3, "reset_timeout": "30s"}


def key_of(namespace: str, kind: str, name: str) -> str:
    """The etcd key of a document."""
    return f"/cbcontrol/{namespace}/{kind}/{name}"


def backend(server: EtcdServer, namespace: str, **options: float) -> EtcdBackend:
    """A backend on a new client of ``server``."""
    return EtcdBackend(EtcdClient(server.endpoints), namespace, **options)


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


# -- read ---------------------------------------------------------------------------


def test_read_returns_breakers_and_presets_with_their_origin(
    etcd_server: EtcdServer, etcd_client: EtcdClient, etcd_namespace: str
) -> None:
    """read() returns each document with its key and revision, at one revision."""
    breaker = key_of(etcd_namespace, "breakers", "payment")
    rev_b = etcd_client.put(breaker, json.dumps(GOOD))
    rev_p = etcd_client.put(key_of(etcd_namespace, "presets", "critical"), "{}")
    store = backend(etcd_server, etcd_namespace)

    update = store.read(Scope.DESIRED)
    store.close()
    payment = next(d for d in update.documents if d.name == "payment")

    assert f"etcd://{etcd_server.endpoint}/{etcd_namespace}" == store.name
    assert (rev_p, True, None) == (update.revision, update.complete, update.error)
    assert update.store_id
    assert {("breakers", "payment"), ("presets", "critical")} == {
        (d.kind, d.name) for d in update.documents
    }
    assert (GOOD, f"etcd:{breaker}@{rev_b}", None) == (
        payment.data,
        payment.origin,
        payment.error,
    )


def test_keys_outside_the_layout_are_reported_and_never_shadow_a_name(
    etcd_server: EtcdServer, etcd_client: EtcdClient, etcd_namespace: str
) -> None:
    """Nested and bad names are ``invalid`` documents; other prefixes are not read."""
    etcd_client.put(
        key_of(etcd_namespace, "breakers", "payment"), '{"max_failures": 2}'
    )
    for key in (
        f"/cbcontrol/{etcd_namespace}/instances/i-1",
        f"/cbcontrol/{etcd_namespace}/other/a",
        f"/cbcontrol/{etcd_namespace}/breakers/x/payment",
        f"/cbcontrol/{etcd_namespace}/breakers/",
        f"/cbcontrol/{etcd_namespace}/breakers/bad name",
        f"/cbcontrol/{etcd_namespace}x/breakers/b",
    ):
        etcd_client.put(key, '{"max_failures": 9}')
    store = backend(etcd_server, etcd_namespace)

    documents = store.read(Scope.DESIRED).documents
    store.close()

    assert [("breakers", "payment", {"max_failures": 2})] == [
        (d.kind, d.name, d.data) for d in documents if d.kind != "invalid"
    ]
    assert {
        "breakers/": 'key "breakers/" is ignored: its name must be 1-128 characters '
        "of letters, digits, '.', '_' and '-', starting with a letter or a digit",
        "breakers/bad name": 'key "breakers/bad name" is ignored: its name must be '
        "1-128 characters of letters, digits, '.', '_' and '-', starting with a "
        "letter or a digit",
        "breakers/x/payment": 'key "breakers/x/payment" is ignored: its name must '
        "be 1-128 characters of letters, digits, '.', '_' and '-', starting with a "
        "letter or a digit",
    } == {d.name: d.error for d in documents if d.kind == "invalid"}


def test_read_reports_garbage_with_key_revision_and_excerpt(
    etcd_server: EtcdServer, etcd_client: EtcdClient, etcd_namespace: str
) -> None:
    """A key that is not a JSON object has no data and an error that names it."""
    key = key_of(etcd_namespace, "breakers", "bad")
    rev = etcd_client.put(key, b"\xff{}")
    store = backend(etcd_server, etcd_namespace)

    document = store.read(Scope.DESIRED).documents[0]
    store.close()

    assert document.data is None
    assert (
        f'etcd key "{key}" at revision {rev} must be a JSON object, got bytes that '
        "are not UTF-8 (invalid start byte): '\ufffd{}'"
    ) == document.error


def test_a_big_status_read_comes_in_pages_at_one_revision(
    etcd_server: EtcdServer, etcd_client: EtcdClient, etcd_namespace: str
) -> None:
    """More keys than one page (and than gRPC's default 4 MiB) read whole."""
    record = json.dumps({"state": "closed", "pad": "x" * 1500})
    for start in range(0, 3000, 100):
        etcd_client.txn(
            "fill",
            unchanged={},
            puts={
                f"/cbcontrol/{etcd_namespace}/status/b{i}/i-1": record.encode()
                for i in range(start, start + 100)
            },
        )
    store = backend(etcd_server, etcd_namespace)

    update = store.read(Scope.STATUS)
    store.close()

    assert 3000 == len(update.documents)
    assert {None} == {d.error for d in update.documents}


# -- watch --------------------------------------------------------------------------


def test_watch_delivers_every_put_within_milliseconds(
    etcd_server: EtcdServer, etcd_client: EtcdClient, etcd_namespace: str
) -> None:
    """Each of 50 puts arrives as a change of one document (latency printed; the
    bound is bench/propagation.py's to measure, not a test's)."""
    key = key_of(etcd_namespace, "breakers", "payment")
    latencies = []
    with Follower(backend(etcd_server, etcd_namespace), Scope.DESIRED) as follower:
        wait_for(lambda: follower.started, 5)
        for i in range(1, 51):
            start = time.perf_counter()
            etcd_client.put(key, json.dumps({"max_failures": i}))
            wait_for(
                lambda i=i: follower.data("breakers", "payment") == {"max_failures": i},
                5,
            )
            latencies.append(follower.updates[-1][0] - start)
    p50 = statistics.median(latencies) * 1000
    p99 = statistics.quantiles(latencies, n=100)[98] * 1000
    sys.stdout.write(
        f"\nput -> update over 50 puts: p50 {p50:.2f} ms, p99 {p99:.2f} ms\n"
    )

    assert 51 == len(follower.updates)
    assert all(len(u.documents) == 1 for _, u in follower.updates[1:])


def test_watch_drops_deleted_keys_and_ignores_other_prefixes(
    etcd_server: EtcdServer, etcd_client: EtcdClient, etcd_namespace: str
) -> None:
    """A delete arrives as a document without data; status writes are not watched."""
    etcd_client.put(key_of(etcd_namespace, "breakers", "a"), "{}")
    with Follower(backend(etcd_server, etcd_namespace), Scope.DESIRED) as follower:
        wait_for(lambda: follower.doc("breakers", "a"), 5)
        etcd_client.put(f"/cbcontrol/{etcd_namespace}/instances/i-1", "{}")
        etcd_client.delete(key_of(etcd_namespace, "breakers", "a"))
        wait_for(lambda: not follower.doc("breakers", "a"), 5)

    assert 2 == len(follower.updates)
    assert [("breakers", "a", None, None)] == [
        (d.kind, d.name, d.data, d.error) for d in follower.updates[1][1].documents
    ]


def test_watch_of_one_breaker_sees_only_its_status(
    etcd_server: EtcdServer, etcd_client: EtcdClient, etcd_namespace: str
) -> None:
    """A status watch of breaker "a" gets a's records, not b's, nor a2's."""
    scope = Scope(status=True, breaker="a")
    with Follower(backend(etcd_server, etcd_namespace), scope) as follower:
        wait_for(lambda: follower.started, 5)
        for name in ("b", "a2", "a"):
            etcd_client.put(f"/cbcontrol/{etcd_namespace}/status/{name}/i-1", "{}")
        wait_for(lambda: follower.doc("status", "a", "i-1"), 5)

    assert [("status", "a", "i-1")] == list(follower.docs)


def test_watch_reports_a_killed_etcd_and_catches_up_after_restart(
    fresh_etcd_server: EtcdServer, etcd_namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    """One error update while etcd is down; a put after the restart arrives."""
    caplog.set_level(logging.INFO, logger="cbcontrol.etcd")
    server = fresh_etcd_server
    key = key_of(etcd_namespace, "breakers", "payment")
    client = EtcdClient(server.endpoints)
    client.put(key, json.dumps(GOOD))
    with Follower(backend(server, etcd_namespace), Scope.DESIRED) as follower:
        wait_for(lambda: follower.data("breakers", "payment"), 5)
        server.kill()
        error = wait_for(lambda: follower.error, 5)
        time.sleep(1.5)  # several reconnection attempts while it is down
        server.start()
        back = time.monotonic()
        put_retrying(client, key, {"max_failures": 9})
        wait_for(lambda: follower.data("breakers", "payment") == {"max_failures": 9}, 5)
        caught_up = time.monotonic() - back
    client.close()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    errors = [u for _, u in follower.updates if u.error is not None]

    assert re.fullmatch(rf"etcd at {server.endpoint} is unavailable \(.+\): .+", error)
    assert caught_up < 5
    assert (1, 1) == (len(errors), len(warnings))
    assert 1 == sum("reconnected after" in r.getMessage() for r in caplog.records)


def test_watch_detects_a_hung_etcd_and_recovers(
    fresh_etcd_server: EtcdServer, etcd_namespace: str
) -> None:
    """A frozen etcd is reported within the hang timeout; changes flow after it."""
    server = fresh_etcd_server
    key = key_of(etcd_namespace, "breakers", "payment")
    client = EtcdClient(server.endpoints)
    client.put(key, json.dumps(GOOD))
    store = backend(server, etcd_namespace, hang_timeout=2.0)
    with Follower(store, Scope.DESIRED) as follower:
        wait_for(lambda: follower.data("breakers", "payment"), 5)
        server.pause()
        # Well before gRPC's keepalive (10 s + 5 s) would notice the silent peer.
        error = wait_for(lambda: follower.error, 6)
        server.resume()
        back = time.monotonic()
        put_retrying(client, key, {"max_failures": 4})
        wait_for(lambda: follower.data("breakers", "payment") == {"max_failures": 4}, 5)
        caught_up = time.monotonic() - back
    client.close()

    assert re.fullmatch(
        rf"etcd at {server.endpoint} is unavailable: no answer on the watch stream "
        r"within 2s \(hung or partitioned\)",
        error,
    )
    assert caught_up < 5


def test_watch_stops_promptly_while_etcd_is_hung(
    fresh_etcd_server: EtcdServer, etcd_namespace: str
) -> None:
    """Setting stop ends the watch within a second even while a read hangs."""
    store = backend(fresh_etcd_server, etcd_namespace, hang_timeout=1.0)
    with Follower(store, Scope.DESIRED) as follower:
        wait_for(lambda: follower.started, 5)
        fresh_etcd_server.pause()
        wait_for(lambda: follower.error, 5)
        time.sleep(0.3)  # now inside a read that cannot answer
    fresh_etcd_server.resume()

    assert "hung or partitioned" in str(follower.error)


def test_a_compaction_does_not_stop_the_watch(
    fresh_etcd_server: EtcdServer, etcd_namespace: str
) -> None:
    """The watch runs from the revision it read: compacting under it changes nothing."""
    key = key_of(etcd_namespace, "breakers", "a")
    with (
        EtcdClient(fresh_etcd_server.endpoints) as client,
        Follower(backend(fresh_etcd_server, etcd_namespace), Scope.DESIRED) as follower,
    ):
        wait_for(lambda: follower.started, 5)
        for value in range(5):
            client.put(key, json.dumps({"v": value}))
        fresh_etcd_server.compact()
        client.put(key, '{"v": 9}')
        wait_for(lambda: follower.data("breakers", "a") == {"v": 9}, 5)

    assert all(u.error is None for _, u in follower.updates)


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
    store = EtcdBackend(
        EtcdClient(server.endpoints, user=APP_USER, password=APP_PASSWORD),
        etcd_namespace,
    )
    with Follower(store, Scope.DESIRED) as follower:
        wait_for(lambda: follower.data("breakers", "payment"), 5)
        server.restart()
        back = time.monotonic()
        put_retrying(client, key, {"max_failures": 2})
        wait_for(lambda: follower.data("breakers", "payment") == {"max_failures": 2}, 5)
        caught_up = time.monotonic() - back
    client.close()

    assert json.dumps(GOOD).encode() == after_expiry
    assert caught_up < 5


def test_tls_backend_reads_with_its_ca(
    tls_etcd_server: EtcdServer, etcd_namespace: str
) -> None:
    """Over TLS the backend reads with the CA, and is named etcds://."""
    server = tls_etcd_server
    ca_cert = str(server.ca_cert)
    with EtcdClient(server.endpoints, ca_cert=ca_cert) as client:
        client.put(key_of(etcd_namespace, "breakers", "a"), "{}")
    store = EtcdBackend(EtcdClient(server.endpoints, ca_cert=ca_cert), etcd_namespace)

    update = store.read(Scope.DESIRED)
    store.close()

    assert f"etcds://{server.endpoint}/{etcd_namespace}" == store.name
    assert [("breakers", "a")] == [(d.kind, d.name) for d in update.documents]


# -- status -------------------------------------------------------------------------


def test_an_instance_s_keys_live_on_its_lease_and_go_with_it(
    etcd_server: EtcdServer, etcd_client: EtcdClient, etcd_namespace: str
) -> None:
    """Identity and records are written on a lease; closing revokes them all."""
    store = backend(etcd_server, etcd_namespace)
    writer = store.open_status("i-1")
    writer.publish({"app": "x"}, {f"b{i}": {"state": "closed"} for i in range(250)})
    prefix = f"/cbcontrol/{etcd_namespace}/"
    wait_for(lambda: len(etcd_client.range(prefix + "status/").kvs) == 250, 5)
    writer.publish(None, {"b0": None, "b1": {"state": "open"}})
    wait_for(lambda: len(etcd_client.range(prefix + "status/").kvs) == 249, 5)
    b1 = etcd_client.get(prefix + "status/b1/i-1")[0]
    identity = etcd_client.get(prefix + "instances/i-1")[0]
    writer.close()
    after = etcd_client.range(prefix).kvs
    store.close()

    assert b'{"state":"open"}' == b1
    assert b'{"app":"x"}' == identity
    assert {} == after


def test_a_bug_in_the_first_read_is_raised_not_waited_on(
    etcd_server: EtcdServer, etcd_namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unexpected error in the read beneath a watch reaches the watcher (who
    logs it and restarts) instead of leaving it waiting for stop."""
    store = backend(etcd_server, etcd_namespace)

    def broken(scope: Scope) -> None:
        raise RuntimeError("a bug in read")

    monkeypatch.setattr(store, "read", broken)
    stop = threading.Event()
    timer = threading.Timer(10, stop.set)  # bounds the test if the error is lost
    timer.start()
    try:
        with pytest.raises(RuntimeError, match="a bug in read"):
            next(iter(store.watch(Scope.DESIRED, stop)))
        assert not stop.is_set()
    finally:
        timer.cancel()
        store.close()
