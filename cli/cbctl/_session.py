"""What every command shares: the global options, and the operator API on the store."""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from cbctl._errors import UsageError

if TYPE_CHECKING:
    import typer

    from cbcontrol.operator import Operator

__all__ = ["GlobalOptions", "open_operator", "options"]


class GlobalOptions(NamedTuple):
    """``--store``, ``--namespace``, ``--debug``: before or after the command."""

    store: str | None = None
    namespace: str | None = None
    debug: bool = False


def options(ctx: typer.Context) -> GlobalOptions:
    """The global options of this invocation."""
    found = ctx.find_object(GlobalOptions)
    return found if found is not None else GlobalOptions()


def open_operator(ctx: typer.Context, *, create: bool = False) -> Operator:
    """
    The operator API on the store named by ``--store`` / ``CBCONTROL_STORE``.

    Raises:
        UsageError: The URL or namespace is invalid, or no store is named at all.
        StoreError: A file store does not exist (and ``create`` is not asked).
    """
    import cbcontrol
    from cbcontrol.operator import open_operator as open_api

    opts = options(ctx)
    try:
        return open_api(opts.store, namespace=opts.namespace, create=create)
    except cbcontrol.ConfigError as exc:
        if exc.field == "store" and exc.value == "memory://":
            msg = (
                "no store: pass --store or set CBCONTROL_STORE (file://PATH or "
                "etcd://HOST:PORT/NAMESPACE), or run where ./cbcontrol.yaml exists"
            )
        elif exc.field == "namespace":
            msg = f"invalid --namespace {exc.value}: {exc.rule}"
        else:
            msg = f"invalid store URL {exc.value!r} (--store): {exc.rule}"
        raise UsageError(msg) from exc
