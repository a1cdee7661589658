"""The one place that turns a store URL into a backend (clients imported lazily)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

    from cbcontrol.store._etcd._client import EtcdClient
    from cbcontrol.store._port import StoreBackend
    from cbcontrol.store._url import StoreURL

__all__ = ["etcd_client", "open_backend"]


def open_backend(
    store: StoreURL,
    *,
    environ: Mapping[str, str] | None = None,
    timeout: float = 2.5,
) -> StoreBackend | None:
    """
    The backend of ``store``: None for ``memory://`` (nothing is shared).

    Args:
        store: The parsed URL.
        environ: Instead of :data:`os.environ` (TLS files, the status directory).
        timeout: Seconds each etcd call may take.

    Raises:
        ImportError: The extra the backend needs is not installed, naming it.

    .. versionadded:: 0.2.0
    """
    env = os.environ if environ is None else environ
    if store.scheme == "memory":
        return None
    if store.scheme == "file":
        from cbcontrol.store._file import FileBackend, status_dir

        assert store.path is not None  # noqa: S101 - parse_store_url guarantees it
        return FileBackend(store.path, status=status_dir(store.path, env))
    from cbcontrol.store._etcd._backend import EtcdBackend

    return EtcdBackend(
        etcd_client(store, environ=env, timeout=timeout), store.namespace
    )


def etcd_client(
    store: StoreURL, *, environ: Mapping[str, str] | None = None, timeout: float = 2.5
) -> EtcdClient:
    """A client for an ``etcd://`` or ``etcds://`` store (made here and only here)."""
    from cbcontrol.store._etcd._client import EtcdClient

    env = os.environ if environ is None else environ
    tls = store.scheme == "etcds"
    return EtcdClient(
        store.endpoints,
        user=store.user,
        password=store.password,
        tls=tls,
        ca_cert=env.get("CBCONTROL_ETCD_CA") if tls else None,
        cert_cert=env.get("CBCONTROL_ETCD_CERT") if tls else None,
        cert_key=env.get("CBCONTROL_ETCD_KEY") if tls else None,
        timeout=timeout,
    )
