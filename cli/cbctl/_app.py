"""The Typer application: global options and the commands."""

from __future__ import annotations

import dataclasses
import importlib.metadata
from typing import Annotated

import typer

app = typer.Typer(
    name="cbctl",
    help="Operate the circuit breakers of a cbcontrol fleet, live.",
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
    no_args_is_help=True,
)

StoreOption = Annotated[
    str | None,
    typer.Option(
        "--store",
        metavar="URL",
        help=(
            "Config store URL: [bold]file://PATH[/], "
            "[bold]etcd://HOST:PORT[,HOST:PORT]/NAMESPACE[/] or [bold]etcds://...[/] "
            "for TLS. Unset: ./cbcontrol.yaml if present, else in-memory."
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


@dataclasses.dataclass(frozen=True, slots=True)
class GlobalOptions:
    """The options given before the command, shared by every command via ``ctx.obj``."""

    store: str | None
    namespace: str | None


@app.callback()
def _main(
    ctx: typer.Context,
    store: StoreOption = None,
    namespace: NamespaceOption = None,
) -> None:
    ctx.obj = GlobalOptions(store=store, namespace=namespace)


def _version() -> str:
    try:
        return importlib.metadata.version("cbcontrol")
    except importlib.metadata.PackageNotFoundError:
        # Running from a source tree that was never installed.
        return "unknown"


@app.command()
def version() -> None:
    """Print cbctl's version."""
    typer.echo(f"cbctl {_version()}")
