"""
Where desired state lives: ``CBCONTROL_STORE`` URLs and the sources they open.

``file://PATH`` (the YAML file store), ``etcd://[user:pass@]host:port[,host:port]/NS``,
``etcds://...`` (etcd over TLS: ``CBCONTROL_ETCD_CA``, ``CBCONTROL_ETCD_CERT``,
``CBCONTROL_ETCD_KEY``), ``memory://`` (defaults, presets and env only). Unset means
``./cbcontrol.yaml`` when that file exists, else memory. etcd credentials may also come
from ``CBCONTROL_ETCD_USER`` / ``CBCONTROL_ETCD_PASSWORD``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from cbcontrol.exceptions import ConfigError

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from cbcontrol._etcd import EtcdClient
    from cbcontrol.config.sources._base import LiveSource

__all__ = [
    "DEFAULT_FILE",
    "StoreURL",
    "etcd_client",
    "open_source",
    "parse_store_url",
]

DEFAULT_FILE = "cbcontrol.yaml"
_FORMS = (
    "file://PATH, etcd://HOST:PORT[,HOST:PORT]/NAMESPACE, etcds://... (TLS) "
    "or memory://"
)


@dataclass(frozen=True, slots=True)
class StoreURL:
    """
    A parsed store location.

    Attributes:
        scheme: ``memory``, ``file``, ``etcd`` or ``etcds``.
        path: The YAML file (file store).
        endpoints: ``(host, port)`` pairs (etcd).
        namespace: The etcd namespace, ``default`` unless the URL names one.
        user: etcd user, if any.
        password: etcd password, if any (never shown).
    """

    scheme: Literal["memory", "file", "etcd", "etcds"]
    path: Path | None = None
    endpoints: tuple[tuple[str, int], ...] = ()
    namespace: str = "default"
    user: str | None = None
    password: str | None = None

    @property
    def layer(self) -> Literal["file", "etcd"] | None:
        """The precedence layer this store feeds."""
        if self.scheme == "memory":
            return None
        return "file" if self.scheme == "file" else "etcd"

    def __str__(self) -> str:
        if self.scheme == "memory":
            return "memory://"
        if self.scheme == "file":
            return f"file://{self.path}"
        hosts = ",".join(f"{h}:{p}" for h, p in self.endpoints)
        who = f"{self.user}@" if self.user else ""
        return f"{self.scheme}://{who}{hosts}/{self.namespace}"


def parse_store_url(
    url: str | None,
    *,
    environ: Mapping[str, str] | None = None,
    namespace: str | None = None,
) -> StoreURL:
    """
    Parse a store URL; ``None`` reads ``CBCONTROL_STORE`` and then the default.

    Args:
        url: The URL, or None.
        environ: Instead of :data:`os.environ`.
        namespace: Overrides the URL's namespace (``cbctl --namespace``).

    Raises:
        ConfigError: The URL has none of the accepted forms.
    """
    env = os.environ if environ is None else environ
    source = "argument"
    if url is None:
        url = env.get("CBCONTROL_STORE") or None
        source = "env:CBCONTROL_STORE"
    if url is None:
        from pathlib import Path

        store = (
            StoreURL("file", path=Path(DEFAULT_FILE).absolute())
            if Path(DEFAULT_FILE).is_file()
            else StoreURL("memory")
        )
    else:
        store = _parse(url.strip(), env, source)
    if namespace is not None:
        _check_namespace(namespace, "--namespace")
        store = StoreURL(
            store.scheme,
            store.path,
            store.endpoints,
            namespace,
            store.user,
            store.password,
        )
    return store


def open_source(
    store: StoreURL, *, environ: Mapping[str, str] | None = None
) -> LiveSource | None:
    """The live source of ``store`` (None for memory); imports its client lazily."""
    env = os.environ if environ is None else environ
    if store.scheme == "memory":
        return None
    if store.scheme == "file":
        from cbcontrol.config.sources._file import FileSource

        assert store.path is not None  # noqa: S101 - parse_store_url guarantees it
        return FileSource(store.path)
    from cbcontrol.config.sources._etcd import EtcdSource

    return EtcdSource(
        namespace=store.namespace,
        client_factory=lambda: etcd_client(store, environ=env),
    )


def etcd_client(
    store: StoreURL, *, environ: Mapping[str, str] | None = None, timeout: float = 2.5
) -> EtcdClient:
    """A client for an ``etcd://`` or ``etcds://`` store (made here and only here)."""
    from cbcontrol._etcd import EtcdClient

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


def _parse(url: str, env: Mapping[str, str], source: str) -> StoreURL:
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in ("memory", "file", "etcd", "etcds"):
        rule = f"must be one of {_FORMS}"
        raise ConfigError(rule, field="store", value=url, source=source)
    if scheme == "memory":
        return StoreURL("memory")
    if scheme == "file":
        from pathlib import Path

        if not rest:
            rule = "needs a path, e.g. file:///etc/cbcontrol/cbcontrol.yaml"
            raise ConfigError(rule, field="store", value=url, source=source)
        return StoreURL("file", path=Path(_unquote(rest)).absolute())
    userinfo, at, hostpart = rest.rpartition("@")
    hosts, _, ns = (hostpart if at else rest).partition("/")
    user = password = None
    if at:
        user, _, password = (_unquote(p) for p in userinfo.partition(":"))
    user = user or env.get("CBCONTROL_ETCD_USER") or None
    password = password or env.get("CBCONTROL_ETCD_PASSWORD") or None
    endpoints = []
    for host_port in filter(None, hosts.split(",")):
        host, colon, port = host_port.rpartition(":")
        if not colon or not port.isdigit() or not host:
            rule = (
                f"has endpoint {host_port!r}, which is not HOST:PORT; expected {_FORMS}"
            )
            raise ConfigError(rule, field="store", value=url, source=source)
        endpoints.append((host.strip("[]"), int(port)))
    if not endpoints:
        rule = f"names no etcd endpoint; expected {_FORMS}"
        raise ConfigError(rule, field="store", value=url, source=source)
    namespace = ns.strip("/") or "default"
    _check_namespace(namespace, source)
    return StoreURL(
        "etcds" if scheme == "etcds" else "etcd",
        endpoints=tuple(endpoints),
        namespace=namespace,
        user=user,
        password=password,
    )


def _unquote(text: str) -> str:
    """``%``-escapes decoded (urllib.parse is 1.5 ms of cbctl's start: only if any)."""
    if "%" not in text:
        return text
    from urllib.parse import unquote

    return unquote(text)


def _check_namespace(namespace: str, source: str) -> None:
    if not namespace or "/" in namespace:
        rule = "must be a name without '/'"
        raise ConfigError(rule, field="namespace", value=namespace, source=source)
