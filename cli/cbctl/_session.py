"""What every command shares: the global options, the store, the actor, name lookup."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cbctl._errors import NotFoundError, UsageError

if TYPE_CHECKING:
    from collections.abc import Iterable

    import typer

    from cbcontrol import ControlStore

__all__ = [
    "GlobalOptions",
    "actor",
    "check_name",
    "open_store",
    "options",
    "require_known",
]

_MAX_LISTED = 10
_SHOWN = 130  # characters of a bad name quoted back


@dataclass(frozen=True, slots=True)
class GlobalOptions:
    """The options given before the command, shared by every command via ``ctx.obj``."""

    store: str | None = None
    namespace: str | None = None
    debug: bool = False


def options(ctx: typer.Context) -> GlobalOptions:
    """The global options of this invocation."""
    found = ctx.find_object(GlobalOptions)
    return found if found is not None else GlobalOptions()


def open_store(ctx: typer.Context | GlobalOptions) -> ControlStore:
    """
    Open the store named by ``--store`` / ``CBCONTROL_STORE`` (or ``./cbcontrol.yaml``).

    Raises:
        UsageError: The URL or namespace is invalid, or no store is named at all.
    """
    import cbcontrol

    opts = ctx if isinstance(ctx, GlobalOptions) else options(ctx)
    try:
        return cbcontrol.open_store(opts.store, namespace=opts.namespace)
    except cbcontrol.ConfigError as exc:
        if exc.field == "store" and exc.value == "memory://":
            msg = (
                "no store: pass --store or set CBCONTROL_STORE (file://PATH or "
                "etcd://HOST:PORT/NAMESPACE), or run where ./cbcontrol.yaml exists"
            )
        elif exc.field == "namespace":
            msg = f"invalid --namespace {exc.value!r}: {exc.rule}"
        else:
            msg = f"invalid store URL {exc.value!r} (--store): {exc.rule}"
        raise UsageError(msg) from exc


def check_name(name: str, kind: str = "breaker") -> str:
    """
    ``name`` if it follows the name grammar.

    Raises:
        UsageError: It does not (exit 2), naming the rule.
    """
    from cbcontrol.store import NAME_RULE, is_name

    if not is_name(name):
        shown = name if len(name) <= _SHOWN else name[:_SHOWN] + "..."
        msg = f"invalid {kind} name {shown!r}: {NAME_RULE}"
        raise UsageError(msg)
    return name


def actor() -> str:
    """Who makes a change: ``CBCTL_ACTOR``, else ``user@host``."""
    import getpass

    given = os.environ.get("CBCTL_ACTOR", "").strip()
    if given:
        return given
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry, as in some containers
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def require_known(name: str, known: Iterable[str], store: str) -> None:
    """
    Make sure breaker ``name`` exists, or exit 3 suggesting the names that are close.

    Raises:
        NotFoundError: No spec and no live instance has a breaker ``name``.
    """
    names = sorted(set(known))
    if name in names:
        return
    import difflib

    close = difflib.get_close_matches(name, names, n=3, cutoff=0.6)
    if close:
        hint = "did you mean " + " or ".join(f'"{c}"' for c in close) + "?"
    elif names:
        listed = ", ".join(names[:_MAX_LISTED])
        more = (
            f" and {len(names) - _MAX_LISTED} more" if len(names) > _MAX_LISTED else ""
        )
        hint = f"known breakers: {listed}{more}"
    else:
        hint = "the store has no breaker yet (`cbctl set NAME ...` creates one)"
    msg = f'no breaker "{name}" in {store}; {hint}'
    raise NotFoundError(msg)
