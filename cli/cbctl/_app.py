"""The Typer application: global options, and the commands registered on it."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Annotated, Any

import typer

from cbctl import _cmd_apply, _cmd_doctor, _cmd_read, _cmd_watch, _cmd_write
from cbctl._session import GlobalOptions

__all__ = ["app"]

app = typer.Typer(
    name="cbctl",
    help=(
        "Operate the circuit breakers of a cbcontrol fleet, live.\n\n"
        "Exit codes: 0 ok, 1 operational or config error, 2 usage error, "
        "3 unknown breaker, 4 not applied by every live instance in time."
    ),
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

StoreOption = Annotated[
    str | None,
    typer.Option(
        "--store",
        metavar="URL",
        help=(
            "Config store URL: [bold]file://PATH[/], "
            "[bold]etcd://HOST:PORT[,HOST:PORT]/NAMESPACE[/] or [bold]etcds://...[/] "
            "for TLS. Unset: ./cbcontrol.yaml if present."
        ),
        envvar="CBCONTROL_STORE",
        show_envvar=True,
    ),
]
NamespaceOption = Annotated[
    str | None,
    typer.Option(
        "--namespace",
        metavar="NS",
        help="Namespace to use, overriding the one in the store URL.",
    ),
]
DebugOption = Annotated[
    bool,
    typer.Option("--debug", help="Show tracebacks and cbcontrol's debug logs."),
]


@app.callback()
def _main(
    ctx: typer.Context,
    store: StoreOption = None,
    namespace: NamespaceOption = None,
    debug: DebugOption = False,
) -> None:
    ctx.obj = GlobalOptions(store=store, namespace=namespace, debug=debug)


def _version() -> str:
    from importlib import metadata  # ~15 ms of imports: only for `cbctl version`

    try:
        return metadata.version("cbcontrol")
    except metadata.PackageNotFoundError:
        # Running from a source tree that was never installed.
        return "unknown"


def version() -> None:
    """Print cbctl's version."""
    typer.echo(f"cbctl {_version()}")


_READ = "Read"
_WRITE = "Change (waits until every live instance applied it)"
_OFFLINE = "Documents and diagnostics"


def _help(command: Callable[..., Any]) -> str:
    """The docstring with each paragraph on one line: rich keeps single newlines."""
    text = inspect.cleandoc(command.__doc__ or "")
    return "\n\n".join(" ".join(p.split()) for p in text.split("\n\n"))


def _register(panel: str, command: Callable[..., Any], name: str | None = None) -> None:
    app.command(name, help=_help(command), rich_help_panel=panel)(command)


_register(_READ, _cmd_read.list_, "list")
_register(_READ, _cmd_read.get)
_register(_READ, _cmd_watch.watch)
_register(_READ, _cmd_read.history)
_register(_READ, _cmd_read.presets)
_register(_WRITE, _cmd_write.set_, "set")
_register(_WRITE, _cmd_write.unset)
_register(_WRITE, _cmd_write.trip)
_register(_WRITE, _cmd_write.bypass)
_register(_WRITE, _cmd_write.reset)
_register(_WRITE, _cmd_apply.apply)
_register(_OFFLINE, _cmd_read.export)
_register(_OFFLINE, _cmd_read.validate)
_register(_OFFLINE, _cmd_read.schema)
_register(_OFFLINE, _cmd_doctor.doctor)
_register(_OFFLINE, version)
