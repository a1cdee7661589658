"""
The etcd adapter: a small client over etcd's v3 gRPC API, and the live source.

This is the only module that touches an etcd library. It uses the generated gRPC stubs
of etcd-sdk-python (``pyetcd.etcdrpc``, or python-etcd3's identical ``etcd3.etcdrpc``)
and keeps its own channel, token and watch stream, because the libraries' client
wrappers fail in ways measured against etcd 3.4: their watch dies for good on the first
error, an endpoint that failed once is refused for 300 s, auth tokens are never renewed
and their call credentials are rejected on plaintext channels.

:class:`EtcdSource` supervises one prefix watch: on failure it reports the error in the
snapshot, re-reads the prefix with capped exponential backoff and watches again from
the revision it read; on compaction it re-reads everything; a heartbeat (watch progress
requests) detects a hung or partitioned etcd within ``hang_timeout``.
"""

from __future__ import annotations

import importlib
import json
import logging
import queue
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self, TypeVar

from cbcontrol.config.sources._base import RawEntry, SourceSnapshot
from cbcontrol.exceptions import StoreAuthError, StoreError, StoreUnavailableError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    from cbcontrol.config.sources._base import Kind

__all__ = [
    "EtcdClient",
    "EtcdSource",
    "EtcdWatch",
    "LeaseKeeper",
    "WatchEvent",
    "WatchUpdate",
]

logger = logging.getLogger("cbcontrol.etcd")

_T = TypeVar("_T")
_Metadata = tuple[tuple[str, str], ...]
_Found = tuple[int, dict[str, tuple[bytes, int]]]
_INSTALL_HINT = "etcd support is not installed, run `pip install cbcontrol[etcd]`"
_DEFAULT_ENDPOINTS = (("127.0.0.1", 2379),)
_KINDS: dict[str, Kind] = {"breakers": "breakers", "presets": "presets"}
_UNREACHABLE = frozenset({"UNAVAILABLE", "DEADLINE_EXCEEDED", "CANCELLED"})
_AUTH_CODES = frozenset({"UNAUTHENTICATED", "PERMISSION_DENIED"})
# etcd reports some auth failures as INVALID_ARGUMENT, and a watch's cancel reason
# carries the Go status text, so the details are matched as well as the code.
_AUTH_HINTS = (
    "authentication failed",
    "user name is empty",
    "permission denied",
    "invalid auth token",
    "Unauthenticated",
    "PermissionDenied",
)
_CHANNEL_OPTIONS = (
    # HTTP/2 pings notice a silent peer on open streams (a backstop for the watch
    # heartbeat); etcd answers pings sent more often than every 5 s with GOAWAY.
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.http2.max_pings_without_data", 0),
    # gRPC's reconnect backoff grows to 120 s: a restarted etcd would wait that long.
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 1_000),
)
_JSON_TYPES = {
    list: "a JSON array",
    str: "a JSON string",
    bool: "a JSON boolean",
    int: "a JSON number",
    float: "a JSON number",
    type(None): "JSON null",
}
_EXCERPT_CHARS = 60
_POLL_S = 0.2  # how often blocking loops look at their stop event
_MIN_BACKOFF_S = 0.1


def _import_client_library() -> tuple[Any, Any]:
    """Import grpc and etcd's v3 stubs, naming the extra that installs them."""
    for name in ("pyetcd.etcdrpc", "etcd3.etcdrpc"):
        try:
            return importlib.import_module("grpc"), importlib.import_module(name)
        except ImportError:
            continue
    raise ImportError(_INSTALL_HINT)


def _prefix_end(prefix: bytes) -> bytes:
    """The ``range_end`` that selects every key starting with ``prefix``."""
    end = bytearray(prefix.rstrip(b"\xff"))
    if not end:
        return b"\0"  # etcd's "to the end of the keyspace"
    end[-1] += 1
    return bytes(end)


