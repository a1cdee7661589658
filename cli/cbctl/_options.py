"""Options shared by several commands, declared once as ``Annotated`` aliases."""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

import typer

from cbctl._errors import UsageError
from cbctl._fields import fields

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "ForOption",
    "NameArgument",
    "OutputOption",
    "ReasonOption",
    "TimeoutOption",
    "WaitOption",
    "parse_duration_option",
    "with_field_flags",
    "with_field_options",
]

_F = TypeVar("_F", bound="Callable[..., Any]")
_CONFIG_PANEL = "Config fields"
_WRITE_PANEL = "Write options"


def _name(value: str) -> str:
    """A breaker name of the name grammar, or a usage error (exit 2)."""
    from cbctl._session import check_name

    try:
        return check_name(value)
    except UsageError as exc:
        raise typer.BadParameter(exc.message) from None


NameArgument = Annotated[
    str,
    typer.Argument(
        metavar="NAME",
        help="The breaker's name.",
        show_default=False,
        callback=_name,
    ),
]
OutputOption = Annotated[
    Literal["table", "json", "yaml"],
    typer.Option("--output", "-o", help="Output format."),
]
ReasonOption = Annotated[
    str | None,
    typer.Option(
        "--reason",
        "-r",
        help="Why, recorded with the change and shown in history.",
        rich_help_panel=_WRITE_PANEL,
    ),
]
WaitOption = Annotated[
    bool,
    typer.Option(
        "--wait/--no-wait",
        help="Wait until every live instance applied the change (exit 4 if not).",
        rich_help_panel=_WRITE_PANEL,
    ),
]
TimeoutOption = Annotated[
    str,
    typer.Option(
        "--timeout",
        metavar="DURATION",
        help="How long --wait waits, e.g. 10s, 1m30s.",
        rich_help_panel=_WRITE_PANEL,
    ),
]
ForOption = Annotated[
    str | None,
    typer.Option(
        "--for",
        metavar="DURATION",
        help="Lift the override by itself after this long, e.g. 30m, 1h.",
    ),
]


def parse_duration_option(flag: str, text: str, *, positive: bool = True) -> float:
    """
    Seconds from a duration option, or a usage error naming the flag.

    Raises:
        UsageError: Not a duration, or not positive.
    """
    from cbcontrol.config import parse_duration

    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        msg = f"invalid {flag} {text!r}: {exc}".replace(f", got {text!r}", "")
        raise UsageError(msg) from None
    if positive and seconds <= 0:
        msg = f"invalid {flag} {text!r}: must be > 0"
        raise UsageError(msg)
    return seconds


def _extend(command: _F, extra: list[inspect.Parameter]) -> _F:
    """Replace ``**fields`` in ``command``'s signature with one option per field."""
    signature = inspect.signature(command, eval_str=True)
    params = [p for p in signature.parameters.values() if p.kind is not p.VAR_KEYWORD]
    command.__signature__ = signature.replace(parameters=[*params, *extra])  # type: ignore[attr-defined]
    for param in extra:
        command.__annotations__[param.name] = param.annotation
    return command


def with_field_options(command: _F) -> _F:
    """Give ``command`` a ``--FIELD VALUE`` option per config field (``**fields``)."""
    extra = [
        inspect.Parameter(
            field.name,
            inspect.Parameter.KEYWORD_ONLY,
            default=None,
            annotation=Annotated[
                str | None,
                typer.Option(
                    field.flag,
                    metavar=field.metavar,
                    help=field.help,
                    show_default=False,
                    rich_help_panel=_CONFIG_PANEL,
                ),
            ],
        )
        for field in fields().values()
    ]
    return _extend(command, extra)


def with_field_flags(command: _F) -> _F:
    """Give ``command`` a ``--FIELD`` flag per config field, into ``**fields``."""
    extra = [
        inspect.Parameter(
            field.name,
            inspect.Parameter.KEYWORD_ONLY,
            default=False,
            annotation=Annotated[
                bool,
                typer.Option(
                    field.flag,
                    help=f"Remove {field.name}.",
                    show_default=False,
                    rich_help_panel=_CONFIG_PANEL,
                ),
            ],
        )
        for field in fields().values()
    ]
    return _extend(command, extra)
