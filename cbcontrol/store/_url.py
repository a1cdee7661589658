"""
Where desired state lives: ``CBCONTROL_STORE`` URLs.

``file://PATH`` (the YAML file store), ``etcd://[user:pass@]host:port[,host:port]/NS``,
``etcds://...`` (etcd over TLS: ``CBCONTROL_ETCD_CA``, ``CBCONTROL_ETCD_CERT``,
``CBCONTROL_ETCD_KEY``), ``memory://`` (defaults, presets and env only). Unset means
``./cbcontrol.yaml`` when that file exists, else memory. etcd credentials may also come
from ``CBCONTROL_ETCD_USER`` / ``CBCONTROL_ETCD_PASSWORD``.

A password never leaves this module in text: :class:`StoreURL` prints without it,
and an invalid URL is echoed with its password replaced by ``***``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Final, Literal

from cbcontrol._limits import MAX_TEXT_CHARS
from cbcontrol._names import NAME_RULE, is_name
from cbcontrol.exceptions import ConfigError

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

__all__ = ["DEFAULT_FILE", "StoreURL", "parse_store_url", "redact"]

DEFAULT_FILE: Final = "cbcontrol.yaml"
_MAX_PORT: Final = 65535
_FORMS: Final = (
    "file://PATH, etcd://HOST:PORT[,HOST:PORT]/NAMESPACE, etcds://... (TLS) "
    "or memory://"
)


def redact(text: str) -> str:
    """
    ``text`` with the password of its ``user:password@`` replaced by ``***``.

    As the parser reads a URL, everything before the last ``@`` is the user
    information, so a password holding ``@`` or ``/`` is hidden whole.
    """
    head, sep, rest = text.partition("://")
    if not sep:
        head, rest = "", text
    userinfo, at, tail = rest.rpartition("@")
    if at and ":" in userinfo:
        rest = f"{userinfo.partition(':')[0]}:***@{tail}"
    return f"{head}{sep}{rest}"[:MAX_TEXT_CHARS]


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
    password: str | None = field(default=None, repr=False)

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
        ConfigError: The URL has none of the accepted forms (echoed without its
            password), or the namespace breaks the name grammar.
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
        store = replace(store, namespace=namespace)
    return store


def _invalid(rule: str, url: str, source: str) -> ConfigError:
    return ConfigError(rule, field="store", value=redact(url), source=source)


def _parse(url: str, env: Mapping[str, str], source: str) -> StoreURL:
    if len(url) > MAX_TEXT_CHARS:
        rule = f"is longer than {MAX_TEXT_CHARS} characters"
        raise _invalid(rule, url, source)
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in ("memory", "file", "etcd", "etcds"):
        msg = f"must be one of {_FORMS}"
        raise _invalid(msg, url, source)
    if scheme == "memory":
        return StoreURL("memory")
    if scheme == "file":
        from pathlib import Path

        if not rest or "\0" in rest:
            rule = "needs a path, e.g. file:///etc/cbcontrol/cbcontrol.yaml"
            raise _invalid(rule, url, source)
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
        if (
            not colon
            or not port.isdigit()
            or not host
            or not 0 < int(port) <= _MAX_PORT
        ):
            shown = redact(host_port)
            rule = f"has endpoint {shown!r}, which is not HOST:PORT; expected {_FORMS}"
            raise _invalid(rule, url, source)
        endpoints.append((host.strip("[]"), int(port)))
    if not endpoints:
        msg = f"names no etcd endpoint; expected {_FORMS}"
        raise _invalid(msg, url, source)
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
    if not is_name(namespace):
        shown = namespace[:130]
        raise ConfigError(NAME_RULE, field="namespace", value=shown, source=source)