def _code(exc: Any) -> str:
    return str(exc.code().name) if hasattr(exc, "code") else "UNKNOWN"


def _details(exc: Any) -> str:
    return str(exc.details() or "") if hasattr(exc, "details") else repr(exc)


def _to_bytes(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode()


@dataclass(frozen=True, slots=True)
class WatchEvent:
    """
    One change seen by a watch: ``value`` is ``None`` when ``key`` was deleted.

    .. versionadded:: 0.1.0
    """

    key: str
    value: bytes | None
    mod_revision: int


@dataclass(frozen=True, slots=True)
class WatchUpdate:
    """
    One response of a watch stream, at etcd's ``revision``.

    ``events`` is empty for the creation and heartbeat answers. A non-zero
    ``compacted_revision`` means the history the watch needed is gone: the watch is
    over, re-read everything.

    .. versionadded:: 0.1.0
    """

    revision: int
    events: tuple[WatchEvent, ...] = ()
    compacted_revision: int = 0


@dataclass(frozen=True, slots=True)
class _Conn:
    endpoint: str
    channel: Any
    stubs: dict[str, Any]  # "KV", "Lease", "Watch", "Auth"


class EtcdClient:
    """
    A small, thread-safe etcd v3 client that raises only cbcontrol's exceptions.

    Args:
        endpoints: ``(host, port)`` pairs; when one is unreachable the next is tried.
        user: User name when etcd has auth enabled, with ``password``. The token is
            renewed whenever etcd stops accepting it (token TTL, etcd restart).
        password: The user's password.
        tls: Use TLS (``etcds://``), implied by ``ca_cert`` or ``cert_cert``; without
            ``ca_cert`` the system's roots are trusted.
        ca_cert: Path of the CA bundle.
        cert_key: Path of the client key, for client-certificate auth.
        cert_cert: Path of the client certificate, with ``cert_key``.
        timeout: Seconds each call may take, so an unreachable etcd fails fast.

    Raises:
        ImportError: The ``etcd`` extra is not installed.

    Failures raise :class:`~cbcontrol.exceptions.StoreUnavailableError` (unreachable,
    timed out), :class:`~cbcontrol.exceptions.StoreAuthError` (credentials or
    permission refused) or :class:`~cbcontrol.exceptions.StoreError`, naming the
    endpoint and the cause, with the gRPC error chained.

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        endpoints: Sequence[tuple[str, int]] = _DEFAULT_ENDPOINTS,
        *,
        user: str | None = None,
        password: str | None = None,
        ca_cert: str | None = None,
        cert_key: str | None = None,
        cert_cert: str | None = None,
        tls: bool = False,
        timeout: float = 2.5,
    ) -> None:
        if (
            not endpoints
            or (user is None) != (password is None)
            or (cert_key is None) != (cert_cert is None)
        ):
            msg = "EtcdClient needs endpoints; user goes with password, key with cert"
            raise ValueError(msg)
        self._grpc, self._rpc = _import_client_library()
        self._endpoints = tuple(f"{host}:{port}" for host, port in endpoints)
        self._user, self._password, self.timeout = user, password, timeout
        self._credentials = None
        if tls or ca_cert is not None or cert_cert is not None:
            files = (ca_cert, cert_key, cert_cert)
            self._credentials = self._grpc.ssl_channel_credentials(
                *(None if path is None else Path(path).read_bytes() for path in files)
            )
        scheme = "etcd" if self._credentials is None else "etcds"
        self.name = f"{scheme}://{','.join(self._endpoints)}"
        self._lock = threading.Lock()
        self._index = 0
        self._conn: _Conn | None = None
        self._token: str | None = None
        self._closed = False

    def _connection(self) -> _Conn:
        with self._lock:
            if self._closed:
                msg = f"{self.name}: the client is closed"
                raise StoreError(msg, store=self.name)
            if self._conn is None:
                target = self._endpoints[self._index]
                if self._credentials is None:
                    channel = self._grpc.insecure_channel(target, _CHANNEL_OPTIONS)
                else:
                    channel = self._grpc.secure_channel(
                        target, self._credentials, _CHANNEL_OPTIONS
                    )
                stubs = {
                    name: getattr(self._rpc, f"{name}Stub")(channel)
                    for name in ("KV", "Lease", "Watch", "Auth")
                }
                self._conn = _Conn(target, channel, stubs)
            return self._conn

    def _metadata(self, conn: _Conn) -> _Metadata:
        """The token metadata, authenticating first if needed (raises RpcError)."""
        if self._user is None:
            return ()
        with self._lock:  # one authentication at a time; the others reuse its token
            if self._token is None:
                request = self._rpc.AuthenticateRequest(
                    name=self._user, password=self._password
                )
                try:
                    response = conn.stubs["Auth"].Authenticate(
                        request, timeout=self.timeout
                    )
                    self._token = str(response.token)
                except self._grpc.RpcError as exc:
                    # As etcd's Go client: credentials for an etcd without auth are
                    # not an error.
                    if "authentication is not enabled" not in _details(exc):
                        raise
                    self._token = ""
            token = self._token
        return (("token", token),) if token else ()

    def _forget_token(self, metadata: _Metadata) -> None:
        with self._lock:
            if metadata and self._token == metadata[0][1]:
                self._token = None

    def _rotate(self, conn: _Conn) -> None:
        """Move on to the next endpoint after ``conn``'s stopped answering."""
        with self._lock:
            if self._conn is conn and len(self._endpoints) > 1:
                self._index = (self._index + 1) % len(self._endpoints)
                self._conn = None
                conn.channel.close()

    def _error(self, code: str, details: str, endpoint: str, what: str) -> StoreError:
        where = f"etcd at {endpoint}"
        if code in _UNREACHABLE:
            if code == "DEADLINE_EXCEEDED":
                details = f"no answer within {self.timeout:g}s"
            msg = f"{where} is unavailable ({what}): {details}"
            return StoreUnavailableError(msg, store=self.name)
        if code in _AUTH_CODES or any(hint in details for hint in _AUTH_HINTS):
            who = "a client without credentials (set user and password)"
            if self._user is not None:
                who = f"user {self._user!r}"
            msg = f"{where} refused {what} for {who}: {details}"
            return StoreAuthError(msg, store=self.name)
        msg = f"{where} failed {what}: {details} ({code})"
        return StoreError(msg, store=self.name)

    def _call(self, what: str, invoke: Callable[[_Conn, _Metadata], _T]) -> _T:
        """Run one RPC: renew a rejected token once, try each endpoint once."""
        renewed = False
        rotations = 0
        while True:
            conn = self._connection()
            stage = "authentication"
            metadata: _Metadata = ()
            try:
                metadata = self._metadata(conn)
                stage = what
                return invoke(conn, metadata)
            except self._grpc.RpcError as exc:
                code, details = _code(exc), _details(exc)
                if not renewed and metadata and "invalid auth token" in details:
                    renewed = True
                    self._forget_token(metadata)
                    continue
                if code in _UNREACHABLE:
                    self._rotate(conn)
                    rotations += 1
                    if rotations < len(self._endpoints):
                        continue
                raise self._error(code, details, conn.endpoint, stage) from exc

    def _unary(self, what: str, stub: str, method: str, request: Any) -> Any:
        def invoke(conn: _Conn, metadata: _Metadata) -> Any:
            call = getattr(conn.stubs[stub], method)
            return call(request, timeout=self.timeout, metadata=metadata)

        return self._call(what, invoke)

    def get(self, key: str) -> tuple[bytes | None, int]:
        """Read ``key``: ``(value, mod_revision)``, or ``(None, 0)`` if it is absent."""
        request = self._rpc.RangeRequest(key=key.encode())
        response = self._unary(f"get {key!r}", "KV", "Range", request)
        if not response.kvs:
            return None, 0
        return bytes(response.kvs[0].value), int(response.kvs[0].mod_revision)

    def get_prefix(self, prefix: str) -> tuple[int, dict[str, tuple[bytes, int]]]:
        """Read all keys under ``prefix``: ``(revision, {key: (value, mod_rev)})``."""
        start = prefix.encode()
        request = self._rpc.RangeRequest(key=start, range_end=_prefix_end(start))
        response = self._unary(f"get prefix {prefix!r}", "KV", "Range", request)
        found = {
            kv.key.decode("utf-8", "replace"): (bytes(kv.value), int(kv.mod_revision))
            for kv in response.kvs
        }
        return int(response.header.revision), found

    def put(self, key: str, value: bytes | str, lease: int | None = None) -> int:
        """Write ``key`` (attached to ``lease`` if given); return the new revision."""
        request = self._rpc.PutRequest(
            key=key.encode(), value=_to_bytes(value), lease=lease or 0
        )
        return int(self._unary(f"put {key!r}", "KV", "Put", request).header.revision)

    def compare_and_swap(
        self, key: str, value: bytes | str, expected_mod_revision: int
    ) -> bool:
        """
        Write ``key`` only if its mod revision is still ``expected_mod_revision``.

        ``0`` means the key must not exist. ``False`` means another writer got there
        first: re-read and retry.
        """
        rpc = self._rpc
        compare = rpc.Compare(
            result=rpc.Compare.EQUAL,
            target=rpc.Compare.MOD,
            key=key.encode(),
            mod_revision=expected_mod_revision,
        )
        put = rpc.RequestOp(
            request_put=rpc.PutRequest(key=key.encode(), value=_to_bytes(value))
        )
        request = rpc.TxnRequest(compare=[compare], success=[put])
        what = f"compare-and-swap {key!r}"
        return bool(self._unary(what, "KV", "Txn", request).succeeded)

    def delete(self, key: str) -> bool:
        """Delete ``key``; return whether it existed."""
        request = self._rpc.DeleteRangeRequest(key=key.encode())
        response = self._unary(f"delete {key!r}", "KV", "DeleteRange", request)
        return int(response.deleted) > 0

    def grant_lease(self, ttl: int) -> int:
        """Grant a lease of ``ttl`` seconds; return its id (see `LeaseKeeper`)."""
        request = self._rpc.LeaseGrantRequest(TTL=ttl)
        response = self._unary(f"grant a {ttl}s lease", "Lease", "LeaseGrant", request)
        return int(response.ID)

    def keepalive(self, lease: int) -> int:
        """Refresh ``lease``; return its new TTL, or 0 when etcd no longer has it."""
        request = self._rpc.LeaseKeepAliveRequest(ID=lease)

        def once(conn: _Conn, metadata: _Metadata) -> Any:
            stream = conn.stubs["Lease"].LeaseKeepAlive(
                iter([request]), timeout=self.timeout, metadata=metadata
            )
            try:
                return next(stream, None)
            finally:
                stream.cancel()

        response = self._call(f"keep lease {lease:x} alive", once)
        return 0 if response is None else max(0, int(response.TTL))

    def revoke(self, lease: int) -> None:
        """Revoke ``lease``, deleting its keys now; a lease already gone is fine."""
        request = self._rpc.LeaseRevokeRequest(ID=lease)
        try:
            self._unary(f"revoke lease {lease:x}", "Lease", "LeaseRevoke", request)
        except StoreError as exc:
            if "lease not found" not in str(exc):
                raise

    def watch_prefix(self, prefix: str, start_revision: int = 0) -> EtcdWatch:
        """Watch all keys under ``prefix`` from ``start_revision`` (0: from now)."""
        start = prefix.encode()
        create = self._rpc.WatchCreateRequest(
            key=start, range_end=_prefix_end(start), start_revision=start_revision
        )
        what = f"watch prefix {prefix!r}"

        def open_stream(conn: _Conn, metadata: _Metadata) -> EtcdWatch:
            def fail(code: str, details: str) -> StoreError:
                error = self._error(code, details, conn.endpoint, what)
                if isinstance(error, StoreAuthError):
                    self._forget_token(metadata)  # an expired token looks the same
                return error

            request = self._rpc.WatchRequest(create_request=create)
            return EtcdWatch(conn, metadata, request, self._rpc, fail)

        return self._call(what, open_stream)

    def reset(self) -> None:
        """Drop the connection; the next call opens a fresh one."""
        with self._lock:
            if self._conn is not None:
                self._conn.channel.close()
                self._conn = None

    def close(self) -> None:
        """Close the connection; later calls raise `StoreError`."""
        with self._lock:
            self._closed = True
        self.reset()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class EtcdWatch:
    """
    One watch on its own gRPC stream, read by a daemon thread.

    Made by :meth:`EtcdClient.watch_prefix`. Once the stream fails, :meth:`next`
    raises the translated error.

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        conn: _Conn,
        metadata: _Metadata,
        create_request: Any,
        rpc: Any,
        fail: Callable[[str, str], StoreError],
    ) -> None:
        self.endpoint = conn.endpoint
        self._rpc, self._fail = rpc, fail
        self._requests: queue.Queue[Any] = queue.Queue()
        self._requests.put(create_request)
        self._updates: queue.Queue[WatchUpdate | StoreError] = queue.Queue()
        self._cancelled = threading.Event()
        self._stream = conn.stubs["Watch"].Watch(self._outgoing(), metadata=metadata)
        threading.Thread(
            target=self._read, name="cbcontrol-etcd-watch", daemon=True
        ).start()

    def _outgoing(self) -> Iterator[Any]:
        while (request := self._requests.get()) is not None:
            yield request

    def _read(self) -> None:
        failure = self._fail("UNAVAILABLE", "the server closed the watch stream")
        try:
            for response in self._stream:
                self._updates.put(self._convert(response))
        except Exception as exc:  # noqa: BLE001 (handed to the reader, not lost)
            failure = self._fail(_code(exc), _details(exc))
        if not self._cancelled.is_set():
            self._updates.put(failure)

    def _convert(self, response: Any) -> WatchUpdate | StoreError:
        revision = int(response.header.revision)
        if response.compact_revision:
            return WatchUpdate(revision, (), int(response.compact_revision))
        if response.canceled:
            return self._fail("CANCELLED_BY_SERVER", str(response.cancel_reason))
        events = tuple(
            WatchEvent(
                event.kv.key.decode("utf-8", "replace"),
                None if event.type == 1 else bytes(event.kv.value),  # 1: DELETE
                int(event.kv.mod_revision),
            )
            for event in response.events
        )
        return WatchUpdate(revision, events)

    def next(self, timeout: float) -> WatchUpdate | None:
        """The next update, or ``None`` if none came within ``timeout`` seconds."""
        try:
            item = self._updates.get(timeout=timeout)
        except queue.Empty:
            return None
        if isinstance(item, StoreError):
            self._updates.put(item)  # every later call fails the same way
            raise item
        return item

    def request_progress(self) -> None:
        """Ask etcd for a heartbeat: an empty update proves it still answers."""
        progress = self._rpc.WatchProgressRequest()
        self._requests.put(self._rpc.WatchRequest(progress_request=progress))

    def cancel(self) -> None:
        """End the watch and its stream now."""
        self._cancelled.set()
        self._requests.put(None)
        self._stream.cancel()


class LeaseKeeper:
    """
    Keeps one etcd lease alive from a daemon thread, and replaces it when lost.

    etcd leases have no background keepalive: whoever holds one refreshes it, here every
    ``ttl / 3`` seconds. ``on_lease(lease_id)`` is called from the keeper's thread with
    the first lease and with each replacement (the old one expired while etcd was away,
    or was revoked), so the owner can rewrite the keys attached to it; if it raises, it
    is called again on the next round.

    .. versionadded:: 0.1.0
    """

    def __init__(
        self, client: EtcdClient, ttl: int, on_lease: Callable[[int], None]
    ) -> None:
        self._client, self._ttl, self._on_lease = client, ttl, on_lease
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="cbcontrol-etcd-lease", daemon=True
        )
        self.lease_id: int | None = None

    def start(self) -> None:
        """Start the keeper's thread."""
        self._thread.start()

    def stop(self, *, revoke: bool = True) -> None:
        """Stop refreshing; with ``revoke``, revoke the lease so its keys go now."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(self._client.timeout + 1)
        if revoke and self.lease_id is not None:
            try:
                self._client.revoke(self.lease_id)
            except StoreError as exc:
                logger.debug("could not revoke lease %x: %s", self.lease_id, exc)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _run(self) -> None:
        announced = failing = False
        while not self._stop.is_set():
            try:
                if self.lease_id is None or self._client.keepalive(self.lease_id) == 0:
                    if self.lease_id is not None:
                        logger.warning(
                            "lease %x was lost; granting another", self.lease_id
                        )
                    self.lease_id = self._client.grant_lease(self._ttl)
                    announced = False
                if not announced:
                    self._on_lease(self.lease_id)
                    announced = True
                if failing:
                    logger.info("lease %x is kept alive again", self.lease_id)
                failing = False
            except StoreError as exc:
                if not failing:
                    logger.warning("lease keeper failed, retrying: %s", exc)
                failing = True
            except Exception:
                logger.exception("on_lease(%s) failed; retrying", self.lease_id)
            self._stop.wait(min(1.0, self._ttl / 3) if failing else self._ttl / 3)


def _identify(prefix: str, key: str) -> tuple[Kind, str] | None:
    """``(kind, name)`` for ``<prefix>breakers/<name>`` or ``presets/<name>``."""
    kind, _, name = key.removeprefix(prefix).partition("/")
    known = _KINDS.get(kind) if key.startswith(prefix) else None
    return None if known is None or not name or "/" in name else (known, name)


def _parse(
    key: str, value: bytes, mod_revision: int
) -> tuple[dict[str, object] | None, str | None]:
    """``(data, None)`` for a JSON object, else ``(None, message)``."""
    try:
        data: object = json.loads(value.decode("utf-8"))
    except UnicodeDecodeError as exc:
        got = f"bytes that are not UTF-8 ({exc.reason})"
    except json.JSONDecodeError as exc:
        got = f"invalid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
    else:
        if isinstance(data, dict):
            return data, None
        got = _JSON_TYPES[type(data)]
    text = value.decode("utf-8", "replace")
    if len(text) > _EXCERPT_CHARS:
        text = text[:_EXCERPT_CHARS] + "..."
    rule = f'etcd key "{key}" at revision {mod_revision} must be a JSON object'
    return None, f"{rule}, got {got}: {text!r}"


class EtcdSource:
    """
    Desired state from etcd: the JSON documents ``breakers/<name>`` and
    ``presets/<name>`` under ``/cbcontrol/<namespace>/``, watched live.

    A :class:`~cbcontrol.config.sources._base.LiveSource`: ``run`` keeps one prefix
    watch and delivers a complete snapshot after every change. While etcd is down,
    hung or refusing, the snapshot keeps the last good documents and carries the error;
    when etcd is back the prefix is re-read and watched from the revision read, so
    nothing is missed. A key that is not a JSON object keeps its last good data and
    reports the error on its entry.

    Args:
        endpoints: As for :class:`EtcdClient`, like ``user``, ``password``,
            ``tls``, ``ca_cert``, ``cert_key``, ``cert_cert`` and ``timeout``.
        namespace: The namespace (no ``/``).
        client_factory: Makes the client instead (the connection arguments are then
            unused); the source owns it and closes it.
        hang_timeout: Seconds without any answer on the watch stream after which etcd
            counts as hung; heartbeats are sent after a third of it.
        max_backoff: The cap of the delay between reconnection attempts, in seconds.

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        endpoints: Sequence[tuple[str, int]] = _DEFAULT_ENDPOINTS,
        namespace: str = "default",
        *,
        user: str | None = None,
        password: str | None = None,
        ca_cert: str | None = None,
        cert_key: str | None = None,
        cert_cert: str | None = None,
        tls: bool = False,
        timeout: float = 2.5,
        client_factory: Callable[[], EtcdClient] | None = None,
        hang_timeout: float = 6.0,
        max_backoff: float = 2.0,
    ) -> None:
        if not namespace or "/" in namespace:
            msg = f"etcd namespace must be a name without '/', got {namespace!r}"
            raise ValueError(msg)
        self._client = (
            client_factory()
            if client_factory is not None
            else EtcdClient(
                endpoints,
                user=user,
                password=password,
                ca_cert=ca_cert,
                cert_key=cert_key,
                cert_cert=cert_cert,
                tls=tls,
                timeout=timeout,
            )
        )
        self.namespace, self.prefix = namespace, f"/cbcontrol/{namespace}/"
        self._hang_timeout, self._max_backoff = hang_timeout, max_backoff
        self._reader = ThreadPoolExecutor(1, thread_name_prefix="cbcontrol-etcd-read")
        self._lock = threading.Lock()  # run() and read() may run in different threads
        self._entries: dict[tuple[Kind, str], RawEntry] = {}
        self._revision = 0
        self._error: str | None = None
        self._delivered: SourceSnapshot | None = None
        self._attempt = 0  # consecutive failed connection attempts

    @property
    def name(self) -> str:
        """The display name, ``etcd://host:port/namespace``."""
        return f"{self._client.name}/{self.namespace}"

    @property
    def client(self) -> EtcdClient:
        """The client this source reads with."""
        return self._client

    def read(self) -> SourceSnapshot:
        """Read the whole namespace once; raise `StoreError` if etcd fails."""
        found = self._client.get_prefix(self.prefix)
        with self._lock:
            self._reload(found)
            self._delivered = self._snapshot()
            return self._delivered

    def run(
        self, on_change: Callable[[SourceSnapshot], None], stop: threading.Event
    ) -> None:
        """Watch the namespace, calling ``on_change`` after each change, until stop."""
        self._attempt = 0
        down_since: float | None = None
        while not stop.is_set():
            watch: EtcdWatch | None = None
            try:
                found = self._read_unless_stopped(stop)
                if found is None:
                    return
                with self._lock:
                    self._reload(found)
                if down_since is not None:
                    elapsed = time.monotonic() - down_since
                    logger.info("%s: reconnected after %.1fs", self.name, elapsed)
                    down_since = None
                self._deliver(on_change)
                watch = self._client.watch_prefix(self.prefix, found[0] + 1)
                self._follow(watch, on_change, stop)
            except StoreError as exc:
                if down_since is None:
                    down_since = time.monotonic()
                    logger.warning(
                        "%s: %s; keeping the last good config", self.name, exc
                    )
                    with self._lock:
                        self._error = str(exc)
                    self._deliver(on_change)
                else:
                    logger.debug("%s: still failing: %s", self.name, exc)
                # A fresh channel skips gRPC's reconnect delays on the next attempt.
                self._client.reset()
                delay = min(self._max_backoff, _MIN_BACKOFF_S * 2**self._attempt)
                self._attempt += 1
                stop.wait(delay * random.uniform(0.5, 1.0))  # noqa: S311 (jitter)
            finally:
                if watch is not None:
                    watch.cancel()

    def close(self) -> None:
        """Close the client."""
        self._reader.shutdown(wait=False)
        self._client.close()

    def _read_unless_stopped(self, stop: threading.Event) -> _Found | None:
        """``get_prefix``, given up on at ``stop`` even if etcd hangs."""
        future = self._reader.submit(self._client.get_prefix, self.prefix)
        while not stop.is_set():
            try:
                return future.result(_POLL_S)
            except FutureTimeout:
                continue
        return None

    def _follow(
        self,
        watch: EtcdWatch,
        on_change: Callable[[SourceSnapshot], None],
        stop: threading.Event,
    ) -> None:
        """Apply the watch's updates until stop or compaction; raise on failure."""
        heartbeat = self._hang_timeout / 3
        last_seen = last_probe = time.monotonic()
        while not stop.is_set():
            update = watch.next(_POLL_S)
            now = time.monotonic()
            if update is None:
                if now - last_seen > self._hang_timeout:
                    raise self._hung(watch)
                if now - last_seen >= heartbeat and now - last_probe >= heartbeat:
                    watch.request_progress()
                    last_probe = now
                continue
            last_seen, self._attempt = now, 0  # the watch answers: backoff starts over
            batch = [update]
            while (more := watch.next(0)) is not None:  # coalesce a burst
                batch.append(more)
            if any(self._compacted(item) for item in batch):
                return
            with self._lock:
                for item in batch:
                    self._apply(item)
            self._deliver(on_change)

    def _compacted(self, update: WatchUpdate) -> bool:
        if update.compacted_revision:
            logger.info(
                "%s: history up to revision %d was compacted; re-reading everything",
                self.name,
                update.compacted_revision,
            )
        return bool(update.compacted_revision)

    def _hung(self, watch: EtcdWatch) -> StoreUnavailableError:
        msg = (
            f"etcd at {watch.endpoint} is unavailable: no answer on the watch stream "
            f"within {self._hang_timeout:g}s (hung or partitioned)"
        )
        return StoreUnavailableError(msg, store=self.name)

    def _entry(
        self, ident: tuple[Kind, str], key: str, value: bytes, rev: int
    ) -> RawEntry:
        """The entry for a new value of ``key``; callers hold the lock."""
        data, error = _parse(key, value, rev)
        previous = self._entries.get(ident)
        if error is not None and previous is not None:
            return replace(previous, error=error)  # keep the last good data
        return RawEntry(ident[0], ident[1], data, f"etcd:{key}@{rev}", error)

    def _reload(self, found: _Found) -> None:
        entries: dict[tuple[Kind, str], RawEntry] = {}
        for key, (value, mod_revision) in sorted(found[1].items()):
            if (ident := _identify(self.prefix, key)) is not None:
                entries[ident] = self._entry(ident, key, value, mod_revision)
        self._entries, self._revision, self._error = entries, found[0], None

    def _apply(self, update: WatchUpdate) -> None:
        for event in update.events:
            if (ident := _identify(self.prefix, event.key)) is None:
                continue
            if event.value is None:
                self._entries.pop(ident, None)
            else:
                self._entries[ident] = self._entry(
                    ident, event.key, event.value, event.mod_revision
                )
        self._revision = max(self._revision, update.revision)

    def _snapshot(self) -> SourceSnapshot:
        # Equal revisions must mean equal snapshots, and an error changes a snapshot.
        suffix = "" if self._error is None else "+unavailable"
        revision = f"{self._revision}{suffix}"
        return SourceSnapshot(self.name, revision, dict(self._entries), self._error)

    def _deliver(self, on_change: Callable[[SourceSnapshot], None]) -> None:
        with self._lock:
            snapshot, last = self._snapshot(), self._delivered
            if last and (last.entries, last.error) == (
                snapshot.entries,
                snapshot.error,
            ):
                return
            self._delivered = snapshot
        try:
            on_change(snapshot)
        except Exception:
            logger.exception("%s: on_change failed", self.name)
