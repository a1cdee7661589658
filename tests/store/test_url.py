"""CBCONTROL_STORE URLs: every accepted form, and clear errors for the rest."""

from __future__ import annotations

from pathlib import Path

import pytest

from cbcontrol.exceptions import ConfigError
from cbcontrol.store import StoreURL, parse_store_url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("memory://", StoreURL("memory")),
        ("file:///etc/cb.yaml", StoreURL("file", path=Path("/etc/cb.yaml"))),
        (
            "etcd://127.0.0.1:2379/prod",
            StoreURL("etcd", endpoints=(("127.0.0.1", 2379),), namespace="prod"),
        ),
        (
            "etcd://a:1,b:2",
            StoreURL("etcd", endpoints=(("a", 1), ("b", 2)), namespace="default"),
        ),
        (
            "etcds://app:s%40cret@h:2379/ns",
            StoreURL(
                "etcds",
                endpoints=(("h", 2379),),
                namespace="ns",
                user="app",
                password="s@cret",
            ),
        ),
    ],
)
def test_accepted_forms(url: str, expected: StoreURL) -> None:
    """Each documented URL form parses to its endpoints, namespace and credentials."""
    assert expected == parse_store_url(url, environ={})


def test_the_environment_variable_is_the_default() -> None:
    """Without an argument, CBCONTROL_STORE is read."""
    store = parse_store_url(None, environ={"CBCONTROL_STORE": "etcd://h:1/x"})

    assert ("etcd", "x") == (store.scheme, store.namespace)


def test_credentials_may_come_from_the_environment() -> None:
    """CBCONTROL_ETCD_USER/PASSWORD fill in what the URL leaves out."""
    env = {"CBCONTROL_ETCD_USER": "app", "CBCONTROL_ETCD_PASSWORD": "pw"}

    store = parse_store_url("etcd://h:1", environ=env)

    assert ("app", "pw") == (store.user, store.password)
    assert "etcd://app@h:1/default" == str(store)


def test_namespace_override() -> None:
    """--namespace replaces the URL's namespace."""
    assert (
        "blue"
        == parse_store_url("etcd://h:1/green", environ={}, namespace="blue").namespace
    )


def test_no_store_and_no_file_means_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Unset and no ./cbcontrol.yaml: an in-memory store."""
    monkeypatch.chdir(tmp_path)

    assert StoreURL("memory") == parse_store_url(None, environ={})


@pytest.mark.parametrize(
    ("url", "rule"),
    [
        (
            "redis://h:1",
            (
                "must be one of file://PATH, etcd://HOST:PORT[,HOST:PORT]/NAMESPACE, "
                "etcds://... (TLS) or memory://"
            ),
        ),
        (
            "etcd://h/ns",
            (
                "has endpoint 'h', which is not HOST:PORT; expected file://PATH, "
                "etcd://HOST:PORT[,HOST:PORT]/NAMESPACE, etcds://... (TLS) or memory://"
            ),
        ),
        ("file://", "needs a path, e.g. file:///etc/cbcontrol/cbcontrol.yaml"),
    ],
)
def test_bad_urls_say_what_is_accepted(url: str, rule: str) -> None:
    """A bad URL names the variable, the value and the accepted forms."""
    with pytest.raises(ConfigError) as info:
        parse_store_url(None, environ={"CBCONTROL_STORE": url})

    assert (
        f'field "store" from source "env:CBCONTROL_STORE" {rule}, got {url!r}'
        == str(info.value)
    )
