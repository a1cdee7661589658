"""
The Typer application: global options, and commands loaded on first use.

Each command lives in a module that is imported only when the command runs (or when
the help lists it), as hatch's lazy group does: ``cbctl get`` pays for ``get``, not
for ``apply`` or ``watch``. The global options (``--store``, ``--namespace``,
``--debug``) are accepted before the command and after it, as kubectl's flags are.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperCommand, TyperGroup
from typer.main import get_command_from_info
from typer.models import CommandInfo

from cbctl._session import GlobalOptions

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["COMMANDS", "app", "main"]

_READ = "Read"
_WRITE = "Change (waits until every instance concerned applied it)"
_OFFLINE = "Documents and diagnostics"
_GLOBAL = "Global options (before or after the command)"

COMMANDS: dict[str, tuple[str, str, str]] = {
    "list": ("cbctl._cmd_read", "list_", _READ),
    "get": ("cbctl._cmd_read", "get", _READ),
    "watch": ("cbctl._cmd_watch", "watch", _READ),
    "history": ("cbctl._cmd_read", "history", _READ),
    "presets": ("cbctl._cmd_read", "presets", _READ),
    "explain": ("cbctl._cmd_read", "explain", _READ),
    "set": ("cbctl._cmd_write", "set_", _WRITE),
    "unset": ("cbctl._cmd_write", "unset", _WRITE),
    "trip": ("cbctl._cmd_write", "trip", _WRITE),
    "bypass": ("cbctl._cmd_write", "bypass", _WRITE),
    "reset": ("cbctl._cmd_write", "reset", _WRITE),
    "promote": ("cbctl._cmd_write", "promote", _WRITE),
    "apply": ("cbctl._cmd_apply", "apply", _WRITE),
    "diff": ("cbctl._cmd_apply", "diff", _OFFLINE),
    "export": ("cbctl._cmd_apply", "export", _OFFLINE),
    "validate": ("cbctl._cmd_apply", "validate", _OFFLINE),
    "schema": ("cbctl._cmd_doctor", "schema", _OFFLINE),
    "doctor": ("cbctl._cmd_doctor", "doctor", _OFFLINE),
    "version": ("cbctl._cmd_doctor", "version", _OFFLINE),
}
"""Command name -> (module, function, help panel), in the order of the help."""

_STORE_HELP = (
    "Config store URL: [bold]file://PATH[/], [bold]etcd://HOST:PORT[,HOST:PORT]/NS[/] "
    "or [bold]etcds://...[/] for TLS. Unset: ./cbcontrol.yaml if present."
)
_NAMESPACE_HELP = "Namespace to use, overriding the one in the store URL (etcd)."
_DEBUG_HELP = "Show tracebacks and cbcontrol's debug logs."


def _late(name: str) -> Callable[[typer.Context, Any], Any]:
    """A global option given after the command: it wins over one given before."""

    def take(ctx: typer.Context, value: Any) -> Any:
        if value not in (None, False):
            current = ctx.find_object(GlobalOptions) or GlobalOptions()
            ctx.obj = current._replace(**{name: value})
        return value

    return take


def _global_options(
    store: Annotated[
        str | None,
        typer.Option(
            "--store",
            metavar="URL",
            help=_STORE_HELP,
            callback=_late("store"),
            expose_value=False,
            rich_help_panel=_GLOBAL,
            show_default=False,
        ),
    ] = None,
    namespace: Annotated[
        str | None,
        typer.Option(
            "--namespace",
            metavar="NS",
            help=_NAMESPACE_HELP,
            callback=_late("namespace"),
            expose_value=False,
            rich_help_panel=_GLOBAL,
            show_default=False,
        ),
    ] = None,
    debug: Annotated[
        bool,
        typer.Option(
            "--debug",
            help=_DEBUG_HELP,
            callback=_late("debug"),
            expose_value=False,
            rich_help_panel=_GLOBAL,
            show_default=False,
        ),
    ] = False,
) -> None:
    """The global options, as a command's own (after the command)."""


def _help(command: Callable[..., Any]) -> str:
    """The docstring with each paragraph on one line: rich keeps single newlines."""
    text = inspect.cleandoc(command.__doc__ or "")
    return "\n\n".join(" ".join(p.split()) for p in text.split("\n\n"))


def _flags_without_metavar(params: list[Any]) -> list[Any]:
    """Flags take no value: show none (Typer would show ``<bool>``)."""
    for param in params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
    return params


class Command(TyperCommand):
    """A command whose flags show no value in its help."""

    def get_params(self, ctx: Any) -> list[Any]:
        """The parameters, flags without ``<bool>``."""
        return _flags_without_metavar(super().get_params(ctx))


class LazyGroup(TyperGroup):
    """A command group that imports a command's module on first use."""

    def get_params(self, ctx: Any) -> list[Any]:
        """The global options, flags without ``<bool>``."""
        return _flags_without_metavar(super().get_params(ctx))

    def list_commands(self, ctx: Any) -> list[str]:
        """Every command, in the order of the help."""
        del ctx
        return list(COMMANDS)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        """The command ``cmd_name``, its module imported now (None if unknown)."""
        del ctx
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        module, attr, panel = entry
        function = getattr(importlib.import_module(module), attr)
        info = CommandInfo(
            name=cmd_name,
            callback=function,
            help=_help(function),
            rich_help_panel=panel,
        )
        command = get_command_from_info(
            info, pretty_exceptions_short=False, rich_markup_mode="rich"
        )
        command.params.extend(_global_params())
        self.commands[cmd_name] = command
        return command

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        """As Typer's, suggesting close command names from the whole table."""
        try:
            return self._click_resolve_command(ctx, args)
        except Exception as exc:
            close = difflib.get_close_matches(args[0], list(COMMANDS)) if args else []
            message = getattr(exc, "message", None)
            if close and isinstance(message, str):
                names = ", ".join(map(repr, close))
                exc.message = f"{message.rstrip('.')}. Did you mean {names}?"  # type: ignore[attr-defined]
            raise


_GLOBAL_PARAMS: list[Any] = []


def _global_params() -> list[Any]:
    """The global options as parameters of a command (made once)."""
    if not _GLOBAL_PARAMS:
        info = CommandInfo(name="globals", callback=_global_options)
        command = get_command_from_info(
            info, pretty_exceptions_short=False, rich_markup_mode="rich"
        )
        _GLOBAL_PARAMS.extend(command.params)
    return _GLOBAL_PARAMS


app = typer.Typer(
    name="cbctl",
    cls=LazyGroup,
    help=(
        "Operate the circuit breakers of a cbcontrol fleet, live: on every instance, "
        "or on those a label selector picks.\n\n"
        "Exit codes: 0 ok, 1 operational or config error, 2 usage error, "
        "3 unknown breaker, 4 not applied by every instance concerned in time."
    ),
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def _main(
    ctx: typer.Context,
    store: Annotated[
        str | None,
        typer.Option(
            "--store",
            metavar="URL",
            help=_STORE_HELP,
            envvar="CBCONTROL_STORE",
            show_envvar=True,
            show_default=False,
        ),
    ] = None,
    namespace: Annotated[
        str | None,
        typer.Option(
            "--namespace", metavar="NS", help=_NAMESPACE_HELP, show_default=False
        ),
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help=_DEBUG_HELP)] = False,
) -> None:
    ctx.obj = GlobalOptions(store=store or None, namespace=namespace, debug=debug)


def main() -> None:
    """Run cbctl with the process's command line (exits)."""
    app(prog_name="cbctl")
