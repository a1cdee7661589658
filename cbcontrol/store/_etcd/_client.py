"""
The etcd client: a small adapter over etcd's v3 gRPC API.

This is the only module that touches an etcd library (the backend in ``_backend``, and
through it the control plane, the status publisher and cbctl, go through it). It uses
the generated gRPC stubs
of etcd-sdk-python (``pyetcd.etcdrpc``, or python-etcd3's identical ``etcd3.etcdrpc``)
and keeps its own channel, token and watch stream, because the libraries' client
wrappers fail in ways measured against etcd 3.4: their watch dies for good on the first
error, an endpoint that failed once is refused for 300 s, auth tokens are never renewed
and their call credentials are rejected on plaintext channels.

Every stream is cancelled and joined, and the channel closed, by :meth:`close`: a
process that closes its client leaves no gRPC call behind for the interpreter's
teardown.
"""

from __future__ import annotations

import gc
import importlib
import logging
import os
import threading
import weakref
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NamedTuple, Self, TypeVar

from cbcontrol.exceptions import StoreAuthError, StoreError, StoreUnavailableError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from cbcontrol.store._etcd._watch import EtcdWatch


__all__ = [
    "DEFAULT_ENDPOINTS",
    "POLL_S",
    "EtcdClient",
    "Found",
    "RangeResult",
    "code_of",
    "details_of",
]

logger = logging.getLogger("cbcontrol.etcd")

_T = TypeVar("_T")
_Metadata = tuple[tuple[str, str], ...]
Found = tuple[int, dict[str, tuple[bytes, int]]]
_INSTALL_HINT = "etcd support is not installed, run `pip install cbcontrol[etcd]`"
DEFAULT_ENDPOINTS = (("127.0.0.1", 2379),)
POLL_S = 0.2  # how often blocking loops look at their stop event
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
    # Reads are paged (see EtcdClient.range); a page of large values may pass the
    # default 4 MiB, which gRPC would refuse whole.
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
)
_PAGE_KEYS = 2_000
_NONE: Mapping[str, Any] = MappingProxyType({})  # a default no one can change


def _import_client_library() -> tuple[Any, Any]:
    """Import grpc and etcd's v3 stubs, naming the extra that installs them."""
    for name in ("pyetcd.etcdrpc", "etcd3.etcdrpc"):
        try:
            return importlib.import_module("grpc"), importlib.import_module(name)
        except ImportError:
            continue
    raise ImportError(_INSTALL_HINT)


def _shared(keys: Sequence[str]) -> str:
    """What several keys have in common (``/cbcontrol/ns/``), for messages."""
    if len(keys) == 1:
        return keys[0]
    return os.path.commonpath(list(keys)).rstrip("/") + "/"


def _prefix_end(prefix: bytes) -> bytes:
    """The ``range_end`` that selects every key starting with ``prefix``."""
    end = bytearray(prefix.rstrip(b"\xff"))
    if not end:
        return b"\0"  # etcd's "to the end of the keyspace"
    end[-1] += 1
    return bytes(end)


def code_of(exc: Any) -> str:
    code = str(exc.code().name) if hasattr(exc, "code") else "UNKNOWN"
    if code == "UNKNOWN":
        # A member whose request outlived the deadline we sent (it was waiting for
        # a leader, say) answers with Go's context error as UNKNOWN: it is the same
        # transient failure as our own deadline passing, and is retried like it.
        details = details_of(exc)
        if "context deadline exceeded" in details:
            return "DEADLINE_EXCEEDED"
        if "context canceled" in details:
            return "CANCELLED"
    return code


def details_of(exc: Any) -> str:
    return str(exc.details() or "") if hasattr(exc, "details") else repr(exc)


def _take(
    found: Any, kvs: dict[str, tuple[bytes, int]], leases: dict[str, int]
) -> None:
    """Key-values of a range response into ``kvs`` (and ``leases``)."""
    for kv in found:
        key = kv.key.decode("utf-8", "replace")
        kvs[key] = (bytes(kv.value), int(kv.mod_revision))
        if kv.lease:
            leases[key] = int(kv.lease)


def _to_bytes(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode()


class RangeResult(NamedTuple):
    """
    Keys read at one revision.

    Attributes:
        revision: etcd's revision when they were read.
        cluster_id: The cluster's id, as hex (it changes when a cluster is rebuilt).
        kvs: ``{key: (value, mod_revision)}``.
        last: For each prefix asked with ``last``: its greatest key, or None.
        leases: ``{key: lease id}`` of the keys attached to a lease.
    """

    revision: int
    cluster_id: str
    kvs: dict[str, tuple[bytes, int]]
    last: Mapping[str, str | None] = _NONE
    leases: Mapping[str, int] = _NONE


class _Conn(NamedTuple):
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
        endpoints: Sequence[tuple[str, int]] = DEFAULT_ENDPOINTS,
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
            from pathlib import Path

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
        self._watches: weakref.WeakSet[EtcdWatch] = weakref.WeakSet()
        self._streamed = False  # a stream was opened: see close()

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
                    if "authentication is not enabled" not in details_of(exc):
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
                code, details = code_of(exc), details_of(exc)
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

    def range(
        self,
        key: str,
        *,
        prefix: bool = True,
        revision: int = 0,
        after: bytes | None = None,
    ) -> RangeResult:
        """
        Every key under ``key`` (or ``key`` alone), read in pages at one revision.

        Large reads come in pages of a few thousand keys, each read at the revision
        of the first, so the result is one consistent snapshot however big it is.
        ``after`` starts past that key (the next page of an earlier read).
        """
        start = key.encode()
        end = _prefix_end(start) if prefix else b""
        kvs: dict[str, tuple[bytes, int]] = {}
        leases: dict[str, int] = {}
        first = start if after is None else after + b"\0"
        cluster = ""
        while True:
            request = self._rpc.RangeRequest(
                key=first, range_end=end, revision=revision, limit=_PAGE_KEYS
            )
            response = self._unary(f"read {key!r}", "KV", "Range", request)
            if not revision:
                revision = int(response.header.revision)
                cluster = f"{int(response.header.cluster_id):x}"
            _take(response.kvs, kvs, leases)
            if not response.more or not response.kvs or not prefix:
                break
            first = bytes(response.kvs[-1].key) + b"\0"
        return RangeResult(revision, cluster, kvs, leases=leases)

    def read_keys(
        self, keys: Sequence[str], *, last: Sequence[str] = ()
    ) -> RangeResult:
        """
        Several keys and prefixes (ending in ``/``) read at one revision.

        One transaction reads a page of each, and the greatest key under each
        prefix of ``last`` (without values); a prefix with more keys goes on in
        pages at the same revision (:meth:`range`).
        """
        rpc = self._rpc
        ops = []
        for key in keys:
            start = key.encode()
            end = _prefix_end(start) if key.endswith("/") else b""
            request = rpc.RangeRequest(key=start, range_end=end, limit=_PAGE_KEYS)
            ops.append(rpc.RequestOp(request_range=request))
        ops += [rpc.RequestOp(request_range=self._last_request(p)) for p in last]
        request = rpc.TxnRequest(compare=[], success=ops)
        response = self._unary(f"read {_shared(keys)!r}", "KV", "Txn", request)
        revision = int(response.header.revision)
        kvs: dict[str, tuple[bytes, int]] = {}
        leases: dict[str, int] = {}
        for key, op in zip(keys, response.responses, strict=False):
            page = op.response_range
            _take(page.kvs, kvs, leases)
            if page.more and page.kvs:
                rest = self.range(key, revision=revision, after=bytes(page.kvs[-1].key))
                kvs.update(rest.kvs)
                leases.update(rest.leases)
        greatest: dict[str, str | None] = {}
        for prefix, op in zip(last, response.responses[len(keys) :], strict=True):
            found = op.response_range.kvs
            greatest[prefix] = (
                found[0].key.decode("utf-8", "replace") if found else None
            )
        cluster = f"{int(response.header.cluster_id):x}"
        return RangeResult(revision, cluster, kvs, greatest, leases)

    def _last_request(self, prefix: str) -> Any:
        start = prefix.encode()
        return self._rpc.RangeRequest(
            key=start,
            range_end=_prefix_end(start),
            limit=1,
            sort_order=self._rpc.RangeRequest.DESCEND,
            sort_target=self._rpc.RangeRequest.KEY,
            keys_only=True,
        )

    def last_key(self, prefix: str) -> str | None:
        """The greatest key under ``prefix`` (one key read, values not sent)."""
        request = self._last_request(prefix)
        response = self._unary(f"read {prefix!r}", "KV", "Range", request)
        return response.kvs[0].key.decode("utf-8", "replace") if response.kvs else None

    def txn(
        self,
        what: str,
        *,
        unchanged: dict[str, int],
        puts: dict[str, bytes | None],
        lease: int = 0,
        delete_ranges: Sequence[tuple[str, str]] = (),
    ) -> bool:
        """
        Write and delete ``puts`` (None deletes) at once, if keys are unchanged.

        Args:
            what: What this write is, for errors.
            unchanged: ``{key: mod_revision}`` each key must still have (0: must not
                exist).
            puts: The keys to write (with ``lease`` if given) or delete.
            lease: The lease to attach written keys to.
            delete_ranges: ``(start, end)`` key ranges to delete as well.

        Returns:
            Whether the comparisons held and the writes happened.
        """
        rpc = self._rpc
        compares = [
            rpc.Compare(
                result=rpc.Compare.EQUAL,
                target=rpc.Compare.MOD,
                key=key.encode(),
                mod_revision=revision,
            )
            for key, revision in unchanged.items()
        ]
        ops = [
            rpc.RequestOp(request_delete_range=rpc.DeleteRangeRequest(key=k.encode()))
            if v is None
            else rpc.RequestOp(
                request_put=rpc.PutRequest(key=k.encode(), value=v, lease=lease)
            )
            for k, v in puts.items()
        ]
        ops += [
            rpc.RequestOp(
                request_delete_range=rpc.DeleteRangeRequest(
                    key=start.encode(), range_end=end.encode()
                )
            )
            for start, end in delete_ranges
        ]
        request = rpc.TxnRequest(compare=compares, success=ops)
        return bool(self._unary(what, "KV", "Txn", request).succeeded)

    def delete_range(self, start: str, end: str) -> int:
        """Delete the keys in ``[start, end)``; returns how many."""
        request = self._rpc.DeleteRangeRequest(
            key=start.encode(), range_end=end.encode()
        )
        response = self._unary(f"delete {start!r}..", "KV", "DeleteRange", request)
        return int(response.deleted)

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
            self._streamed = True
            stream = conn.stubs["Lease"].LeaseKeepAlive(
                iter([request]), timeout=self.timeout, metadata=metadata
            )
            try:
                return next(stream, None)
            finally:
                stream.cancel()

        response = self._call(f"keep lease {lease:x} alive", once)
        return 0 if response is None else max(0, int(response.TTL))

    def lease_ages(self, leases: Sequence[int]) -> dict[int, float | None]:
        """
        Seconds since each lease was last kept alive (None: it expired or is gone).

        The calls go out together, so a fleet costs about one round trip.
        """
        wanted = sorted(set(leases))
        if not wanted:
            return {}
        rpc = self._rpc

        def invoke(conn: _Conn, metadata: _Metadata) -> dict[int, Any]:
            call = conn.stubs["Lease"].LeaseTimeToLive
            futures = {
                lease: call.future(
                    rpc.LeaseTimeToLiveRequest(ID=lease),
                    timeout=self.timeout,
                    metadata=metadata,
                )
                for lease in wanted
            }
            return {lease: future.result() for lease, future in futures.items()}

        found = self._call("read lease times to live", invoke)
        return {
            lease: None
            if int(r.TTL) < 0
            else float(max(0, int(r.grantedTTL) - int(r.TTL)))
            for lease, r in found.items()
        }

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
        return self.watch_keys([prefix], start_revision, prefix=True)

    def watch_keys(
        self, keys: Sequence[str], start_revision: int = 0, *, prefix: bool = False
    ) -> EtcdWatch:
        """
        Watch several keys or prefixes on one stream, from a revision (0: from now).

        A key ending in ``/`` (or every key, with ``prefix``) covers every key under
        it. etcd multiplexes watchers on a stream: a process that needs ``breakers/``
        and ``presets/`` but not ``instances/`` watches exactly those, rather than
        receiving every other instance's status writes. Each watcher answers once
        with ``created`` before its events.
        """
        creates = []
        for key in keys:
            start = key.encode()
            end = _prefix_end(start) if prefix or key.endswith("/") else b""
            create = self._rpc.WatchCreateRequest(
                key=start, range_end=end, start_revision=start_revision
            )
            creates.append(self._rpc.WatchRequest(create_request=create))
        what = f"watch {_shared(keys)!r}"

        from cbcontrol.store._etcd._watch import EtcdWatch  # a read needs no stream

        def open_stream(conn: _Conn, metadata: _Metadata) -> EtcdWatch:
            def fail(code: str, details: str) -> StoreError:
                error = self._error(code, details, conn.endpoint, what)
                if isinstance(error, StoreAuthError):
                    self._forget_token(metadata)  # an expired token looks the same
                return error

            return EtcdWatch(conn, metadata, creates, self._rpc, fail)

        self._streamed = True
        watch = self._call(what, open_stream)
        self._watches.add(watch)
        return watch

    def reset(self) -> None:
        """Drop the connection; the next call opens a fresh one."""
        with self._lock:
            if self._conn is not None:
                self._conn.channel.close()
                self._conn = None

    def close(self) -> None:
        """Cancel every watch, close the connection; later calls raise `StoreError`."""
        with self._lock:
            self._closed = True
        for watch in list(self._watches):
            watch.cancel()
        self.reset()
        if self._streamed:
            # A cancelled stream is garbage in a reference cycle. Left to the
            # interpreter's final collection, its __del__ can wait forever for a
            # lock that a frozen gRPC daemon thread holds (cbctl hung at exit about
            # once in 150 runs): collect it now, while every thread still runs.
            gc.collect()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
